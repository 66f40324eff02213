//! SPSC ring: pinbook's ring side by side with rtrb and crossbeam's ArrayQueue.
//!
//! Three measures, each for all three queues in the same run:
//! 1. same thread: one push then one pop (the uncontended cost of the code path);
//! 2. cross core: producer and consumer pinned to two cores, single items and batches of 64;
//! 3. one-way latency: a ping-pong over two rings, RTT/2 per round trip, HDR percentiles.
//!
//! criterion measures (1) and (2) as throughput; then an HDR section prints p50/p99/p99.9/max
//! and ratios (peer / pinbook) for all three. `cargo bench --bench ring`.

mod common;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;

const CAPACITY: usize = 4096;
const BATCH: usize = 64;

/// The operations every queue under test offers, so each measure is written once.
trait Spsc {
    const NAME: &'static str;
    type Tx: Send + 'static;
    type Rx: Send + 'static;
    fn new(capacity: usize) -> (Self::Tx, Self::Rx);
    fn push(tx: &mut Self::Tx, v: u64) -> bool;
    fn pop(rx: &mut Self::Rx) -> Option<u64>;
    /// Pushes a prefix of `vs`; returns how many.
    fn push_batch(tx: &mut Self::Tx, vs: &[u64]) -> usize;
    /// Pops up to `BATCH` items, folding them into `sum`; returns how many.
    fn pop_batch(rx: &mut Self::Rx, sum: &mut u64) -> usize;
}

struct Pinbook;
impl Spsc for Pinbook {
    const NAME: &'static str = "pinbook::ring";
    type Tx = dataplane::ring::Producer<u64>;
    type Rx = dataplane::ring::Consumer<u64>;
    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        dataplane::ring::ring(capacity)
    }
    #[inline]
    fn push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.push(v).is_ok()
    }
    #[inline]
    fn pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.pop()
    }
    #[inline]
    fn push_batch(tx: &mut Self::Tx, vs: &[u64]) -> usize {
        tx.push_slice(vs)
    }
    #[inline]
    fn pop_batch(rx: &mut Self::Rx, sum: &mut u64) -> usize {
        rx.pop_batch(BATCH, |v| *sum = sum.wrapping_add(v))
    }
}

struct Rtrb;
impl Spsc for Rtrb {
    const NAME: &'static str = "rtrb";
    type Tx = rtrb::Producer<u64>;
    type Rx = rtrb::Consumer<u64>;
    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        rtrb::RingBuffer::new(capacity)
    }
    #[inline]
    fn push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.push(v).is_ok()
    }
    #[inline]
    fn pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.pop().ok()
    }
    #[inline]
    fn push_batch(tx: &mut Self::Tx, vs: &[u64]) -> usize {
        tx.push_partial_slice(vs).0.len()
    }
    #[inline]
    fn pop_batch(rx: &mut Self::Rx, sum: &mut u64) -> usize {
        let n = rx.slots().min(BATCH);
        match rx.read_chunk(n) {
            Ok(chunk) => chunk.into_iter().fold(n, |n, v| {
                *sum = sum.wrapping_add(v);
                n
            }),
            Err(_) => 0,
        }
    }
}

struct Crossbeam;
impl Spsc for Crossbeam {
    const NAME: &'static str = "crossbeam::ArrayQueue";
    type Tx = Arc<ArrayQueue<u64>>;
    type Rx = Arc<ArrayQueue<u64>>;
    fn new(capacity: usize) -> (Self::Tx, Self::Rx) {
        let q = Arc::new(ArrayQueue::new(capacity));
        (q.clone(), q)
    }
    #[inline]
    fn push(tx: &mut Self::Tx, v: u64) -> bool {
        tx.push(v).is_ok()
    }
    #[inline]
    fn pop(rx: &mut Self::Rx) -> Option<u64> {
        rx.pop()
    }
    /// ArrayQueue has no batch API: one push per item.
    #[inline]
    fn push_batch(tx: &mut Self::Tx, vs: &[u64]) -> usize {
        vs.iter().take_while(|v| tx.push(**v).is_ok()).count()
    }
    #[inline]
    fn pop_batch(rx: &mut Self::Rx, sum: &mut u64) -> usize {
        let mut n = 0;
        while n < BATCH {
            let Some(v) = rx.pop() else { break };
            *sum = sum.wrapping_add(v);
            n += 1;
        }
        n
    }
}

/// One push then one pop, `iters` times, on the calling thread.
fn same_thread<Q: Spsc>(iters: u64) -> Duration {
    let (mut tx, mut rx) = Q::new(CAPACITY);
    let start = Instant::now();
    for i in 0..iters {
        black_box(Q::push(&mut tx, black_box(i)));
        black_box(Q::pop(&mut rx));
    }
    start.elapsed()
}

/// Moves `items` items from a producer pinned to core 0 to a consumer pinned to core 1;
/// returns the time from both being ready to the consumer having seen the last item.
fn cross_core<Q: Spsc>(items: u64, batched: bool) -> Duration {
    let (mut tx, mut rx) = Q::new(CAPACITY);
    let ready = Arc::new(Barrier::new(2));
    let consumer_ready = ready.clone();
    let consumer = std::thread::spawn(move || {
        common::pin(1);
        consumer_ready.wait();
        let mut seen = 0;
        let mut sum = 0u64;
        // Spin loops pause (house style): a bare retry steals the producer's line.
        if batched {
            while seen < items {
                match Q::pop_batch(&mut rx, &mut sum) {
                    0 => std::hint::spin_loop(),
                    n => seen += n as u64,
                }
            }
        } else {
            while seen < items {
                match Q::pop(&mut rx) {
                    Some(v) => {
                        sum = sum.wrapping_add(v);
                        seen += 1;
                    }
                    None => std::hint::spin_loop(),
                }
            }
        }
        black_box(sum);
    });
    common::pin(0);
    ready.wait();
    let start = Instant::now();
    if batched {
        let block: [u64; BATCH] = std::array::from_fn(|i| i as u64);
        let mut sent = 0;
        while sent < items {
            let want = ((items - sent) as usize).min(BATCH);
            match Q::push_batch(&mut tx, &block[..want]) {
                0 => std::hint::spin_loop(),
                n => sent += n as u64,
            }
        }
    } else {
        let mut i = 0;
        while i < items {
            if Q::push(&mut tx, i) {
                i += 1;
            } else {
                std::hint::spin_loop();
            }
        }
    }
    consumer.join().expect("consumer thread panicked");
    start.elapsed()
}

