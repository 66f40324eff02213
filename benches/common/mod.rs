//! Shared bench plumbing: run mode, core pinning, HDR tables with ratios.
#![allow(dead_code)] // each bench uses a different subset

pub mod paced;

use std::time::Duration;

use criterion::Criterion;
use dataplane::book::BooksConfig;
use dataplane::runtime::ShardConfig;
use dataplane::runtime::idle::IdleStrategy;
use hdrhistogram::Histogram;

/// The `main` of every bench: the machine line (which also records the allowed cores before
/// anything is pinned), the criterion groups, then the HDR report with percentiles and ratios.
pub fn main(targets: fn(&mut Criterion), measurement: Duration, report: fn()) {
    print_machine();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(measurement)
        .configure_from_args();
    targets(&mut criterion);
    criterion.final_summary();
    report();
}

/// The criterion targets of a bench whose figures are all in its HDR report.
pub fn no_criterion(_: &mut Criterion) {}

/// True under `cargo bench` (criterion passes `--bench`); false under `cargo test --benches`,
/// where every bench runs once with small counts so CI stays fast.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `full` under `cargo bench`, `quick` under `cargo test --benches`.
pub fn scale(full: u64, quick: u64) -> u64 {
    if full_run() { full } else { quick }
}

/// The cpu ids this process may run on, as core_affinity numbers them, read once before any
/// thread is pinned (afterwards the pinned thread's own mask would shrink the answer).
pub fn cores() -> &'static [core_affinity::CoreId] {
    static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// Pins the calling thread to the `i`-th allowed core (modulo the count); returns its id.
pub fn pin(i: usize) -> Option<usize> {
    let cores = cores();
    let core = *cores.get(i % cores.len().max(1))?;
    core_affinity::set_for_current(core).then_some(core.id)
}

/// Shard 0 of `shards`, pinned to `core` (which the caller keeps apart from its own threads'),
/// publishing everything. It busy-polls (pure spin) only under `cargo bench` and only when it
/// has a core of its own: an unpinned spinning shard would fight the bench's threads for one.
pub fn shard(core: Option<usize>, shards: u16) -> ShardConfig {
    ShardConfig {
        core,
        books: BooksConfig::default(),
        event_ring: 1 << 16,
        idle: if full_run() && core.is_some() {
            IdleStrategy::Spin
        } else {
            IdleStrategy::for_tests()
        },
        ..ShardConfig::for_tests(0, shards)
    }
}

/// A histogram of picoseconds (so sub-nanosecond per-item costs keep their resolution).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000_000, 3).expect("valid histogram bounds")
}

/// Records `ns` nanoseconds (fractional) into a picosecond histogram.
pub fn record_ns(h: &mut Histogram<u64>, ns: f64) {
    h.saturating_record((ns * 1000.0).round().max(1.0) as u64);
}

fn ns(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Prints one table: a row per implementation, p50/p99/p99.9/max in ns, and each row's p50 and
/// p99 as a ratio `row / first row` (so for a peer row, > 1.00 means the first row — pinbook —
/// is faster by that factor).
pub fn print_table(title: &str, unit: &str, rows: &[(&str, &Histogram<u64>)]) {
    println!();
    println!("{title}");
    println!(
        "  {:<36} {:>9} {:>9} {:>9} {:>10} {:>8} {:>12} {:>12}",
        unit, "p50", "p99", "p99.9", "max", "samples", "p50 ratio", "p99 ratio"
    );
    let Some((_, base)) = rows.first() else {
        return;
    };
    for (name, h) in rows {
        println!(
            "  {:<36} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>8} {:>11.2}x {:>11.2}x",
            name,
            ns(h, 0.50),
            ns(h, 0.99),
            ns(h, 0.999),
            h.max() as f64 / 1000.0,
            h.len(),
            ns(h, 0.50) / ns(base, 0.50),
            ns(h, 0.99) / ns(base, 0.99),
        );
    }
}

/// Prints the machine the figures come from.
pub fn print_machine() {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let nproc = cores().len();
    println!(
        "machine: nproc={nproc}, cpu={model}, full_run={}",
        full_run()
    );
}
