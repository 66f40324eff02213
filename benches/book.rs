//! ITCH 5.0 parse + L3 book on both generator profiles, side by side in one run:
//!
//! - `touch`: `pinbook gen`'s default stream (books of tens of orders, in cache);
//! - `deep`: `pinbook gen --profile deep` (a real day's working set: ~1.5 k live orders per book,
//!   1.7 M in all at 5 M messages over 1,000 symbols, picks uniform among live orders).
//!
//! Rows, each over the same in-memory stream: parse only; parse + pinbook's books applied as
//! parsed; the same with [`Lookahead`] (as `pinbook replay` runs it); parse + the plain
//! BTreeMap/HashMap reference book; and the unpaced shard as `serve` runs it (file source →
//! held messages → books → event ring, a consumer draining the ring on the other core).
//!
//! Full run (`cargo bench --bench book`): 5 M messages per profile. criterion measures means
//! on 1 M messages; the HDR section prints ns/msg per pass (p50/p99/max over passes), the
//! ratios, and the per-message cost of parse + apply on the touch stream, timed in groups of
//! 16 consecutive messages (a single message is below the timer's own ~30 ns).

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use dataplane::arena::Arena;
use dataplane::book::lookahead::Lookahead;
use dataplane::book::reference::ReferenceBooks;
use dataplane::book::{Books, BooksConfig, Op};
use dataplane::feed::binaryfile::{Frames, write_frame};
use dataplane::feed::generator::{Generator, GeneratorConfig, Profile};
use dataplane::feed::itch::parse;
use dataplane::runtime::DataPlane;
use dataplane::source::FeedSource;
use dataplane::source::file::{FileOptions, FileSource, Pace};
use dataplane::topology::Topology;
use hdrhistogram::Histogram;

const SYMBOLS: u16 = 1000;

/// Books sized for the deep stream (1.76 M orders and 1.15 M levels live at 5 M messages).
fn config() -> BooksConfig {
    BooksConfig {
        max_orders: 4 << 20,
        max_levels: 2 << 20,
        ..BooksConfig::default()
    }
}

