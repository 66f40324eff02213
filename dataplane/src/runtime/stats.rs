//! Per-shard stats: [`ShardStats`], one cache-aligned struct of single-writer atomic counters
//! that the shard thread writes and any thread reads without a lock, and
//! [`LatencyHistogram`], its fixed-bucket latency histogram.
//!
//! **One writer.** Every recording method must be called from one thread only, the shard's.
//! That is what makes an increment a plain `load` + `store` (both `Relaxed`) instead of a
//! locked read-modify-write: nobody else stores to the counter, so the load returns the
//! writer's own last store and the store cannot overwrite anyone's update. Readers see each
//! counter only ever grow (per-location coherence), each value one the writer stored. A second
//! writer would lose counts (never memory safety): don't.
//!
//! **Snapshots are per counter.** [`ShardStats::snapshot`] reads the counters one after
//! another while the shard keeps writing, so two counters of one snapshot may be from slightly
//! different instants; each is exact for its own instant, and a later snapshot never shows
//! less. That is what a Prometheus scrape needs.
//!
//! ```
//! use dataplane::runtime::stats::{Counter, ShardStats};
//!
//! let stats = ShardStats::new();
//! stats.count_message(b'A');
//! stats.add(Counter::Gaps, 1);
//! stats.record_loop(true, 300);
//! stats.record_ingest_to_publish(1_200);
//! let s = stats.snapshot();
//! assert_eq!(s.messages_of(b'A'), 1);
//! assert_eq!(s.gaps, 1);
//! assert_eq!(s.max_loop_ns, 300);
//! assert!(s.ingest_to_publish.quantile(0.5) >= 1_200);
//! ```

use std::fmt;

use crate::book::BookStats;
use crate::sync::{AtomicU64, Ordering::Relaxed};

use super::counters::{BOOK_COUNTERS, FEED_COUNTERS, book_values, feed_values};
pub use super::counters::{Counter, StatsSnapshot};
use crate::source::FeedStats;

/// Adds `n` to a counter only this thread writes: one load and one store, no lock prefix.
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Raises a counter only this thread writes to `v` if `v` is larger.
#[inline(always)]
fn raise(counter: &AtomicU64, v: u64) {
    if v > counter.load(Relaxed) {
        counter.store(v, Relaxed);
    }
}

/// Number of ITCH message type letters counted one by one (`'A'..='Z'`).
pub const MESSAGE_TYPES: usize = 26;

/// The stats of one shard: counters written only by the shard thread, read lock-free by any
/// thread (see the [module docs](self) for why single-writer `Relaxed` loads and stores are
/// enough).
///
/// Aligned to 128 bytes (two cache lines, the unit of the adjacent-line prefetcher) so no other
/// data shares its lines and nothing it holds is falsely shared with a neighbour's writes.
#[repr(align(128))]
pub struct ShardStats {
    /// ITCH messages by type letter, index `type - b'A'`.
    messages_by_type: [AtomicU64; MESSAGE_TYPES],
    /// ITCH messages whose type byte is not `'A'..='Z'`.
    messages_other: AtomicU64,
    /// Event counters, indexed by `Counter as usize`.
    counters: [AtomicU64; Counter::COUNT],
    /// Book counters: totals copied from the books' `BookStats` by `publish_book`, in the
    /// order of the table in [`super::counters`].
    book: [AtomicU64; BOOK_COUNTERS],
    /// Feed counters: totals copied from the source's `FeedStats` by `publish_feed`.
    feed: [AtomicU64; FEED_COUNTERS],
    // The shard loop.
    busy_iterations: AtomicU64,
    idle_iterations: AtomicU64,
    busy_ns_total: AtomicU64,
    max_loop_ns: AtomicU64,
    // Occupancy, stored (not added) by `set_occupancy`.
    orders_live: AtomicU64,
    levels_live: AtomicU64,
    ingest_to_publish: LatencyHistogram,
}

const _: () = assert!(std::mem::align_of::<ShardStats>() == 128);

