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
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let line = (value as *const T).cast::<i8>();
        // SAFETY: a prefetch reads and writes nothing and cannot fault; `line` is from a reference.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = value;
}