/// A BinaryFILE of `messages` generated messages of `profile`, in memory.
fn stream(profile: Profile, messages: u64) -> Vec<u8> {
    let mut generator = Generator::with_profile(
        GeneratorConfig {
            symbols: SYMBOLS,
            seed: 1,
        },
        profile,
    );
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

/// Fresh books in an arena, as on a shard (built before any clock starts).
fn arena() -> Arena {
    Arena::new(&Topology::fallback(), None, config().arena_bytes()).expect("arena")
}

/// Parse + apply each message as it is parsed.
fn pinbook(bytes: &[u8]) -> Duration {
    let arena = arena();
    let mut books = Books::new(config(), Some(&arena)).expect("books fit in the arena");
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

/// Parse + apply through a [`Lookahead`], as `pinbook replay` does.
fn pinbook_ahead(bytes: &[u8]) -> Duration {
    let arena = arena();
    let mut books = Books::new(config(), Some(&arena)).expect("books fit in the arena");
    let mut changes = 0u64;
    let mut ahead = Lookahead::new();
    let start = Instant::now();
    for frame in Frames::new(bytes).flatten() {
        if let Ok(message) = parse(frame) {
            ahead.push(&mut books, Op::of(&message), &mut |_| changes += 1);
        }
    }
    ahead.drain(&mut books, &mut |_| changes += 1);
    let elapsed = start.elapsed();
    black_box((changes, books.live_orders()));
    elapsed
}

fn reference(bytes: &[u8]) -> Duration {
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

/// The unpaced shard as `serve` runs it, on the second core; this thread drains its event
/// ring on the first. Timed from the first message the shard's stats show taken to the last
/// (startup, arena included, is not in it); returns the time and the messages it covers.
fn shard(path: &std::path::Path, n: u64) -> (Duration, u64) {
    let consumer_core = common::pin(0);
    let shard_core = common::cores().get(1).map(|c| c.id);
    let mut config = common::shard(shard_core.filter(|c| Some(*c) != consumer_core), 1);
    config.books = self::config();
    let options = FileOptions {
        pace: Pace::Unpaced,
        looping: false,
    };
    let source: Box<dyn FeedSource> = Box::new(FileSource::open(path, options).expect("file"));
    let topology = Arc::new(Topology::detect_or_fallback());
    let mut plane = DataPlane::start(topology, vec![config], vec![source]).expect("shard starts");
    let mut events = plane.shards_mut()[0].take_events().expect("event consumer");
    let stats = Arc::clone(plane.shards()[0].stats());
    let full = common::full_run();
    let mut first: Option<(Instant, u64)> = None;
    let mut last_look = Instant::now();
    let end = loop {
        while events.pop().is_some() {}
        if last_look.elapsed() >= Duration::from_micros(200) {
            last_look = Instant::now();
            let taken = stats.snapshot().messages();
            if first.is_none() && taken > 0 {
                first = Some((Instant::now(), taken));
            }
            if taken >= n {
                break Instant::now();
            }
        }
        if !full {
            std::thread::yield_now();
        }
    };
    plane.stop();
    let (start, before) = first.unwrap_or((end, 0));
    (end - start, n.saturating_sub(before).max(1))
}

fn criterion_benches(c: &mut Criterion) {
    for (name, profile) in [("touch", Profile::Touch), ("deep", Profile::Deep)] {
        let bytes = stream(profile, common::scale(1_000_000, 20_000));
        let n = messages_in(&bytes);
        let mut g = c.benchmark_group(format!("book/{name}/1M_messages_1000_symbols"));
        g.sampling_mode(SamplingMode::Flat).sample_size(10);
        g.throughput(Throughput::Elements(n));
        let bytes = bytes.as_slice();
        let passes =
            |f: fn(&[u8]) -> Duration| move |iters: u64| (0..iters).map(|_| f(bytes)).sum();
        g.bench_function("parse + pinbook (lookahead)", |b| {
            b.iter_custom(passes(pinbook_ahead))
        });
        g.bench_function("parse + reference BTreeMap book", |b| {
            b.iter_custom(passes(reference))
        });
        g.finish();
    }
}

fn per_pass(passes: u64, n: u64, f: impl Fn() -> Duration) -> Histogram<u64> {
    let mut h = common::histogram();
    for _ in 0..passes {
        common::record_ns(&mut h, f().as_nanos() as f64 / n as f64);
    }
    h
}

/// Parse + apply on books that see every message, every 64th group of 16 consecutive messages
/// timed together (ns per message), and the timer alone.
fn sampled(bytes: &[u8]) -> (Histogram<u64>, Histogram<u64>) {
    let clock = quanta::Clock::new();
    let arena = arena();
    let mut books = Books::new(config(), Some(&arena)).expect("books fit");
    let mut latency = common::histogram();
    let mut timer = common::histogram();
    let mut changes = 0u64;
    let frames: Vec<&[u8]> = Frames::new(bytes).flatten().collect();
    for (g, group) in frames.chunks(16).enumerate() {
        let timed = g % 64 == 0 && group.len() == 16;
        let start = clock.raw();
        for frame in group {
            if let Ok(message) = parse(frame) {
                books.apply(&message, &mut |_| changes += 1);
            }
        }
        let end = clock.raw();
        if timed {
            common::record_ns(
                &mut latency,
                clock.delta(start, end).as_nanos() as f64 / 16.0,
            );
            let t0 = clock.raw();
            let t1 = clock.raw();
            common::record_ns(&mut timer, clock.delta(t0, t1).as_nanos() as f64 / 16.0);
        }
    }
    black_box(changes);
    (latency, timer)
}

/// L3 queries on the books at the end of the stream: [`Books::position`] of every 16th order
/// still resting (in reference order), and the full queue of each book's best bid and best
/// ask, each call timed alone (ns per call), with the queue lengths they walked.
fn queries(bytes: &[u8]) -> [Histogram<u64>; 3] {
    let clock = quanta::Clock::new();
    let arena = arena();
    let mut books = Books::new(config(), Some(&arena)).expect("books fit");
    let mut added = Vec::new();
    for frame in Frames::new(bytes).flatten() {
        if let Ok(message) = parse(frame) {
            if let dataplane::feed::itch::Message::AddOrder(m) = &message {
                added.push(m.order_ref());
            }
            books.apply(&message, &mut |_| {});
        }
    }
    books.settle_all();
    let (mut position, mut listing, mut lengths) = (
        common::histogram(),
        common::histogram(),
        common::histogram(),
    );
    let mut sink = 0u64;
    for &reference in added.iter().step_by(16) {
        let start = clock.raw();
        let found = books.position(reference);
        let end = clock.raw();
        if let Some(p) = found {
            common::record_ns(&mut position, clock.delta(start, end).as_nanos() as f64);
            sink += u64::from(p.orders_ahead);
        }
    }
    for locate in 0..SYMBOLS {
        let Some(book) = books.view(locate) else {
            continue;
        };
        for level in [book.best_bid(), book.best_ask()].into_iter().flatten() {
            let start = clock.raw();
            let orders = book.queue(level.side, level.price).count();
            let end = clock.raw();
            common::record_ns(&mut listing, clock.delta(start, end).as_nanos() as f64);
            common::record_ns(&mut lengths, orders as f64);
            sink += orders as u64;
        }
    }
    black_box(sink);
    [position, listing, lengths]
}

fn p50(h: &Histogram<u64>) -> f64 {
    h.value_at_quantile(0.5) as f64 / 1000.0
}

fn hdr_report() {
    common::print_machine();
    for (name, profile) in [("touch", Profile::Touch), ("deep", Profile::Deep)] {
        common::pin(0);
        let bytes = stream(profile, common::scale(5_000_000, 20_000));
        let n = messages_in(&bytes);
        let passes = common::scale(3, 1);
        let parse = per_pass(passes, n, || parse_only(&bytes));
        let plain = per_pass(passes, n, || pinbook(&bytes));
        let ahead = per_pass(passes, n, || pinbook_ahead(&bytes));
        let reference = per_pass(common::scale(2, 1), n, || reference(&bytes));
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(format!("{name}.itch"));
        std::fs::write(&path, &bytes).expect("write the stream");
        let mut shard_h = common::histogram();
        for _ in 0..passes {
            let (elapsed, covered) = shard(&path, n);
            common::record_ns(&mut shard_h, elapsed.as_nanos() as f64 / covered as f64);
        }
        println!();
        println!(
            "{name}: {n} messages, {SYMBOLS} symbols, {} MiB",
            bytes.len() >> 20
        );
        println!(
            "  reference / pinbook (lookahead): {:.2}x; shard / replay-style books: {:.2}x; \
             lookahead gain: {:.2}x",
            p50(&reference) / p50(&ahead),
            p50(&shard_h) / p50(&ahead),
            p50(&plain) / p50(&ahead),
        );
        common::print_table(
            &format!("{name}: parse + L3 book, {passes} passes over {n} messages: ns/msg per pass"),
            "ns per message",
            &[
                ("parse + pinbook (lookahead)", &ahead),
                ("parse + pinbook (as parsed)", &plain),
                ("unpaced shard (file → ring)", &shard_h),
                ("parse + reference BTreeMap book", &reference),
                ("parse only", &parse),
            ],
        );
        let [position, listing, lengths] = queries(&bytes);
        common::print_table(
            &format!("{name}: L3 queries on the final books, each call timed alone, ns"),
            "ns per call",
            &[
                ("position of a resting order", &position),
                ("list the best level's queue", &listing),
            ],
        );
        common::print_table(
            &format!("{name}: orders in the best levels' queues listed above"),
            "orders",
            &[("queue length", &lengths)],
        );
        if profile == Profile::Touch {
            let (latency, timer) = sampled(&bytes);
            common::print_table(
                "touch: parse + apply per message, groups of 16 timed together, ns",
                "ns per message",
                &[("parse + apply", &latency), ("timer only", &timer)],
            );
        }
    }
}

fn main() {
    common::main(criterion_benches, Duration::from_secs(5), hdr_report);
}