impl ShardStats {
    /// All counters at zero.
    pub fn new() -> Self {
        Self {
            messages_by_type: std::array::from_fn(|_| AtomicU64::new(0)),
            messages_other: AtomicU64::new(0),
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
            book: std::array::from_fn(|_| AtomicU64::new(0)),
            feed: std::array::from_fn(|_| AtomicU64::new(0)),
            busy_iterations: AtomicU64::new(0),
            idle_iterations: AtomicU64::new(0),
            busy_ns_total: AtomicU64::new(0),
            max_loop_ns: AtomicU64::new(0),
            orders_live: AtomicU64::new(0),
            levels_live: AtomicU64::new(0),
            ingest_to_publish: LatencyHistogram::new(),
        }
    }

    /// Counts one ITCH message of type `type_byte` (its first byte). Shard thread only.
    #[inline]
    pub fn count_message(&self, type_byte: u8) {
        let counter = self
            .messages_by_type
            .get(usize::from(type_byte.wrapping_sub(b'A')))
            .unwrap_or(&self.messages_other);
        bump(counter, 1);
    }

    /// Adds `n` to `counter`. Shard thread only.
    #[inline]
    pub fn add(&self, counter: Counter, n: u64) {
        bump(&self.counters[counter as usize], n);
    }

    /// Records how many orders and price levels the shard's books hold. Shard thread only.
    #[inline]
    pub fn set_occupancy(&self, orders: u64, levels: u64) {
        self.orders_live.store(orders, Relaxed);
        self.levels_live.store(levels, Relaxed);
    }

    /// The current value of `counter`. Any thread.
    #[inline]
    pub fn get(&self, counter: Counter) -> u64 {
        self.counters[counter as usize].load(Relaxed)
    }

    /// Copies the current totals of the books' counters that are exported (see the table in
    /// [`super::counters`]). Shard thread only.
    pub fn publish_book(&self, book: &BookStats) {
        for (counter, total) in self.book.iter().zip(book_values(book)) {
            counter.store(total, Relaxed);
        }
    }

    /// Copies the source's own counters (totals) for readers.
    pub fn publish_feed(&self, feed: &FeedStats) {
        for (counter, total) in self.feed.iter().zip(feed_values(feed)) {
            counter.store(total, Relaxed);
        }
    }

    /// Counts one iteration of the shard loop. A busy one (it did work) also adds `ns`, how
    /// long it took, to the busy time and raises the maximum. For an idle one `ns` is ignored:
    /// it includes the idle strategy's yield or sleep, which says nothing about the hot path.
    /// Shard thread only.
    #[inline]
    pub fn record_loop(&self, busy: bool, ns: u64) {
        if busy {
            bump(&self.busy_iterations, 1);
            bump(&self.busy_ns_total, ns);
            raise(&self.max_loop_ns, ns);
        } else {
            bump(&self.idle_iterations, 1);
        }
    }

    /// Records the time from a message's arrival to the publication of the event it caused.
    /// Shard thread only.
    #[inline]
    pub fn record_ingest_to_publish(&self, ns: u64) {
        self.ingest_to_publish.record(ns);
    }

    /// The ingest-to-publish histogram.
    pub fn ingest_to_publish(&self) -> &LatencyHistogram {
        &self.ingest_to_publish
    }

    /// Reads every counter (any thread; allocates the histogram's counts).
    pub fn snapshot(&self) -> StatsSnapshot {
        let load = |c: &AtomicU64| c.load(Relaxed);
        StatsSnapshot {
            messages_by_type: std::array::from_fn(|i| load(&self.messages_by_type[i])),
            messages_other: load(&self.messages_other),
            busy_ns_total: load(&self.busy_ns_total),
            max_loop_ns: load(&self.max_loop_ns),
            orders_live: load(&self.orders_live),
            levels_live: load(&self.levels_live),
            ingest_to_publish: self.ingest_to_publish.snapshot(),
            ..StatsSnapshot::default()
        }
        .with_counters(
            &std::array::from_fn(|i| load(&self.counters[i])),
            &std::array::from_fn(|i| load(&self.book[i])),
            &std::array::from_fn(|i| load(&self.feed[i])),
            // in the order of the table's `of_the_loop` (its length is checked here)
            &[load(&self.busy_iterations), load(&self.idle_iterations)],
        )
    }
}

impl Default for ShardStats {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ShardStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ShardStats").field(&self.snapshot()).finish()
    }
}