/// Ping-pong between core 0 and core 1 over two queues; returns RTT/2 for each round trip.
fn ping_pong<Q: Spsc>(round_trips: u64) -> Histogram<u64> {
    let (mut ping_tx, mut ping_rx) = Q::new(CAPACITY);
    let (mut pong_tx, mut pong_rx) = Q::new(CAPACITY);
    let echo = std::thread::spawn(move || {
        common::pin(1);
        for _ in 0..round_trips {
            let v = loop {
                match Q::pop(&mut ping_rx) {
                    Some(v) => break v,
                    None => std::hint::spin_loop(),
                }
            };
            while !Q::push(&mut pong_tx, v) {
                std::hint::spin_loop();
            }
        }
    });
    common::pin(0);
    let clock = quanta::Clock::new();
    let mut h = common::histogram();
    for i in 0..round_trips {
        let start = clock.raw();
        while !Q::push(&mut ping_tx, i) {
            std::hint::spin_loop();
        }
        while Q::pop(&mut pong_rx).is_none() {
            std::hint::spin_loop();
        }
        let rtt = clock.delta(start, clock.raw());
        common::record_ns(&mut h, rtt.as_nanos() as f64 / 2.0);
    }
    echo.join().expect("echo thread panicked");
    h
}

/// Repeats `run` and records ns per item of each repetition.
fn per_item(reps: u64, items: u64, mut run: impl FnMut(u64) -> Duration) -> Histogram<u64> {
    let mut h = common::histogram();
    for _ in 0..reps {
        let d = run(items);
        common::record_ns(&mut h, d.as_nanos() as f64 / items as f64);
    }
    h
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring/same_thread_push_pop");
    g.throughput(Throughput::Elements(1));
    g.bench_function(Pinbook::NAME, |b| b.iter_custom(same_thread::<Pinbook>));
    g.bench_function(Rtrb::NAME, |b| b.iter_custom(same_thread::<Rtrb>));
    g.bench_function(Crossbeam::NAME, |b| b.iter_custom(same_thread::<Crossbeam>));
    g.finish();

    for (name, batched) in [
        ("ring/cross_core_single", false),
        ("ring/cross_core_batch64", true),
    ] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(1));
        g.bench_function(Pinbook::NAME, |b| {
            b.iter_custom(|n| cross_core::<Pinbook>(n, batched))
        });
        g.bench_function(Rtrb::NAME, |b| {
            b.iter_custom(|n| cross_core::<Rtrb>(n, batched))
        });
        g.bench_function(Crossbeam::NAME, |b| {
            b.iter_custom(|n| cross_core::<Crossbeam>(n, batched))
        });
        g.finish();
    }
}

fn hdr_report() {
    let reps = common::scale(41, 2);
    let same = common::scale(1_000_000, 1_000);
    let cross = common::scale(2_000_000, 2_000);
    let trips = common::scale(200_000, 500);

    let rows = |f: &dyn Fn(&str) -> Histogram<u64>| {
        [Pinbook::NAME, Rtrb::NAME, Crossbeam::NAME].map(|name| (name, f(name)))
    };
    let print = |title: &str, rows: &[(&str, Histogram<u64>)]| {
        let refs: Vec<_> = rows.iter().map(|(n, h)| (*n, h)).collect();
        common::print_table(title, "ns per item", &refs);
    };

    let r = rows(&|name| match name {
        Pinbook::NAME => per_item(reps, same, same_thread::<Pinbook>),
        Rtrb::NAME => per_item(reps, same, same_thread::<Rtrb>),
        _ => per_item(reps, same, same_thread::<Crossbeam>),
    });
    print(
        &format!("same thread push+pop: {reps} runs x {same} pairs, ns per pair per run"),
        &r,
    );

    for batched in [false, true] {
        let r = rows(&|name| match name {
            Pinbook::NAME => per_item(reps, cross, |n| cross_core::<Pinbook>(n, batched)),
            Rtrb::NAME => per_item(reps, cross, |n| cross_core::<Rtrb>(n, batched)),
            _ => per_item(reps, cross, |n| cross_core::<Crossbeam>(n, batched)),
        });
        let kind = if batched {
            "batches of 64"
        } else {
            "single items"
        };
        print(
            &format!("cross core, {kind}: {reps} runs x {cross} items, ns per item per run"),
            &r,
        );
    }

    let r = rows(&|name| match name {
        Pinbook::NAME => ping_pong::<Pinbook>(trips),
        Rtrb::NAME => ping_pong::<Rtrb>(trips),
        _ => ping_pong::<Crossbeam>(trips),
    });
    print(
        &format!("one-way latency, ping-pong RTT/2 over {trips} round trips, ns"),
        &r,
    );
}

fn main() {
    common::main(criterion_benches, Duration::from_secs(3), hdr_report);
}
