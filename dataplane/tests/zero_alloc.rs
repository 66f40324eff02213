//! Steady-state ring and pool operations never touch the global allocator.
//!
//! A counting allocator counts allocations made by threads that armed it, so other tests
//! running in parallel do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use dataplane::pool::Pool;
use dataplane::ring::ring;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if ARMED.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call unchanged to the system allocator; counting has no effect on
// the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn counting_allocator_sees_allocations() {
    // The test that cannot fail is no test: prove the counter works.
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);
}

#[test]
fn ring_push_pop_allocates_nothing() {
    let (mut tx, mut rx) = ring::<[u64; 4]>(1024);
    let mut sink = 0;
    let n = allocations_in(|| {
        for i in 0..100_000u64 {
            while tx.push([i; 4]).is_err() {
                rx.pop_batch(64, |v| sink ^= v[0]);
            }
            if i % 3 == 0 {
                let _ = tx.push_slice(&[[i; 4]; 8]);
            }
            if let Some(v) = rx.pop() {
                sink ^= v[1];
            }
        }
        rx.pop_batch(usize::MAX, |v| sink ^= v[2]);
    });
    std::hint::black_box(sink);
    assert_eq!(n, 0, "steady-state ring operations allocated {n} times");
}

#[test]
fn pool_alloc_free_allocates_nothing() {
    let mut pool = Pool::with_capacity(4096);
    let mut live = Vec::with_capacity(4096);
    let n = allocations_in(|| {
        for round in 0..50u64 {
            while let Ok(h) = pool.alloc(round) {
                live.push(h);
            }
            // free every other one, then the rest, in an order that scatters the free list
            for h in live.iter().step_by(2) {
                let _ = pool.free(*h);
            }
            for h in live.drain(..) {
                let _ = pool.free(h);
            }
        }
    });
    assert_eq!(n, 0, "steady-state pool operations allocated {n} times");
    assert!(pool.is_empty());
}