/// Sub-buckets per power of two, as a power of two: 8 sub-buckets.
const SUB_BITS: u32 = 3;
/// Sub-buckets per power of two.
const SUB: u64 = 1 << SUB_BITS;
/// Values from here on go to the overflow bucket: 2^36 ns ≈ 68.7 s.
const LIMIT_BITS: u32 = 36;
/// Index of the overflow bucket, the last one.
const OVERFLOW: usize = (SUB as usize) * ((LIMIT_BITS - SUB_BITS) as usize + 1);

/// A latency histogram over nanoseconds with fixed log-linear buckets: no allocation, constant
/// time, one writer.
///
/// Buckets: values `0..8` each have their own; above, every power of two `[2^e, 2^(e+1))` is cut
/// into 8 equal sub-buckets, up to 2^36 ns (≈ 68.7 s); everything from 2^36 on goes to one
/// overflow bucket. That is [`BUCKETS`](Self::BUCKETS) = 273 buckets.
///
/// **Relative error.** A bucket starting at `L ≥ 8` is at most `L / 8` wide, so the upper bound
/// of the bucket holding a value `v` is below `v · (1 + 1/8)`: a quantile is over-reported by
/// less than 12.5% (and never under-reported). Values below 8 ns are exact; a quantile is never
/// reported above the largest value recorded.
///
/// The bounds are inclusive integers, so they are Prometheus `le` bounds as they are (the
/// overflow bucket's is `u64::MAX`, i.e. `+Inf`). Cumulative counts are exact at every bound,
/// so an exporter may emit any subset of them.
pub struct LatencyHistogram {
    counts: [AtomicU64; LatencyHistogram::BUCKETS],
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl LatencyHistogram {
    /// Number of buckets, the overflow bucket included.
    pub const BUCKETS: usize = OVERFLOW + 1;

    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    /// The bucket `ns` falls in. Constant time: a `leading_zeros`, shifts and masks.
    #[inline]
    pub const fn bucket_of(ns: u64) -> usize {
        if ns < SUB {
            ns as usize
        } else if ns >> LIMIT_BITS != 0 {
            OVERFLOW
        } else {
            let e = u64::BITS - 1 - ns.leading_zeros(); // 2^e ≤ ns, e ≥ SUB_BITS
            let shift = e - SUB_BITS;
            (((shift + 1) as usize) << SUB_BITS) + ((ns >> shift) & (SUB - 1)) as usize
        }
    }

    /// The smallest value of bucket `i` (`i < BUCKETS`).
    pub const fn bucket_lower_bound(i: usize) -> u64 {
        if i < SUB as usize {
            i as u64
        } else if i >= OVERFLOW {
            1 << LIMIT_BITS
        } else {
            let shift = (i >> SUB_BITS) - 1;
            (SUB + (i as u64 & (SUB - 1))) << shift
        }
    }

    /// The largest value of bucket `i` (`i < BUCKETS`), inclusive: its Prometheus `le`.
    /// `u64::MAX` for the overflow bucket.
    pub const fn bucket_upper_bound(i: usize) -> u64 {
        if i >= OVERFLOW {
            u64::MAX
        } else {
            Self::bucket_lower_bound(i + 1) - 1
        }
    }

    /// Every bucket's [upper bound](Self::bucket_upper_bound), in bucket order (increasing).
    pub fn bucket_upper_bounds() -> impl Iterator<Item = u64> {
        (0..Self::BUCKETS).map(Self::bucket_upper_bound)
    }

    /// Records one value. Writer thread only.
    #[inline]
    pub fn record(&self, ns: u64) {
        bump(&self.counts[Self::bucket_of(ns)], 1);
        bump(&self.sum_ns, ns);
        raise(&self.max_ns, ns);
    }

    /// Reads the histogram (any thread). The counts are read bucket by bucket while the writer
    /// may be recording, so the snapshot's count and sum may disagree by the values in flight;
    /// its count is the sum of its bucket counts, so the buckets always add up.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum_ns: self.sum_ns.load(Relaxed),
            max_ns: self.max_ns.load(Relaxed),
        }
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LatencyHistogram")
            .field(&self.snapshot())
            .finish()
    }
}

/// A [`LatencyHistogram`] as read at one moment (per bucket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot {
    counts: Vec<u64>,
    sum_ns: u64,
    max_ns: u64,
}

