//! Order-reference index: open addressing and the chunked direct array side by side with
//! `std::collections::HashMap` (ahash and the default SipHash), all behind the same API.
//!
//! Every index is built for the production configuration, `max_live` = 2 M (the real-day peak
//! is 1.65 M), and holds a 1 M-order book. Three workloads, each replayed identically to every
//! index:
//! 1. **day mix** — a trace from a day model: references rise by 1–4 per new order; each step
//!    is 40 % insert, 35 % remove, 25 % get. Removes and gets pick a young order (one of the
//!    newest ~4 K, exponentially biased to the newest) 80 % of the time, else any older order
//!    uniformly — so most orders die young while the rest rest long and spread over the day's
//!    references. At the 1 M target an insert first removes one order (so the book stays at
//!    1 M). The model is warmed up for 40 M steps before the trace starts.
//! 2. **get hit** — lookups of live orders chosen uniformly (the cold-cache case).
//! 3. **get miss** — lookups of references that are not live, uniformly between the oldest
//!    live reference and 1 M past the newest (ITCH streams carry some unknown references).
//!
//! criterion reports the mean per operation; then an HDR section times every operation on its
//! own with the TSC (quanta; a "timer + trace only" row shows the floor) and prints
//! p50/p99/p99.9/max with ratios to the first row. A last table gives each index's memory for
//! `max_live` = 2 M and the direct index's chunk use, for the whole feed and for a shard that
//! owns 1/8 of the symbols. `cargo bench --bench order_index`.
//!
//! What it showed (2-core shared VM, 300 MiB L3; four runs, means moved by up to 40 % between
//! runs): DirectIndex is fastest on the day mix (24–31 ns vs 37–53 ns for open addressing,
//! p99 ~140 vs ~450 ns per op), open addressing on uniform hits (18–26 vs 23–30 ns); Fibonacci
//! hashing beats ahash in the same table by ~1.4x; SipHash is 2–4x slower than either. The book
//! still uses open addressing: 64 MiB for 2 M orders against ~1 GiB, and a memory bound that
//! does not depend on how the day's orders die or on how symbols are sharded (see
//! `index_designs::OrderIndex`, before the book stored orders inline).

mod common;
mod index_designs;

