//! Order pool: pinbook's generational pool side by side with `Box` (the system allocator).
//!
//! Two measures, each for both in the same run:
//! 1. alloc+free in a tight loop (a free slot is always at hand);
//! 2. churn: 1 M live orders, each step frees a random live one and allocates a new one
//!    (the shape of a real book: scattered frees, reuse of cold slots).
//!
//! criterion measures the mean cost; then an HDR section times every single alloc+free pair
//! (TSC via quanta; the timer's own cost is shown as a row) and prints p50/p99/p99.9/max with
//! ratios (Box / pinbook). `cargo bench --bench pool`.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use dataplane::pool::{Handle, Pool};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A 40-byte stand-in for a resting order.
#[derive(Clone, Copy)]
#[allow(dead_code)] // fields exist for their size
struct Order {
    reference: u64,
    price: u32,
    shares: u32,
    prev: u32,
    next: u32,
    timestamp: u64,
    side: u8,
}

fn order(i: u64) -> Order {
    Order {
        reference: i,
        price: (i % 10_000) as u32,
        shares: 100,
        prev: u32::MAX,
        next: u32::MAX,
        timestamp: i,
        side: (i & 1) as u8,
    }
}

const LIVE: usize = 1 << 20;

// black_box guards the inputs and what is read back, never the whole 40-byte order: forcing
// the struct through the stack measures store-forwarding stalls of the harness (5 ns of pool
// work became 25 ns), not the pool or malloc.

/// One alloc+free on the pool.
#[inline(always)]
fn pool_pair(pool: &mut Pool<'static, Order>, i: u64) {
    if let Ok(h) = pool.alloc(order(black_box(i))) {
        black_box(h);
        if let Ok(o) = pool.free(h) {
            black_box(o.reference);
        }
    }
}

/// One malloc+free of an order.
#[inline(always)]
fn box_pair(i: u64) {
    let b = Box::new(order(black_box(i)));
    black_box(&*b);
    drop(b);
}

fn tight_pool(iters: u64) -> Duration {
    let mut pool = Pool::with_capacity(1024);
    let start = Instant::now();
    for i in 0..iters {
        pool_pair(&mut pool, i);
    }
    start.elapsed()
}

fn tight_box(iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        box_pair(i);
    }
    start.elapsed()
}

/// `live` orders held in a pool, churned by random replacement.
struct PoolChurn {
    pool: Pool<'static, Order>,
    live: Vec<Handle>,
    rng: SmallRng,
}

impl PoolChurn {
    fn new(live: usize) -> Self {
        let mut pool = Pool::with_capacity(live);
        let live = (0..live as u64)
            .map(|i| pool.alloc(order(i)).expect("capacity == live"))
            .collect();
        Self {
            pool,
            live,
            rng: SmallRng::seed_from_u64(7),
        }
    }

    #[inline]
    fn step(&mut self, i: u64) {
        let k = self.rng.random_range(0..self.live.len());
        if let Ok(o) = self.pool.free(self.live[k]) {
            black_box(o.reference);
        }
        if let Ok(h) = self.pool.alloc(order(black_box(i))) {
            self.live[k] = h;
        }
    }
}

/// `live` orders held as boxes, churned by random replacement. Boxing is the point: each
/// order is its own malloc'd object, the way a pool-less book would hold it.
#[allow(clippy::vec_box)]
struct BoxChurn {
    live: Vec<Box<Order>>,
    rng: SmallRng,
}

impl BoxChurn {
    fn new(live: usize) -> Self {
        Self {
            live: (0..live as u64).map(|i| Box::new(order(i))).collect(),
            rng: SmallRng::seed_from_u64(7),
        }
    }

    #[inline]
    fn step(&mut self, i: u64) {
        let k = self.rng.random_range(0..self.live.len());
        // a fresh allocation, then the old box is freed: malloc+free per step, on purpose
        #[allow(clippy::replace_box)]
        {
            self.live[k] = Box::new(order(black_box(i)));
        }
    }
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool/alloc_free_tight");
    g.throughput(Throughput::Elements(1));
    g.bench_function("pinbook::Pool", |b| b.iter_custom(tight_pool));
    g.bench_function("Box (system malloc)", |b| b.iter_custom(tight_box));
    g.finish();