impl HistogramSnapshot {
    /// Values per bucket, [`LatencyHistogram::BUCKETS`] of them, in bucket order.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the values recorded, in nanoseconds.
    pub fn sum_ns(&self) -> u64 {
        self.sum_ns
    }

    /// The largest value recorded (0 when none).
    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    /// For each bucket, its upper bound (`le`) and the values at or below it: a Prometheus
    /// histogram's buckets, the last one `+Inf` (`u64::MAX`) holding [`count`](Self::count).
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .zip(LatencyHistogram::bucket_upper_bounds())
            .scan(0u64, |total, (&n, le)| {
                *total += n;
                Some((le, *total))
            })
    }

    /// An upper bound of the `q`-quantile (`q` in `0.0..=1.0`, clamped): the upper bound of the
    /// bucket holding the `⌈q · count⌉`-th smallest value (the smallest for `q = 0`), but no
    /// more than [`max_ns`](Self::max_ns). At most 12.5% above the true value (see
    /// [`LatencyHistogram`]). 0 when the histogram is empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let count = self.count();
        if count == 0 {
            return 0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        // The float product is within one of the exact rank; clamping keeps it a valid rank.
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return LatencyHistogram::bucket_upper_bound(i).min(self.max_ns);
            }
        }
        self.max_ns
    }
}

impl Default for HistogramSnapshot {
    /// An empty histogram's snapshot ([`LatencyHistogram::BUCKETS`] zero counts).
    fn default() -> Self {
        Self {
            counts: vec![0; LatencyHistogram::BUCKETS],
            sum_ns: 0,
            max_ns: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn every_counter_reaches_its_snapshot_field() {
        let stats = ShardStats::new();
        // A distinct amount per counter, so a swapped field shows.
        for (i, counter) in Counter::ALL.into_iter().enumerate() {
            stats.add(counter, 100 + i as u64);
            stats.add(counter, 1000);
        }
        let s = stats.snapshot();
        let got = [
            s.parse_errors,
            s.gaps,
            s.messages_lost,
            s.duplicates,
            s.malformed,
            s.heartbeats,
            s.restarts,
            s.ring_full,
            s.resyncs,
            s.events_published,
            s.commands,
            s.foreign_sender,
            s.foreign_session,
            s.implausible_sequence,
            s.framing_lost,
            s.undefined_price,
            s.no_side,
            s.unsupported_record,
            s.unknown_instrument,
            s.records_add,
            s.records_cancel,
            s.records_modify,
            s.records_clear,
            s.records_trade,
            s.records_fill,
            s.records_none,
            s.records_other,
            s.trades_fill,
            s.trades_tape,
            s.trades_cross,
            s.trades_broken,
            s.halts,
            s.order_events,
        ];
        let want: Vec<u64> = (0..Counter::COUNT as u64).map(|i| 1100 + i).collect();
        assert_eq!(got.to_vec(), want);
        assert_eq!(Counter::ALL.len(), Counter::COUNT);
        for (i, c) in Counter::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i, "ALL is in declaration order");
        }
        // Nothing else moved.
        let untouched = StatsSnapshot {
            parse_errors: s.parse_errors,
            gaps: s.gaps,
            messages_lost: s.messages_lost,
            duplicates: s.duplicates,
            malformed: s.malformed,
            heartbeats: s.heartbeats,
            restarts: s.restarts,
            ring_full: s.ring_full,
            resyncs: s.resyncs,
            events_published: s.events_published,
            foreign_sender: s.foreign_sender,
            foreign_session: s.foreign_session,
            implausible_sequence: s.implausible_sequence,
            framing_lost: s.framing_lost,
            commands: s.commands,
            undefined_price: s.undefined_price,
            no_side: s.no_side,
            unsupported_record: s.unsupported_record,
            unknown_instrument: s.unknown_instrument,
            records_add: s.records_add,
            records_cancel: s.records_cancel,
            records_modify: s.records_modify,
            records_clear: s.records_clear,
            records_trade: s.records_trade,
            records_fill: s.records_fill,
            records_none: s.records_none,
            records_other: s.records_other,
            trades_fill: s.trades_fill,
            trades_tape: s.trades_tape,
            trades_cross: s.trades_cross,
            trades_broken: s.trades_broken,
            halts: s.halts,
            order_events: s.order_events,
            ..StatsSnapshot::default()
        };
        assert_eq!(s, untouched);
    }

