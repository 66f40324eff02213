//! Ingest → event visible to a consumer on the other core, through a real shard.
//!
//! The shard is pinned to the second core and busy-polls (pure spin) a paced feed of generated
//! ITCH messages; this thread, pinned to the first core, spins on the event ring. No
//! coordinated omission: the feed writes each message's *intended* injection time (start +
//! i / rate, on [`dataplane::clock::now_ns`]'s scale) into its ITCH timestamp, and every level
//! event carries that timestamp, so a message the shard took late is measured from when it
//! was due, not from when it was taken. Latency = time the consumer popped the event − the
//! intended time.
//!
//! Also: the maximum sustained rate, with the feed unpaced (messages per second the shard
//! applied and published while the consumer kept up).
//!
//! And what the order stream (market by order) costs the shard: the unpaced rate with every
//! symbol's order stream on (each order change an event) against off, the same stream in the
//! same run, as a ratio.
//!
//! `cargo bench --bench runtime`: 100 k msg/s and 1 M msg/s for 2 s each, then 4 M messages
//! unpaced, then 2 M unpaced with the streams off and on. Under `cargo test --benches`: a few
//! thousand messages each.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dataplane::clock::now_ns;
use dataplane::runtime::DataPlane;
use dataplane::runtime::command::Command;
use dataplane::runtime::event::Event;
use dataplane::source::FeedSource;
use dataplane::topology::Topology;
use hdrhistogram::Histogram;

struct Run {
    latency: Histogram<u64>,
    messages: u64,
    elapsed: Duration,
    events: u64,
}

/// Runs `messages` at `rate` through one shard on the second core, consuming on the first.
fn run(messages: u64, rate: u64) -> Run {
    run_as(messages, rate, 1)
}

/// [`run`] with the shard being shard 0 of `shards`: it reads the whole feed but keeps only
/// the locates it owns (`locate % shards == 0`), as each shard of a fleet does.
fn run_as(messages: u64, rate: u64, shards: u16) -> Run {
    let consumer_core = common::pin(0);
    let shard_core = common::cores().get(1).map(|c| c.id);
    let full = common::full_run();
    let config = common::shard(shard_core.filter(|c| Some(*c) != consumer_core), shards);
    let source: Box<dyn FeedSource> = Box::new(common::paced::Paced::new(messages, rate));
    let topology = Arc::new(Topology::detect_or_fallback());
    let mut plane = DataPlane::start(topology, vec![config], vec![source]).expect("shard starts");
    let mut events = plane.shards_mut()[0].take_events().expect("event consumer");
    let stats = Arc::clone(plane.shards()[0].stats());
    let mut latency = common::histogram();
    let started = Instant::now();
    let mut count = 0u64;
    let mut last_look = Instant::now();
    loop {
        let mut got = false;
        while let Some(event) = events.pop() {
            got = true;
            count += 1;
            if let Event::Level(l) = event
                && l.exchange_ns != 0
            {
                common::record_ns(&mut latency, now_ns().saturating_sub(l.exchange_ns) as f64);
            }
        }
        if got {
            continue;
        }
        // Reading the shard's stats pulls its cache lines over: look only once a millisecond.
        if last_look.elapsed() >= Duration::from_millis(1) {
            last_look = Instant::now();
            if stats.snapshot().messages() >= messages && events.is_empty() {
                break;
            }
        }
        if !full {
            std::thread::yield_now();
        }
    }
    let elapsed = started.elapsed();
    plane.stop();
    Run {
        latency,
        messages,
        elapsed,
        events: count,
    }
}

/// Messages released before a streams run starts: the directory and the first orders.
const WARMUP: usize = 2_000;