    let live = common::scale(LIVE as u64, 4096) as usize;
    let mut g = c.benchmark_group("pool/churn_1M_live");
    g.throughput(Throughput::Elements(1));
    let mut p = PoolChurn::new(live);
    g.bench_function("pinbook::Pool", |b| {
        b.iter_custom(|n| {
            let start = Instant::now();
            (0..n).for_each(|i| p.step(i));
            start.elapsed()
        })
    });
    drop(p);
    let mut bx = BoxChurn::new(live);
    g.bench_function("Box (system malloc)", |b| {
        b.iter_custom(|n| {
            let start = Instant::now();
            (0..n).for_each(|i| bx.step(i));
            start.elapsed()
        })
    });
    g.finish();
}

/// Times each call of `op` on its own with the TSC.
fn each(samples: u64, mut op: impl FnMut(u64)) -> Histogram<u64> {
    let clock = quanta::Clock::new();
    let mut h = common::histogram();
    for i in 0..samples {
        let start = clock.raw();
        op(i);
        let end = clock.raw();
        common::record_ns(&mut h, clock.delta(start, end).as_nanos() as f64);
    }
    h
}

/// Times `op` in runs of 16 calls; records the mean of each run.
fn each16(samples: u64, mut op: impl FnMut(u64)) -> Histogram<u64> {
    let clock = quanta::Clock::new();
    let mut h = common::histogram();
    for i in (0..samples).step_by(16) {
        let start = clock.raw();
        for j in i..i + 16 {
            op(j);
        }
        let end = clock.raw();
        common::record_ns(&mut h, clock.delta(start, end).as_nanos() as f64 / 16.0);
    }
    h
}

fn hdr_report() {
    common::pin(0);
    let samples = common::scale(5_000_000, 10_000);
    let live = common::scale(LIVE as u64, 4096) as usize;

    let mut pool = Pool::with_capacity(1024);
    let p = each(samples, |i| pool_pair(&mut pool, i));
    let b = each(samples, box_pair);
    let t = each(samples, |i| {
        black_box(i);
    });
    common::print_table(
        &format!("alloc+free, tight loop: each of {samples} pairs timed alone, ns"),
        "ns per pair",
        &[
            ("pinbook::Pool", &p),
            ("Box (system malloc)", &b),
            ("timer only (no work)", &t),
        ],
    );

    // The same, each sample 16 pairs timed together: the timer's ~30 ns spread over 16 pairs,
    // so the percentiles show the operation rather than the clock.
    let p16 = each16(samples, |i| pool_pair(&mut pool, i));
    let b16 = each16(samples, box_pair);
    let t16 = each16(samples, |i| {
        black_box(i);
    });
    common::print_table(
        &format!(
            "alloc+free, tight loop: {samples} pairs in samples of 16 timed together, ns per pair"
        ),
        "ns per pair",
        &[
            ("pinbook::Pool", &p16),
            ("Box (system malloc)", &b16),
            ("timer only (no work)", &t16),
        ],
    );

    let mut pc = PoolChurn::new(live);
    let p = each(samples, |i| pc.step(i));
    drop(pc);
    let mut bc = BoxChurn::new(live);
    let b = each(samples, |i| bc.step(i));
    drop(bc);
    let mut rng = SmallRng::seed_from_u64(7);
    let t = each(samples, |_| {
        black_box(rng.random_range(0..live));
    });
    common::print_table(
        &format!("churn, {live} live, random free+alloc: each of {samples} steps timed alone, ns"),
        "ns per free+alloc",
        &[
            ("pinbook::Pool", &p),
            ("Box (system malloc)", &b),
            ("timer + rng only", &t),
        ],
    );
}

fn main() {
    common::main(criterion_benches, Duration::from_secs(3), hdr_report);
}