    #[test]
    fn messages_are_counted_by_type_letter() {
        let stats = ShardStats::new();
        for (i, letter) in (b'A'..=b'Z').enumerate() {
            for _ in 0..=i {
                stats.count_message(letter);
            }
        }
        for other in [0u8, b'@', b'[', b'a', b'z', 0xff] {
            stats.count_message(other);
        }
        let s = stats.snapshot();
        for (i, letter) in (b'A'..=b'Z').enumerate() {
            assert_eq!(s.messages_by_type[i], i as u64 + 1);
            assert_eq!(s.messages_of(letter), i as u64 + 1);
        }
        assert_eq!(s.messages_other, 6);
        assert_eq!(s.messages_of(b'a'), 6);
        assert_eq!(s.messages(), (1..=26).sum::<u64>() + 6);
    }

    #[test]
    fn publish_book_mirrors_the_book_counters() {
        let stats = ShardStats::new();
        let mut book = BookStats {
            messages: 1,
            adds: 2,
            executions: 3,
            cancels: 4,
            deletes: 5,
            replaces: 6,
            skipped: 7,
            changes: 8,
            unknown_refs: 9,
            duplicate_refs: 10,
            overfills: 11,
            crossed: 12,
            orders_full: 13,
            levels_full: 14,
            symbols_full: 15,
            modifies: 16,
            modify_unknown: 17,
            clears: 18,
        };
        stats.publish_book(&book);
        let s = stats.snapshot();
        assert_eq!(
            [
                s.unknown_refs,
                s.duplicate_refs,
                s.overfills,
                s.crossings,
                s.orders_full,
                s.levels_full,
                s.symbols_full,
                s.modify_unknown
            ],
            [9, 10, 11, 12, 13, 14, 15, 17]
        );
        // Totals are stored, not added.
        book.unknown_refs = 20;
        stats.publish_book(&book);
        stats.publish_book(&book);
        assert_eq!(stats.snapshot().unknown_refs, 20);
        assert_eq!(stats.snapshot().crossings, 12);
    }

    #[test]
    fn loop_iterations_and_the_max() {
        let stats = ShardStats::new();
        assert_eq!(stats.snapshot().busy_ratio(), 0.0);
        for ns in [50, 400, 30, 399, 0] {
            stats.record_loop(true, ns);
        }
        stats.record_loop(false, 1_000_000); // idle time is not loop time
        stats.record_loop(false, 0);
        stats.record_loop(false, 0);
        let s = stats.snapshot();
        assert_eq!(s.busy_iterations, 5);
        assert_eq!(s.idle_iterations, 3);
        assert_eq!(s.busy_ns_total, 879);
        assert_eq!(s.max_loop_ns, 400);
        assert_eq!(s.busy_ratio(), 5.0 / 8.0);
        stats.record_loop(true, 401);
        assert_eq!(stats.snapshot().max_loop_ns, 401);
    }

    #[test]
    fn ingest_to_publish_reaches_the_snapshot() {
        let stats = ShardStats::new();
        stats.record_ingest_to_publish(5);
        stats.record_ingest_to_publish(1000);
        let h = stats.snapshot().ingest_to_publish;
        assert_eq!(h.count(), 2);
        assert_eq!(h.sum_ns(), 1005);
        assert_eq!(h.max_ns(), 1000);
        assert_eq!(h, stats.ingest_to_publish().snapshot());
        assert_eq!(h.counts()[5], 1);
        assert_eq!(h.counts()[LatencyHistogram::bucket_of(1000)], 1);
    }

    #[test]
    fn alignment_and_debug() {
        let stats = ShardStats::new();
        assert_eq!(std::ptr::from_ref(&stats).addr() % 128, 0);
        stats.add(Counter::Gaps, 3);
        assert!(format!("{stats:?}").contains("gaps: 3"));
    }