/// `messages` unpaced through one shard on the second core, after a warm-up during which,
/// when `streams`, every published symbol's order stream is turned on. Returns
/// the elapsed time of the measured part and the events consumed in it.
fn run_streams(messages: u64, streams: bool) -> (Duration, u64) {
    let consumer_core = common::pin(0);
    let shard_core = common::cores().get(1).map(|c| c.id);
    let mut config = common::shard(shard_core.filter(|c| Some(*c) != consumer_core), 1);
    // a resync of any book with its orders fits
    config.event_ring = 1 << 20;
    let go = Arc::new(AtomicBool::new(false));
    let source: Box<dyn FeedSource> = Box::new(
        common::paced::Paced::new(messages + WARMUP as u64, 0).gated(WARMUP, Arc::clone(&go)),
    );
    let topology = Arc::new(Topology::detect_or_fallback());
    let mut plane = DataPlane::start(topology, vec![config], vec![source]).expect("shard starts");
    let mut events = plane.shards_mut()[0].take_events().expect("event consumer");
    let stats = Arc::clone(plane.shards()[0].stats());
    let mut symbols = Vec::new();
    let warm = Instant::now();
    while stats.snapshot().messages() < WARMUP as u64 || !events.is_empty() {
        while let Some(event) = events.pop() {
            if let Event::SymbolAdded { symbol, .. } = event {
                symbols.push(symbol);
            }
        }
        assert!(
            warm.elapsed() < Duration::from_secs(30),
            "the warm-up never ended"
        );
        std::thread::yield_now();
    }
    if streams {
        for &symbol in &symbols {
            // the shard sends each book with its orders: keep its ring drained meanwhile
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    let outcome = plane.execute(
                        |id| Command::SetStreams {
                            id,
                            symbol,
                            orders: true,
                            trades: false,
                            resend: false,
                            epoch: 1,
                        },
                        Duration::from_secs(10),
                    );
                    let _ = tx.send(outcome.is_ok());
                });
                while rx.try_recv().is_err() {
                    while events.pop().is_some() {}
                    std::thread::yield_now();
                }
            });
        }
    }
    while events.pop().is_some() {}
    let full = common::full_run();
    let started = Instant::now();
    go.store(true, Ordering::Release);
    let mut count = 0u64;
    let mut last_look = Instant::now();
    let total = messages + WARMUP as u64;
    loop {
        let mut got = false;
        while events.pop().is_some() {
            got = true;
            count += 1;
        }
        if got {
            continue;
        }
        if last_look.elapsed() >= Duration::from_millis(1) {
            last_look = Instant::now();
            if stats.snapshot().messages() >= total && events.is_empty() {
                break;
            }
        }
        if !full {
            std::thread::yield_now();
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(
        stats.snapshot().ring_full,
        0,
        "the consumer fell behind: the comparison would be of resyncs"
    );
    plane.stop();
    (elapsed, count)
}

/// The machine's own floor: a thread pinned to the shard's core spins on the clock for
/// `seconds` and records every gap above 1 µs (timer ticks, hypervisor exits, other tasks).
/// Any event in flight during such a gap waits that long, whatever the code does.
fn hiccups(seconds: u64) -> (Histogram<u64>, f64) {
    let core = common::cores().get(1).copied();
    std::thread::spawn(move || {
        if let Some(core) = core {
            core_affinity::set_for_current(core);
        }
        let mut gaps = common::histogram();
        let end = now_ns() + seconds * 1_000_000_000;
        let mut last = now_ns();
        let mut lost = 0u64;
        while last < end {
            let now = now_ns();
            let gap = now - last;
            if gap > 1_000 {
                common::record_ns(&mut gaps, gap as f64);
                lost += gap;
            }
            last = now;
        }
        (gaps, lost as f64 / (seconds * 1_000_000_000).max(1) as f64)
    })
    .join()
    .expect("hiccup thread")
}

fn report() {
    let seconds = common::scale(2, 0);
    let runs: Vec<(String, Run)> = [100_000u64, 1_000_000]
        .into_iter()
        .map(|rate| {
            let messages = if seconds == 0 { 5_000 } else { rate * seconds };
            (
                format!("paced {} k msg/s", rate / 1000),
                run(messages, rate),
            )
        })
        .collect();
    let rows: Vec<(&str, &Histogram<u64>)> =
        runs.iter().map(|(n, r)| (n.as_str(), &r.latency)).collect();
    common::print_table(
        "ingest → event popped on the other core (from the intended injection time), ns",
        "ns per level event",
        &rows,
    );
    for (name, r) in &runs {
        println!(
            "  {name}: {} messages, {} events in {:.2?}",
            r.messages, r.events, r.elapsed
        );
    }
    let (gaps, lost) = hiccups(common::scale(2, 0));
    common::print_table(
        "the machine's floor: gaps > 1 µs seen by a thread spinning on the clock, shard's core",
        "ns per gap",
        &[("hiccups", &gaps)],
    );
    println!(
        "  {} gaps, {:.3} % of the time lost",
        gaps.len(),
        lost * 100.0
    );
    let messages = common::scale(4_000_000, 20_000);
    let unpaced = run(messages, 0);
    println!();
    println!(
        "maximum sustained rate (unpaced feed, consumer keeping up): {:.2} M msg/s \
         ({} messages, {} events in {:.2?})",
        messages as f64 / unpaced.elapsed.as_secs_f64() / 1e6,
        messages,
        unpaced.events,
        unpaced.elapsed
    );
    // What the order stream costs: off, on, off, on (the same stream each time)
    let messages = common::scale(2_000_000, 20_000);
    let mut off = Vec::new();
    let mut on = Vec::new();
    for _ in 0..2 {
        off.push(run_streams(messages, false));
        on.push(run_streams(messages, true));
    }
    let rate = |(elapsed, _): &(Duration, u64)| messages as f64 / elapsed.as_secs_f64() / 1e6;
    let best = |runs: &[(Duration, u64)]| runs.iter().map(rate).fold(0.0, f64::max);
    println!(
        "  order stream of every symbol on: {:.2} M msg/s ({} events) against {:.2} M msg/s \
         off ({} events), best of 2 each: ratio {:.2}",
        best(&on),
        on[0].1,
        best(&off),
        off[0].1,
        best(&on) / best(&off)
    );
    // How one feed reaches several shards: each reads it all and skips the locates it does
    // not own. Shard 0 of 2 and of 4 on the same stream: what skipping costs.
    for shards in [2u16, 4] {
        let part = run_as(messages, 0, shards);
        println!(
            "  as shard 0 of {shards} (keeps 1/{shards} of the locates, skips the rest): \
             {:.2} M msg/s read ({} events in {:.2?})",
            messages as f64 / part.elapsed.as_secs_f64() / 1e6,
            part.events,
            part.elapsed
        );
    }
}

fn main() {
    common::main(common::no_criterion, Duration::from_secs(1), report);
}
