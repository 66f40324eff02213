//! [`prefetch`]: ask the CPU to start loading a cache line that will be needed soon.
//!
//! The book's records are random accesses into hundreds of megabytes; a message's record can be
//! named from the message alone, some messages ahead, so several loads are in flight at once.
//! A prefetch is only a hint: it never faults, never changes memory, and is a no-op where the
//! target has no such instruction (and under Miri).

/// Starts loading the cache line holding `value` into all cache levels.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `_mm_prefetch` reads nothing and writes nothing; it is a hint that cannot fault
    // even for invalid addresses, and this one comes from a reference (valid, aligned).
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = value;
}