    #[test]
    fn buckets_tile_all_of_u64_in_order() {
        assert_eq!(LatencyHistogram::BUCKETS, 273);
        assert_eq!(LatencyHistogram::bucket_lower_bound(0), 0);
        let last = LatencyHistogram::BUCKETS - 1;
        assert_eq!(LatencyHistogram::bucket_upper_bound(last), u64::MAX);
        assert_eq!(LatencyHistogram::bucket_lower_bound(last), 1 << 36);
        let uppers: Vec<u64> = LatencyHistogram::bucket_upper_bounds().collect();
        assert_eq!(uppers.len(), LatencyHistogram::BUCKETS);
        for i in 0..LatencyHistogram::BUCKETS {
            let (lo, hi) = (
                LatencyHistogram::bucket_lower_bound(i),
                LatencyHistogram::bucket_upper_bound(i),
            );
            assert!(lo <= hi, "bucket {i}: {lo}..={hi}");
            assert_eq!(LatencyHistogram::bucket_of(lo), i);
            assert_eq!(LatencyHistogram::bucket_of(hi), i);
            if i > 0 {
                assert_eq!(
                    lo,
                    uppers[i - 1] + 1,
                    "bucket {i} starts where {} ends",
                    i - 1
                );
            }
            // The documented relative width: below 1/8 of the lower bound from 8 on.
            if (8..last).contains(&i) {
                assert!((hi - lo + 1) * 8 <= lo, "bucket {i}: {lo}..={hi}");
            }
        }
        assert_eq!(LatencyHistogram::bucket_of(7), 7);
        assert_eq!(LatencyHistogram::bucket_of(8), 8);
        assert_eq!(LatencyHistogram::bucket_of(16), 16);
        assert_eq!(LatencyHistogram::bucket_of(17), 16);
        assert_eq!(LatencyHistogram::bucket_of(18), 17);
        assert_eq!(LatencyHistogram::bucket_of((1 << 36) - 1), last - 1);
        assert_eq!(LatencyHistogram::bucket_of(u64::MAX), last);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

        #[test]
        fn every_value_lands_in_the_bucket_that_contains_it(ns in any::<u64>(), small in 0u64..1 << 40) {
            for v in [ns, small] {
                let i = LatencyHistogram::bucket_of(v);
                prop_assert!(i < LatencyHistogram::BUCKETS);
                prop_assert!(LatencyHistogram::bucket_lower_bound(i) <= v);
                prop_assert!(v <= LatencyHistogram::bucket_upper_bound(i));
            }
        }

        #[test]
        fn quantiles_are_within_the_documented_error(
            values in proptest::collection::vec(
                prop_oneof![0u64..100, 0u64..100_000, 0u64..1 << 40, any::<u64>()],
                1..300,
            ),
            q in 0.0f64..=1.0,
        ) {
            let h = LatencyHistogram::new();
            for &v in &values {
                h.record(v);
            }
            let s = h.snapshot();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            prop_assert_eq!(s.count(), values.len() as u64);
            prop_assert_eq!(s.max_ns(), sorted[sorted.len() - 1]);
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            let exact = sorted[rank - 1];
            let got = s.quantile(q);
            prop_assert!(got >= exact, "q {} got {} exact {}", q, got, exact);
            if exact < 1 << 36 {
                prop_assert!(
                    u128::from(got) * 8 <= u128::from(exact) * 9,
                    "q {} got {} exact {}", q, got, exact
                );
            }
        }
    }

    #[test]
    fn quantiles_of_known_distributions() {
        // Uniform 1..=100_000.
        let h = LatencyHistogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 100_000);
        assert_eq!(s.sum_ns(), 100_000 * 100_001 / 2);
        for (q, exact) in [
            (0.5, 50_000u64),
            (0.9, 90_000),
            (0.99, 99_000),
            (0.999, 99_900),
        ] {
            let got = s.quantile(q);
            assert!(
                got >= exact && got * 8 <= exact * 9,
                "q {q}: {got} vs {exact}"
            );
        }
        assert_eq!(s.quantile(0.0), 1);
        assert_eq!(s.quantile(1.0), 100_000); // clamped to the max
        assert_eq!(s.quantile(f64::NAN), 1);

        // A constant: its bucket ends at 1023, but no quantile exceeds the max.
        let h = LatencyHistogram::new();
        for _ in 0..1000 {
            h.record(1_000);
        }
        let s = h.snapshot();
        assert!(
            (0..=10)
                .map(|i| s.quantile(f64::from(i) / 10.0))
                .all(|v| v == 1_000)
        );

