//! ITCH 5.0 parse and L3 book build on a generated stream, side by side:
//! parse only; parse + pinbook's books (with each order-index design); parse + the plain
//! BTreeMap/HashMap reference book.
//!
//! Full run (`cargo bench --bench book`): a 10 M-message stream over 120 symbols, generated in
//! memory. criterion measures the mean per pass; the HDR section prints ns/msg per pass
//! (p50/p99/max over passes), msgs/s, ratios, and the per-message latency of parse + apply
//! from a separate sampled run (one message in 64 timed alone).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use dataplane::arena::Arena;
use dataplane::book::reference::ReferenceBooks;
use dataplane::book::{Books, BooksConfig};
use dataplane::feed::binaryfile::{Frames, write_frame};
use dataplane::feed::generator::{Generator, GeneratorConfig};
use dataplane::feed::itch::parse;
use dataplane::topology::Topology;
use hdrhistogram::Histogram;

/// A BinaryFILE of `messages` generated messages, in memory.
fn stream(messages: u64) -> Vec<u8> {
    let mut generator = Generator::new(GeneratorConfig {
        symbols: 120,
        seed: 1,
    });
    let mut out = Vec::with_capacity(messages as usize * 34);
    let mut message = Vec::with_capacity(64);
    for _ in 0..messages {
        message.clear();
        generator.next_into(&mut message);
        write_frame(&mut out, &message).expect("writing to a Vec cannot fail");
    }
    out
}

fn messages_in(bytes: &[u8]) -> u64 {
    Frames::new(bytes).count() as u64
}

fn parse_only(bytes: &[u8]) -> Duration {
    let start = Instant::now();
    for frame in Frames::new(bytes).flatten() {
        if let Ok(message) = parse(frame) {
            black_box(message.header());
        }
    }
    start.elapsed()
}

/// Parse + apply to fresh books (built before the clock starts).
fn with_books(bytes: &[u8]) -> Duration {
    // As on a shard: the books in an arena (line-aligned regions, first-touched).
    let config = BooksConfig::default();
    let arena = Arena::new(&Topology::fallback(), None, config.arena_bytes()).expect("arena");
    let mut books = Books::new(config, Some(&arena)).expect("books fit in the arena");
    let mut changes = 0u64;
    let start = Instant::now();
    for frame in Frames::new(bytes).flatten() {
        if let Ok(message) = parse(frame) {
            books.apply(&message, &mut |_| changes += 1);
        }
    }
    let elapsed = start.elapsed();
    black_box((changes, books.live_orders()));
    elapsed
}

fn with_reference(bytes: &[u8]) -> Duration {
    let mut books = ReferenceBooks::new();
    let start = Instant::now();
    for frame in Frames::new(bytes).flatten() {
        if let Ok(message) = parse(frame) {
            books.apply(&message);
        }
    }
    let elapsed = start.elapsed();
    black_box(books.live_orders());
    elapsed
}

fn criterion_benches(c: &mut Criterion) {
    let bytes = stream(common::scale(1_000_000, 20_000));
    let n = messages_in(&bytes);
    let mut g = c.benchmark_group("book/1M_messages_120_symbols");
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g.throughput(Throughput::Elements(n));
    let bytes = bytes.as_slice();
    let passes = |f: fn(&[u8]) -> Duration| move |iters: u64| (0..iters).map(|_| f(bytes)).sum();
    g.bench_function("parse only", |b| b.iter_custom(passes(parse_only)));
    g.bench_function("parse + pinbook", |b| b.iter_custom(passes(with_books)));
    g.bench_function("parse + reference BTreeMap book", |b| {
        b.iter_custom(passes(with_reference))
    });
    g.finish();
}

fn per_pass(passes: u64, n: u64, f: impl Fn() -> Duration) -> Histogram<u64> {
    let mut h = common::histogram();
    for _ in 0..passes {
        common::record_ns(&mut h, f().as_nanos() as f64 / n as f64);
    }
    h
}

/// Times parse + apply of every `every`-th message alone, on books that see every message.
fn sampled_latency(bytes: &[u8], every: usize) -> (Histogram<u64>, Histogram<u64>) {
    let clock = quanta::Clock::new();
    let config = BooksConfig::default();
    let arena = Arena::new(&Topology::fallback(), None, config.arena_bytes()).expect("arena");
    let mut books = Books::new(config, Some(&arena)).expect("books fit");
    let mut latency = common::histogram();
    let mut timer = common::histogram();
    let mut changes = 0u64;
    for (i, frame) in Frames::new(bytes).flatten().enumerate() {
        if i % every != 0 {
            if let Ok(message) = parse(frame) {
                books.apply(&message, &mut |_| changes += 1);
            }
            continue;
        }
        let start = clock.raw();
        if let Ok(message) = parse(frame) {
            books.apply(&message, &mut |_| changes += 1);
        }
        let end = clock.raw();
        common::record_ns(&mut latency, clock.delta(start, end).as_nanos() as f64);
        let t0 = clock.raw();
        let t1 = clock.raw();
        common::record_ns(&mut timer, clock.delta(t0, t1).as_nanos() as f64);
    }
    black_box(changes);
    (latency, timer)
}

fn hdr_report() {
    common::pin(0);
    let bytes = stream(common::scale(10_000_000, 20_000));
    let n = messages_in(&bytes);
    let passes = common::scale(5, 1);
    let parse = per_pass(passes, n, || parse_only(&bytes));
    let window = per_pass(passes, n, || with_books(&bytes));
    let reference = per_pass(common::scale(2, 1), n, || with_reference(&bytes));
    println!();
    println!(
        "stream: {n} messages, 120 symbols, {} MiB",
        bytes.len() >> 20
    );
    let msgs = |h: &Histogram<u64>| 1e3 / (h.value_at_quantile(0.5) as f64 / 1000.0);
    for (name, h) in [
        ("parse only", &parse),
        ("parse + pinbook", &window),
        ("parse + reference book", &reference),
    ] {
        println!("  {name:<36} {:>8.1} M msg/s at p50", msgs(h));
    }
    common::print_table(
        &format!("parse + L3 book, {passes} passes over {n} messages: ns/msg per pass"),
        "ns per message",
        &[
            ("parse + pinbook", &window),
            ("parse + reference BTreeMap book", &reference),
            ("parse only", &parse),
        ],
    );
    let (latency, timer) = sampled_latency(&bytes, 64);
    common::print_table(
        "per-message parse + apply, every 64th message timed alone (window index), ns",
        "ns per message",
        &[("parse + apply", &latency), ("timer only", &timer)],
    );
}

fn main() {
    common::main(criterion_benches, Duration::from_secs(5), hdr_report);
}