use std::collections::hash_map::{Entry, HashMap};
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hdrhistogram::Histogram;
use index_designs::{
    AHash, CHUNK_BITS, CHUNK_REFS, DirectIndex, IndexError, Multiplicative, NO_SLOT,
    OpenAddressingIndex, RefIndex,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The production configuration every index is built with.
fn max_live() -> usize {
    common::scale(2_000_000, 8192) as usize
}

/// Orders in the book while measuring.
fn live_target() -> usize {
    common::scale(1_000_000, 4096) as usize
}

/// `std::collections::HashMap` behind the same API, for a peer row.
struct StdMap<S> {
    map: HashMap<u64, u32, S>,
    max_live: usize,
}

impl<S: BuildHasher + Default> RefIndex for StdMap<S> {
    fn with_capacity(max_live: usize) -> Self {
        Self {
            map: HashMap::with_capacity_and_hasher(max_live, S::default()),
            max_live,
        }
    }
    #[inline]
    fn insert(&mut self, order_ref: u64, slot: u32) -> Result<(), IndexError> {
        if slot == NO_SLOT {
            return Err(IndexError::ReservedSlot);
        }
        let full = self.map.len() >= self.max_live;
        match self.map.entry(order_ref) {
            Entry::Occupied(_) => Err(IndexError::Duplicate),
            Entry::Vacant(_) if full => Err(IndexError::Full),
            Entry::Vacant(v) => {
                v.insert(slot);
                Ok(())
            }
        }
    }
    #[inline]
    fn get(&self, order_ref: u64) -> Option<u32> {
        self.map.get(&order_ref).copied()
    }
    #[inline]
    fn remove(&mut self, order_ref: u64) -> Option<u32> {
        self.map.remove(&order_ref)
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn capacity(&self) -> usize {
        self.max_live
    }
}

type OpenFib = OpenAddressingIndex<Multiplicative>;
type OpenAHash = OpenAddressingIndex<AHash>;
type MapAHash = StdMap<ahash::RandomState>;
type MapSip = StdMap<std::collections::hash_map::RandomState>;

const NAMES: [&str; 5] = [
    "OpenAddressing (fib hash)",
    "OpenAddressing (ahash)",
    "DirectIndex",
    "std HashMap + ahash",
    "std HashMap (SipHash)",
];

/// One step of the day trace.
#[derive(Clone, Copy)]
enum Op {
    Insert(u64, u32),
    Remove(u64),
    Get(u64),
}

/// The day model: rising references, young orders that mostly die soon, old ones that rest.
struct Day {
    rng: SmallRng,
    head: u64,
    next_slot: u32,
    young: VecDeque<u64>,
    old: Vec<u64>,
    young_max: usize,
    target: usize,
    /// References between consecutive orders are `spacing × 1..=4`: 1 for the whole feed,
    /// N for a shard that owns 1/N of the symbols.
    spacing: u64,
}

impl Day {
    fn new(target: usize, spacing: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(0x17C4),
            head: 0,
            next_slot: 0,
            young: VecDeque::new(),
            old: Vec::with_capacity(target),
            young_max: (target / 256).max(16),
            target,
            spacing,
        }
    }

    fn live(&self) -> usize {
        self.young.len() + self.old.len()
    }

    fn add(&mut self) -> Op {
        self.head += self.spacing * self.rng.random_range(1..=4);
        self.young.push_back(self.head);
        if self.young.len() > self.young_max
            && let Some(r) = self.young.pop_front()
        {
            self.old.push(r);
        }
        self.next_slot = (self.next_slot + 1) % (NO_SLOT - 1);
        Op::Insert(self.head, self.next_slot)
    }

    /// A live order, young (biased to the newest) 80 % of the time, else any old one; removed
    /// from the model when `take`.
    fn pick(&mut self, take: bool) -> u64 {
        let young = self.old.is_empty() || (!self.young.is_empty() && self.rng.random_bool(0.8));
        if young {
            let mean = (self.young_max / 16) as f64;
            let back = (-self.rng.random::<f64>().ln() * mean) as usize;
            let k = self.young.len() - 1 - back.min(self.young.len() - 1);
            if take {
                self.young.remove(k).unwrap_or(0)
            } else {
                self.young[k]
            }
        } else {
            let k = self.rng.random_range(0..self.old.len());
            if take {
                self.old.swap_remove(k)
            } else {
                self.old[k]
            }
        }
    }

    /// One step: one or (at the target, insert after a remove) two operations.
    fn step(&mut self, out: &mut Vec<Op>) {
        let roll = self.rng.random_range(0..100);
        if roll < 40 || self.live() == 0 {
            if self.live() >= self.target {
                out.push(Op::Remove(self.pick(true)));
            }
            out.push(self.add());
        } else if roll < 75 {
            out.push(Op::Remove(self.pick(true)));
        } else {
            out.push(Op::Get(self.pick(false)));
        }
    }

    fn live_refs(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.old.iter().chain(&self.young).copied().collect();
        v.sort_unstable();
        v
    }
}

/// Everything the workloads replay, generated once so every index sees the same operations.
struct Workloads {
    /// The book when the trace starts, in reference order.
    initial: Vec<(u64, u32)>,
    /// The day-mix trace from `initial`.
    ops: Vec<Op>,
    /// The book at the end of the trace (to reset an index by removing it).
    end: Vec<u64>,
    /// Uniformly chosen live references of `initial`.
    hits: Vec<u64>,
    /// References not in `initial`.
    misses: Vec<u64>,
}

impl Workloads {
    fn generate(target: usize, spacing: u64) -> Self {
        let warm = common::scale(40_000_000, 40_000);
        let steps = common::scale(16_000_000, 20_000) as usize;
        let queries = common::scale(4_000_000, 10_000) as usize;
        let mut day = Day::new(target, spacing);
        // start from a full book so the warm-up is spent ageing it, not filling it
        let mut scratch = Vec::with_capacity(4);
        while day.live() < target {
            day.add();
        }
        for _ in 0..warm {
            scratch.clear();
            day.step(&mut scratch);
        }
        let initial_refs = day.live_refs();
        let initial = initial_refs
            .iter()
            .map(|&r| (r, (r % u64::from(NO_SLOT - 1)) as u32))
            .collect();
        let mut ops = Vec::with_capacity(steps + steps / 8);
        while ops.len() < steps {
            day.step(&mut ops);
        }
        let end = day.live_refs();
        let mut rng = SmallRng::seed_from_u64(0x5EED);
        let hits = (0..queries)
            .map(|_| initial_refs[rng.random_range(0..initial_refs.len())])
            .collect();
        let live: HashSet<u64> = initial_refs.iter().copied().collect();
        let (lo, hi) = (
            initial_refs.first().copied().unwrap_or(0),
            initial_refs.last().copied().unwrap_or(0) + (1 << 20),
        );
        let misses = std::iter::repeat_with(|| rng.random_range(lo..hi))
            .filter(|r| !live.contains(r))
            .take(queries)
            .collect();
        Self {
            initial,
            ops,
            end,
            hits,
            misses,
        }
    }

    fn span(&self) -> (u64, u64) {
        let lo = self.initial.first().map_or(0, |e| e.0);
        let hi = self.initial.last().map_or(0, |e| e.0);
        (lo, hi)
    }
}

/// An index loaded with the initial book, replaying the day trace from a cursor.
struct Replay<'w, I> {
    index: I,
    w: &'w Workloads,
    pos: usize,
    /// Operations whose result contradicted the trace (an insert refused, a live order
    /// missing): must stay 0, or the index is not doing the work the row claims.
    errors: u64,
}