        // Two clusters: 99% at ~1 µs, 1% at ~1 ms.
        let h = LatencyHistogram::new();
        for i in 0..9_900u64 {
            h.record(1_000 + i % 7);
        }
        for i in 0..100u64 {
            h.record(1_000_000 + i);
        }
        let s = h.snapshot();
        // p50 and p99 fall among 1000..=1006, whose bucket is 960..=1023.
        assert_eq!(
            LatencyHistogram::bucket_upper_bound(LatencyHistogram::bucket_of(1_006)),
            1_023
        );
        assert_eq!(s.quantile(0.5), 1_023);
        assert_eq!(s.quantile(0.99), 1_023);
        // p99.9 is the 90th of the slow cluster (1_000_089); its bucket ends above the max.
        assert_eq!(s.quantile(0.999), 1_000_099);

        assert_eq!(HistogramSnapshot::default().quantile(0.5), 0);
        assert_eq!(HistogramSnapshot::default().count(), 0);
    }

    #[test]
    fn cumulative_counts_end_at_the_total() {
        let h = LatencyHistogram::new();
        for v in [0, 3, 3, 100, u64::MAX] {
            h.record(v);
        }
        let s = h.snapshot();
        let cum: Vec<(u64, u64)> = s.cumulative().collect();
        assert_eq!(cum.len(), LatencyHistogram::BUCKETS);
        assert_eq!(cum[0], (0, 1));
        assert_eq!(cum[3], (3, 3));
        assert_eq!(cum[LatencyHistogram::BUCKETS - 2].1, 4);
        assert_eq!(cum[LatencyHistogram::BUCKETS - 1], (u64::MAX, 5));
        assert!(cum.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        // The sum wraps on overflow rather than panicking.
        assert_eq!(s.sum_ns(), 106u64.wrapping_add(u64::MAX));
    }

    #[test]
    fn a_reader_sees_counts_only_grow_while_the_writer_records() {
        let n: u64 = if cfg!(miri) { 500 } else { 100_000 };
        let stats = ShardStats::new();
        let done = AtomicBool::new(false);
        let snapshots = std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..n {
                    stats.count_message(b'A' + (i % 26) as u8);
                    stats.add(Counter::EventsPublished, 2);
                    stats.record_loop(!i.is_multiple_of(3), i);
                    stats.record_ingest_to_publish(i * 37);
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
            let reader = scope.spawn(|| {
                let mut last = stats.snapshot();
                let mut snapshots = 0u64;
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::Acquire);
                    let s = stats.snapshot();
                    assert!(
                        s.messages_by_type
                            .iter()
                            .zip(&last.messages_by_type)
                            .all(|(a, b)| a >= b)
                    );
                    assert!(s.events_published >= last.events_published);
                    assert_eq!(s.events_published % 2, 0);
                    assert!(s.busy_iterations >= last.busy_iterations);
                    assert!(s.idle_iterations >= last.idle_iterations);
                    assert!(s.busy_ns_total >= last.busy_ns_total);
                    assert!(s.max_loop_ns >= last.max_loop_ns);
                    let (h, hl) = (&s.ingest_to_publish, &last.ingest_to_publish);
                    assert!(h.counts().iter().zip(hl.counts()).all(|(a, b)| a >= b));
                    assert!(h.count() >= hl.count() && h.count() <= n);
                    assert!(h.sum_ns() >= hl.sum_ns());
                    last = s;
                    snapshots += 1;
                    if finished {
                        return (last, snapshots);
                    }
                }
            });
            reader.join().unwrap()
        });
        let (last, count) = snapshots;
        assert!(count >= 1);
        // The final snapshot, taken after the writer finished, is exact.
        assert_eq!(last.messages(), n);
        assert_eq!(last.events_published, 2 * n);
        assert_eq!(last.busy_iterations + last.idle_iterations, n);
        assert_eq!(
            last.max_loop_ns,
            n - 1 - u64::from((n - 1).is_multiple_of(3))
        );
        assert_eq!(last.ingest_to_publish.count(), n);
        assert_eq!(last.ingest_to_publish.sum_ns(), 37 * n * (n - 1) / 2);
        assert_eq!(last.ingest_to_publish.max_ns(), 37 * (n - 1));
    }
}
