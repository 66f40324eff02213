//! Loom models of the SPSC ring: every interleaving (up to the preemption bound) of a producer
//! and a consumer thread. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p dataplane --test loom_ring --release`.
#![cfg(loom)]

use dataplane::ring::ring;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

/// Spins (yielding to loom's scheduler) until `f` succeeds.
fn until(mut f: impl FnMut() -> bool) {
    while !f() {
        thread::yield_now();
    }
}

#[test]
fn push_pop_across_threads_keeps_order() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::<usize>(2);
        let producer = thread::spawn(move || {
            for i in 0..3 {
                until(|| tx.push(i).is_ok());
            }
        });
        let mut got = Vec::new();
        until(|| {
            if let Some(v) = rx.pop() {
                got.push(v);
            }
            got.len() == 3
        });
        producer.join().unwrap();
        assert_eq!(got, [0, 1, 2]);
        assert!(rx.is_empty());
    });
}

/// Each side can only move the count one way (the producer up, the consumer down), so what a
/// side reads bounds what it can do next: a consumer that sees a full ring must be able to pop,
/// a producer that sees an empty ring must be able to push.
#[test]
fn full_and_empty_boundaries_are_exact() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::<u8>(1);
        let producer = thread::spawn(move || {
            let mut next = 0;
            while next < 2 {
                let len = tx.len();
                assert!(len <= 1, "a ring of capacity 1 never holds {len}");
                let pushed = tx.push(next).is_ok();
                if len == 0 {
                    assert!(pushed, "producer saw an empty ring but could not push");
                }
                if pushed {
                    next += 1;
                } else {
                    thread::yield_now();
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 2 {
            let len = rx.len();
            assert!(len <= 1, "a ring of capacity 1 never holds {len}");
            if len == 1 {
                assert!(
                    rx.is_full() && !rx.is_empty(),
                    "a full ring reported as not full"
                );
                got.push(
                    rx.pop()
                        .expect("consumer saw a full ring but could not pop"),
                );
            } else {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [0, 1]);
        assert!(rx.is_empty() && !rx.is_full());
    });
}

#[test]
fn batch_publish_is_seen_in_order() {
    loom::model(|| {
        let (mut tx, mut rx) = ring::<u32>(4);
        let producer = thread::spawn(move || {
            let mut sent = 0;
            while sent < 3 {
                sent += tx.push_slice(&[1, 2, 3][sent..]);
                thread::yield_now();
            }
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            if rx.pop_batch(3, |v| got.push(v)) == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
    });
}

/// Counts drops in the model's shared counter.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn items_left_in_the_ring_are_dropped_exactly_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = ring::<Counted>(2);
        let d = drops.clone();
        let producer = thread::spawn(move || {
            for _ in 0..2 {
                assert!(tx.push(Counted(d.clone())).is_ok());
            }
            // tx dropped here, possibly while the consumer still holds the ring
        });
        let consumer = thread::spawn(move || {
            // take at most one, leave the rest for the ring's drop
            drop(rx.pop());
        });
        producer.join().unwrap();
        consumer.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}