impl<'w, I: RefIndex> Replay<'w, I> {
    fn new(w: &'w Workloads) -> Self {
        let mut index = I::with_capacity(max_live());
        let mut errors = 0;
        for &(r, s) in &w.initial {
            errors += u64::from(index.insert(r, s).is_err());
        }
        Self {
            index,
            w,
            pos: 0,
            errors,
        }
    }

    /// Back to the initial book (untimed): remove the end-of-trace book, reload the initial.
    fn rewind(&mut self) {
        for &r in &self.w.end {
            self.index.remove(r);
        }
        for &(r, s) in &self.w.initial {
            self.errors += u64::from(self.index.insert(r, s).is_err());
        }
        self.pos = 0;
    }

    #[inline(always)]
    fn apply(&mut self, op: Op) -> u32 {
        match op {
            Op::Insert(r, s) => match self.index.insert(r, s) {
                Ok(()) => s,
                Err(_) => {
                    self.errors += 1;
                    0
                }
            },
            Op::Remove(r) => self.index.remove(r).unwrap_or_else(|| {
                self.errors += 1;
                0
            }),
            Op::Get(r) => self.index.get(r).unwrap_or_else(|| {
                self.errors += 1;
                0
            }),
        }
    }

    /// The next operation of the trace, rewinding (untimed by the callers) at its end.
    #[inline(always)]
    fn next_op(&mut self) -> Op {
        if self.pos == self.w.ops.len() {
            self.rewind();
        }
        let op = self.w.ops[self.pos];
        self.pos += 1;
        op
    }

    /// Runs `n` trace operations; returns the time spent in them (rewinds excluded).
    fn run(&mut self, n: u64) -> Duration {
        let mut left = n as usize;
        let mut spent = Duration::ZERO;
        let mut sink = 0u32;
        while left > 0 {
            if self.pos == self.w.ops.len() {
                self.rewind();
            }
            let k = left.min(self.w.ops.len() - self.pos);
            let start = Instant::now();
            for i in self.pos..self.pos + k {
                sink ^= self.apply(self.w.ops[i]);
            }
            spent += start.elapsed();
            self.pos += k;
            left -= k;
        }
        black_box(sink);
        spent
    }
}

/// An index loaded with the initial book, for the read-only workloads.
fn loaded<I: RefIndex>(w: &Workloads) -> I {
    let mut index = I::with_capacity(max_live());
    for &(r, s) in &w.initial {
        let ok = index.insert(r, s).is_ok();
        assert!(ok, "initial book does not fit");
    }
    index
}

/// `n` lookups cycling through `refs`; returns the time and the number of hits.
fn lookups<I: RefIndex>(index: &I, refs: &[u64], cursor: &mut usize, n: u64) -> (Duration, u64) {
    let mut left = n as usize;
    let mut found = 0u64;
    let start = Instant::now();
    while left > 0 {
        if *cursor == refs.len() {
            *cursor = 0;
        }
        let k = left.min(refs.len() - *cursor);
        for &r in &refs[*cursor..*cursor + k] {
            found += u64::from(black_box(index.get(r)).is_some());
        }
        *cursor += k;
        left -= k;
    }
    (start.elapsed(), found)
}

fn bench_one<I: RefIndex>(c: &mut Criterion, w: &Workloads, name: &str) {
    let mut replay = Replay::<I>::new(w);
    c.benchmark_group("order_index/day_mix")
        .throughput(Throughput::Elements(1))
        .bench_function(name, |b| b.iter_custom(|n| replay.run(n)));
    assert_eq!(replay.errors, 0, "{name}: day mix contradicted the trace");
    drop(replay);

    let index: I = loaded(w);
    for (group, refs, hit) in [
        ("order_index/get_hit", &w.hits, true),
        ("order_index/get_miss", &w.misses, false),
    ] {
        let mut cursor = 0;
        c.benchmark_group(group)
            .throughput(Throughput::Elements(1))
            .bench_function(name, |b| {
                b.iter_custom(|n| {
                    let (d, found) = lookups(&index, refs, &mut cursor, n);
                    assert_eq!(found, if hit { n } else { 0 }, "{name}: {group}");
                    d
                })
            });
    }
}

/// The workloads, generated once per process.
fn workloads() -> &'static Workloads {
    static W: std::sync::OnceLock<Workloads> = std::sync::OnceLock::new();
    W.get_or_init(|| Workloads::generate(live_target(), 1))
}

fn criterion_benches(c: &mut Criterion) {
    common::pin(0);
    let w = workloads();
    bench_one::<OpenFib>(c, w, NAMES[0]);
    bench_one::<OpenAHash>(c, w, NAMES[1]);
    bench_one::<DirectIndex>(c, w, NAMES[2]);
    bench_one::<MapAHash>(c, w, NAMES[3]);
    bench_one::<MapSip>(c, w, NAMES[4]);
}

/// Per-operation latency of one index on every workload: day mix (all, and by kind), get hit,
/// get miss.
struct Latencies {
    mix: Histogram<u64>,
    kinds: [Histogram<u64>; 3],
    hit: Histogram<u64>,
    miss: Histogram<u64>,
}

impl Latencies {
    fn new() -> Self {
        Self {
            mix: common::histogram(),
            kinds: std::array::from_fn(|_| common::histogram()),
            hit: common::histogram(),
            miss: common::histogram(),
        }
    }
}

const KINDS: [&str; 3] = ["insert", "remove", "get"];

fn kind(op: Op) -> usize {
    match op {
        Op::Insert(..) => 0,
        Op::Remove(_) => 1,
        Op::Get(_) => 2,
    }
}

/// Times every operation alone with the TSC. `work` false measures the floor: the timer and
/// reading the trace, no index call.
fn latencies<I: RefIndex>(w: &Workloads, samples: u64, work: bool) -> Latencies {
    let clock = quanta::Clock::new();
    let mut l = Latencies::new();
    let mut replay = Replay::<I>::new(w);
    let mut sink = 0u32;
    for _ in 0..samples {
        let op = replay.next_op();
        let start = clock.raw();
        if work {
            sink ^= replay.apply(op);
        } else {
            black_box(op);
        }
        let ns = clock.delta(start, clock.raw()).as_nanos() as f64;
        common::record_ns(&mut l.mix, ns);
        common::record_ns(&mut l.kinds[kind(op)], ns);
    }
    if work {
        assert_eq!(replay.errors, 0, "day mix contradicted the trace");
    }
    drop(replay);
    let index: I = loaded(w);
    for (refs, h) in [(&w.hits, &mut l.hit), (&w.misses, &mut l.miss)] {
        for &r in refs.iter().cycle().take(samples as usize) {
            let start = clock.raw();
            if work {
                sink ^= black_box(index.get(black_box(r))).unwrap_or(0);
            } else {
                black_box(r);
            }
            common::record_ns(h, clock.delta(start, clock.raw()).as_nanos() as f64);
        }
    }
    black_box(sink);
    l
}

/// The most chunks the direct index holds during the day-mix trace.
fn direct_chunk_peak(w: &Workloads) -> (usize, usize) {
    let mut replay = Replay::<DirectIndex>::new(w);
    let initial = replay.index.chunks_in_use();
    let mut peak = initial;
    for _ in 0..w.ops.len() {
        let op = replay.next_op();
        replay.apply(op);
        peak = peak.max(replay.index.chunks_in_use());
    }
    (initial, peak)
}

/// Chunks the day-mix trace keeps alive (at its start, at its peak), counted from the trace
/// itself, so any reference range can be sized without building an index for it.
fn chunk_need(w: &Workloads) -> (usize, usize) {
    let mut per_chunk: HashMap<u64, u32> = HashMap::new();
    for &(r, _) in &w.initial {
        *per_chunk.entry(r >> CHUNK_BITS).or_default() += 1;
    }
    let initial = per_chunk.len();
    let mut peak = initial;
    for &op in &w.ops {
        match op {
            Op::Insert(r, _) => {
                *per_chunk.entry(r >> CHUNK_BITS).or_default() += 1;
                peak = peak.max(per_chunk.len());
            }
            Op::Remove(r) => {
                if let Entry::Occupied(mut e) = per_chunk.entry(r >> CHUNK_BITS) {
                    *e.get_mut() -= 1;
                    if *e.get() == 0 {
                        e.remove();
                    }
                }
            }
            Op::Get(_) => {}
        }
    }
    (initial, peak)
}

fn hdr_report() {
    common::pin(0);
    let w = workloads();
    let samples = common::scale(5_000_000, 10_000).min(w.ops.len() as u64);
    let rows = [
        latencies::<OpenFib>(w, samples, true),
        latencies::<OpenAHash>(w, samples, true),
        latencies::<DirectIndex>(w, samples, true),
        latencies::<MapAHash>(w, samples, true),
        latencies::<MapSip>(w, samples, true),
        latencies::<OpenFib>(w, samples, false),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .copied()
        .chain(["timer + trace only"])
        .collect();
    let table = |title: &str, pick: &dyn Fn(&Latencies) -> &Histogram<u64>| {
        let r: Vec<(&str, &Histogram<u64>)> = names
            .iter()
            .zip(&rows)
            .map(|(n, l)| (*n, pick(l)))
            .collect();
        common::print_table(title, "ns per op", &r);
    };
    let (lo, hi) = w.span();
    table(
        &format!(
            "day mix, {} live, refs {lo}..{hi}: each of {samples} ops timed alone, ns",
            w.initial.len()
        ),
        &|l| &l.mix,
    );
    for (k, name) in KINDS.iter().enumerate() {
        table(&format!("day mix, {name} only (same run), ns"), &|l| {
            &l.kinds[k]
        });
    }
    table(
        &format!("get hit, uniform over the live book: each of {samples} timed alone, ns"),
        &|l| &l.hit,
    );
    table(
        &format!("get miss, unknown references: each of {samples} timed alone, ns"),
        &|l| &l.miss,
    );

    // memory at the production configuration, and what the direct index really needed
    let max = max_live();
    let (initial, peak) = direct_chunk_peak(w);
    let mib = |b: usize| b as f64 / f64::from(1 << 20);
    let open = OpenFib::with_capacity(max);
    let (open_mib, open_bits) = (mib(open.memory_bytes()), open.table_len().trailing_zeros());
    drop(open);
    let direct = DirectIndex::with_capacity(max);
    println!();
    println!("memory for max_live = {max}");
    println!("  OpenAddressingIndex: {open_mib:.1} MiB (2^{open_bits} entries x 16 B)");
    println!(
        "  DirectIndex:         {:.1} MiB ({} chunks x 16 KiB + directory to 2^{} refs)",
        mib(direct.memory_bytes()),
        direct.chunk_capacity(),
        direct.max_ref().trailing_zeros()
    );
    println!(
        "  std HashMap<u64,u32>: ~{:.1} MiB (hashbrown: {} buckets x (16 B + 1 control byte))",
        mib((max * 8 / 7).next_power_of_two() * 17),
        (max * 8 / 7).next_power_of_two()
    );
    let live = w.initial.len();
    println!(
        "  DirectIndex chunks in use, day mix with {live} live: {initial} at start, peak {peak} \
         = {:.1} MiB, {:.0} refs per live order (budget {} chunks)",
        mib(peak * CHUNK_REFS * 4),
        (peak * CHUNK_REFS) as f64 / live as f64,
        direct.chunk_capacity()
    );
    drop(direct);
    // A shard owning 1/8 of the symbols sees 1/8 of the orders over the same reference range.
    let shards = 8;
    let shard = Workloads::generate(live_target() / shards, shards as u64);
    let (initial, peak) = chunk_need(&shard);
    let shard_live = shard.initial.len();
    println!(
        "  1-of-{shards} shard, same day model with {shard_live} live (refs {shards}x sparser): \
         DirectIndex needs {initial} chunks at start, peak {peak} = {:.1} MiB, {:.0} refs per \
         live order; with_capacity({}) budgets {} chunks; OpenAddressingIndex {:.1} MiB",
        mib(peak * CHUNK_REFS * 4),
        (peak * CHUNK_REFS) as f64 / shard_live as f64,
        max / shards,
        DirectIndex::chunks_for(max / shards),
        mib(OpenFib::with_capacity(max / shards).memory_bytes()),
    );
}

fn main() {
    common::main(criterion_benches, Duration::from_secs(3), hdr_report);
}
