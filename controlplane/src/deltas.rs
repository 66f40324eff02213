//! The updates one subscriber gets for one symbol: snapshots (in chunks) and deltas, each
//! with its per-subscription `seq` and the checksum of the book the client holds after it.
//!
//! `Held` is what the server knows the client holds; every function here keeps it equal to
//! what the client has after applying what was queued (tested in the proptest below).

use std::collections::HashMap;

use dataplane::clock::now_ns;
use dataplane::feed::itch::Side;

use crate::checksum::{CHECKSUM_LEVELS, checksum};
use crate::contract::Level;
use crate::mirror::Mirror;
use crate::pb::{self, BookUpdate, book_update::Update};
use crate::queue::{Pushed, Queue};

/// Levels per snapshot chunk: far below 1 MiB encoded (a level is at most 17 bytes).
pub const CHUNK_LEVELS: usize = 32_768;

/// What a subscription holds of one symbol.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) seq: u64,
    pub(crate) bids: Vec<Level>,
    pub(crate) asks: Vec<Level>,
    /// Changed since the last conflated send.
    pub(crate) dirty: bool,
    /// Orders stream: its (next) snapshot is due and nothing else may be sent before it.
    pub(crate) awaiting: bool,
}

pub(crate) fn update(update: Update) -> BookUpdate {
    BookUpdate {
        update: Some(update),
    }
}

pub(crate) fn checksum_of(bids: &[Level], asks: &[Level], depth: usize) -> u32 {
    checksum(
        bids.iter().map(|l| (l.price, l.shares)),
        asks.iter().map(|l| (l.price, l.shares)),
        depth,
    )
}

/// The best levels of one mirror, read once and shared by every subscriber that needs a
/// snapshot of it: each takes the best `depth` of them.
pub(crate) struct Top<'a> {
    mirror: &'a Mirror,
    stale: bool,
    depth: usize,
    bids: Vec<Level>,
    asks: Vec<Level>,
    /// Checksums by `min(depth, CHECKSUM_LEVELS)`, computed when first asked for.
    sums: [Option<u32>; CHECKSUM_LEVELS + 1],
}

impl<'a> Top<'a> {
    /// The best `depth` levels of each side of `mirror`; `stale` says its feed lost messages.
    pub(crate) fn new(mirror: &'a Mirror, depth: usize, stale: bool) -> Self {
        Self {
            mirror,
            stale,
            depth,
            bids: mirror.top(Side::Buy, depth),
            asks: mirror.top(Side::Sell, depth),
            sums: [None; CHECKSUM_LEVELS + 1],
        }
    }

    /// The symbol.
    pub(crate) fn symbol(&self) -> &str {
        &self.mirror.symbol
    }

    /// The best `depth` levels of each side; `depth` is at most what was read.
    fn sides(&self, depth: usize) -> (&[Level], &[Level]) {
        debug_assert!(depth <= self.depth, "{depth} > {}", self.depth);
        (
            &self.bids[..depth.min(self.bids.len())],
            &self.asks[..depth.min(self.asks.len())],
        )
    }

    /// The checksum of the best `depth` levels.
    fn checksum(&mut self, depth: usize) -> u32 {
        let slot = depth.min(CHECKSUM_LEVELS);
        if let Some(sum) = self.sums[slot] {
            return sum;
        }
        let (bids, asks) = self.sides(depth);
        let sum = checksum_of(bids, asks, depth);
        self.sums[slot] = Some(sum);
        sum
    }

    /// One snapshot message (or chunk of one) of the mirror with the levels given.
    fn message(
        &self,
        seq: u64,
        (bids, asks): (&[Level], &[Level]),
        checksum: u32,
        last_chunk: bool,
        send_ns: u64,
    ) -> pb::BookSnapshot {
        pb::BookSnapshot {
            symbol: self.mirror.symbol.clone(),
            seq,
            bids: bids.iter().map(|&l| l.into()).collect(),
            asks: asks.iter().map(|&l| l.into()).collect(),
            checksum,
            timestamps: Some(pb::Timestamps {
                exchange_ns: self.mirror.last_exchange_ns,
                ingest_ns: self.mirror.last_ingest_ns,
                send_ns,
            }),
            last_chunk,
            incomplete: self.mirror.incomplete,
            stale: self.stale,
            price_exponent: i32::from(self.mirror.price_exponent),
        }
    }

    /// The best `depth` levels as one message with seq 0 (GetBook: no subscription).
    pub(crate) fn book(&mut self, depth: usize) -> pb::BookSnapshot {
        let checksum = self.checksum(depth);
        self.message(0, self.sides(depth), checksum, true, now_ns())
    }

    /// The snapshot of the best `depth` levels for a subscriber holding `held`, in chunks of
    /// at most [`CHUNK_LEVELS`] levels (bids first, then asks); `held` becomes it.
    pub(crate) fn snapshot(&mut self, held: &mut Held, depth: usize) -> Vec<BookUpdate> {
        let sum = self.checksum(depth);
        let (bids, asks) = self.sides(depth);
        held.bids = bids.to_vec();
        held.asks = asks.to_vec();
        held.dirty = false;
        let send_ns = now_ns();
        let n = bids.len() + asks.len();
        let chunks = n.div_ceil(CHUNK_LEVELS).max(1);
        (0..chunks)
            .map(|i| {
                // positions [start, end) of the bids followed by the asks
                let (start, end) = (i * CHUNK_LEVELS, ((i + 1) * CHUNK_LEVELS).min(n));
                let b = bids.len();
                let chunk = (
                    &bids[start.min(b)..end.min(b)],
                    &asks[start.max(b) - b..end.max(b) - b],
                );
                let last = i + 1 == chunks;
                held.seq += 1;
                let checksum = if last { sum } else { 0 };
                update(Update::Snapshot(
                    self.message(held.seq, chunk, checksum, last, send_ns),
                ))
            })
            .collect()
    }
}

/// The snapshot of `mirror` for a subscriber holding `held`, in chunks; `held` becomes it.
pub(crate) fn snapshot(
    mirror: &Mirror,
    held: &mut Held,
    depth: usize,
    stale: bool,
) -> Vec<BookUpdate> {
    Top::new(mirror, depth, stale).snapshot(held, depth)
}

/// Queues the deltas that turn `held` into the mirror's best `depth` levels: removals first,
/// then changes, each with the checksum of the book after it. O(depth).
pub(crate) fn send_diff(
    mirror: &Mirror,
    held: &mut Held,
    depth: usize,
    queue: &Queue,
    exchange_ns: u64,
    ingest_ns: u64,
) -> Pushed {
    let mut deltas: Vec<(pb::Side, Level)> = Vec::new();
    let mut changes: Vec<(pb::Side, Level)> = Vec::new();
    for (side, ours, old) in [
        (pb::Side::Bid, Side::Buy, &held.bids),
        (pb::Side::Ask, Side::Sell, &held.asks),
    ] {
        let new = mirror.top(ours, depth);
        let old_by_price: HashMap<i64, Level> = old.iter().map(|l| (l.price, *l)).collect();
        let new_prices: std::collections::HashSet<i64> = new.iter().map(|l| l.price).collect();
        for gone in old.iter().filter(|o| !new_prices.contains(&o.price)) {
            deltas.push((side, removal(gone.price)));
        }
        for n in new.iter().filter(|n| old_by_price.get(&n.price) != Some(n)) {
            changes.push((side, *n));
        }
    }
    deltas.extend(changes);
    send_deltas(
        mirror,
        held,
        depth,
        queue,
        &deltas,
        (exchange_ns, ingest_ns),
    )
}

/// True if the change of (`side`, `price`) affects the best `depth` levels held: the level is
/// held, or it is now within the best `depth`.
pub(crate) fn touches(mirror: &Mirror, held: &Held, depth: usize, side: Side, price: i64) -> bool {
    let old = match side {
        Side::Buy => &held.bids,
        Side::Sell => &held.asks,
    };
    old.iter().any(|l| l.price == price) || mirror.within(side, price, depth)
}

/// The change of one level, as every subscriber of its book sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change {
    pub(crate) side: Side,
    pub(crate) price: i64,
    /// The level now; `None` if it is gone.
    pub(crate) level: Option<Level>,
    /// Exchange and ingest time of the event.
    pub(crate) at: (u64, u64),
}

impl Change {
    /// The change of (`side`, `price`) once applied to `mirror`.
    pub(crate) fn of(mirror: &Mirror, side: Side, price: i64, at: (u64, u64)) -> Self {
        Self {
            side,
            price,
            level: mirror.level(side, price),
            at,
        }
    }
}

/// Queues what `change` does to the best `depth` levels a subscriber holds: the level itself,
/// and the level that leaves or enters the top. O(depth) at worst, usually O(1) past the
/// search.
pub(crate) fn send_change(
    mirror: &Mirror,
    held: &mut Held,
    depth: usize,
    change: &Change,
    queue: &Queue,
) -> Pushed {
    let Change {
        side,
        price,
        level: now,
        at,
    } = *change;
    let (pb_side, old) = match side {
        Side::Buy => (pb::Side::Bid, &held.bids),
        Side::Sell => (pb::Side::Ask, &held.asks),
    };
    let held_it = old.iter().any(|l| l.price == price);
    let full = old.len() >= depth;
    let mut deltas: Vec<(pb::Side, Level)> = Vec::with_capacity(2);
    match (held_it, now) {
        (true, Some(level)) => deltas.push((pb_side, level)),
        (true, None) => {
            deltas.push((pb_side, removal(price)));
            // the next level moves up into the held depth
            if full && let Some(next) = mirror.nth(side, depth - 1) {
                deltas.push((pb_side, next));
            }
        }
        (false, Some(level)) => {
            if !mirror.within(side, price, depth) {
                return Pushed::Queued;
            }
            // the last held level falls out first
            if full && let Some(last) = old.last() {
                deltas.push((pb_side, removal(last.price)));
            }
            deltas.push((pb_side, level));
        }
        (false, None) => return Pushed::Queued,
    }
    send_deltas(mirror, held, depth, queue, &deltas, at)
}

pub(crate) fn removal(price: i64) -> Level {
    Level {
        price,
        shares: 0,
        orders: 0,
    }
}

/// Applies `deltas` to `held` in order and queues each with the checksum after it. A delta
/// that does not fit is not sent and uses no sequence number.
pub(crate) fn send_deltas(
    mirror: &Mirror,
    held: &mut Held,
    depth: usize,
    queue: &Queue,
    deltas: &[(pb::Side, Level)],
    (exchange_ns, ingest_ns): (u64, u64),
) -> Pushed {
    let send_ns = now_ns();
    for &(side, lvl) in deltas {
        let book = match side {
            pb::Side::Ask => &mut held.asks,
            _ => &mut held.bids,
        };
        apply(book, side, lvl);
        let seq = held.seq + 1;
        let delta = update(Update::Delta(pb::BookDelta {
            symbol: mirror.symbol.clone(),
            seq,
            side: side as i32,
            level: Some(lvl.into()),
            checksum: checksum_of(&held.bids, &held.asks, depth),
            timestamps: Some(pb::Timestamps {
                exchange_ns,
                ingest_ns,
                send_ns,
            }),
        }));
        match queue.push(delta) {
            // only a queued update uses up a sequence number
            Pushed::Queued => held.seq = seq,
            other => return other,
        }
    }
    Pushed::Queued
}

/// Applies one delta to a side held best first, as a client does.
pub(crate) fn apply(book: &mut Vec<Level>, side: pb::Side, lvl: Level) {
    let pos = book.iter().position(|l| l.price == lvl.price);
    match (pos, lvl.shares) {
        (Some(i), 0) => {
            book.remove(i);
        }
        (Some(i), _) => book[i] = lvl,
        (None, 0) => {}
        (None, _) => {
            let at = book
                .iter()
                .position(|l| match side {
                    pb::Side::Ask => l.price > lvl.price,
                    _ => l.price < lvl.price,
                })
                .unwrap_or(book.len());
            book.insert(at, lvl);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn held() -> Held {
        Held {
            seq: 0,
            bids: Vec::new(),
            asks: Vec::new(),
            dirty: false,
            awaiting: false,
        }
    }

    /// Replays the queued deltas as a client would and checks each checksum.
    fn client_view(queue: &Queue, depth: usize, book: &mut [Vec<Level>; 2], seq: &mut u64) {
        let mut out = Vec::new();
        queue.take(usize::MAX, &mut out).unwrap();
        for u in out {
            let Some(Update::Delta(d)) = u.update else {
                panic!("{u:?}");
            };
            assert_eq!(d.seq, *seq + 1);
            *seq = d.seq;
            let side = pb::Side::try_from(d.side).unwrap();
            let l = d.level.unwrap();
            let i = usize::from(side == pb::Side::Ask);
            apply(
                &mut book[i],
                side,
                Level {
                    price: l.price,
                    shares: l.shares,
                    orders: l.orders,
                },
            );
            assert_eq!(d.checksum, checksum_of(&book[0], &book[1], depth));
        }
    }

    #[test]
    fn deep_snapshots_are_chunked_in_order_with_the_checksum_last() {
        let mut mirror = Mirror::new("T".into(), 1, 0);
        let (bids, asks) = (CHUNK_LEVELS + 5, CHUNK_LEVELS + 7);
        for i in 0..bids as i64 {
            mirror.set(Side::Buy, 1_000_000 - i, 100, 1);
        }
        for i in 0..asks as i64 {
            mirror.set(Side::Sell, 2_000_000 + i, 100, 1);
        }
        let depth = bids.max(asks);
        let mut h = held();
        let chunks = snapshot(&mirror, &mut h, depth, false);
        assert_eq!(chunks.len(), 3);
        let (mut got_bids, mut got_asks) = (Vec::new(), Vec::new());
        for (i, u) in chunks.into_iter().enumerate() {
            let Some(Update::Snapshot(s)) = u.update else {
                panic!("{u:?}");
            };
            assert_eq!(s.seq, i as u64 + 1);
            let last = i == 2;
            assert_eq!(s.last_chunk, last);
            assert!(s.bids.len() + s.asks.len() <= CHUNK_LEVELS);
            let expected = if last {
                checksum_of(&h.bids, &h.asks, depth)
            } else {
                0
            };
            assert_eq!(s.checksum, expected);
            got_bids.extend(s.bids.iter().map(|l| l.price));
            got_asks.extend(s.asks.iter().map(|l| l.price));
        }
        let prices =
            |side| -> Vec<i64> { mirror.top(side, depth).iter().map(|l| l.price).collect() };
        assert_eq!(got_bids, prices(Side::Buy));
        assert_eq!(got_asks, prices(Side::Sell));
        assert_eq!(h.seq, 3);

        // an empty book is one empty, last chunk
        let empty = Mirror::new("E".into(), 2, 0);
        let chunks = snapshot(&empty, &mut held(), 5, true);
        assert_eq!(chunks.len(), 1);
        let Some(Update::Snapshot(s)) = &chunks[0].update else {
            panic!("{chunks:?}");
        };
        assert!(s.last_chunk && s.stale && s.bids.is_empty() && s.asks.is_empty());
    }

    #[test]
    fn one_read_of_the_book_serves_every_depth() {
        let mut mirror = Mirror::new("T".into(), 1, 0);
        for p in 0..20u32 {
            let price = i64::from(p);
            mirror.set(Side::Buy, 100 - price, 10 + u64::from(p), 1);
            mirror.set(Side::Sell, 101 + price, 20 + u64::from(p), 2);
        }
        let mut top = Top::new(&mirror, 15, false);
        for depth in [15, 1, 3, 10, 12, 3] {
            let (mut shared, mut own) = (held(), held());
            let a = top.snapshot(&mut shared, depth);
            let b = snapshot(&mirror, &mut own, depth, false);
            let strip = |u: Vec<BookUpdate>| -> Vec<BookUpdate> {
                u.into_iter()
                    .map(|mut u| {
                        if let Some(Update::Snapshot(s)) = &mut u.update {
                            s.timestamps = None;
                        }
                        u
                    })
                    .collect()
            };
            assert_eq!(strip(a), strip(b), "depth {depth}");
            assert_eq!((&shared.bids, &shared.asks), (&own.bids, &own.asks));
        }
        let book = top.book(4);
        assert_eq!((book.seq, book.bids.len(), book.asks.len()), (0, 4, 4));
        assert_eq!(
            book.checksum,
            checksum_of(&mirror.top(Side::Buy, 4), &mirror.top(Side::Sell, 4), 4)
        );
    }

    proptest! {
        /// Whatever sequence of level changes, one-level deltas keep every client's view equal
        /// to the best `depth` levels, with contiguous seqs and right checksums — and so does
        /// the full diff used by conflation.
        #[test]
        fn deltas_keep_the_held_depth_exact(
            depth in 1usize..6,
            changes in proptest::collection::vec((any::<bool>(), 90i64..110, 0u64..3), 1..200),
            conflate_every in 1usize..8,
        ) {
            let mut mirror = Mirror::new("T".into(), 1, 0);
            mirror.published = true;
            let (mut every, mut conflated) = (held(), held());
            let (q_every, q_conflated) = (Queue::new(1 << 20), Queue::new(1 << 20));
            let (mut view_every, mut view_conflated) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
            let (mut seq_every, mut seq_conflated) = (0, 0);
            for (i, (bid, price, shares)) in changes.into_iter().enumerate() {
                let side = if bid { Side::Buy } else { Side::Sell };
                // keep the book uncrossed: bids below 100, asks from 100
                let price = if bid { price.min(99) } else { price.max(100) };
                mirror.set(side, price, shares * 100, shares as u32);
                let change = Change::of(&mirror, side, price, (0, 0));
                send_change(&mirror, &mut every, depth, &change, &q_every);
                client_view(&q_every, depth, &mut view_every, &mut seq_every);
                prop_assert_eq!(&view_every[0], &mirror.top(Side::Buy, depth));
                prop_assert_eq!(&view_every[1], &mirror.top(Side::Sell, depth));
                if i % conflate_every == 0 {
                    send_diff(&mirror, &mut conflated, depth, &q_conflated, 0, 0);
                    client_view(&q_conflated, depth, &mut view_conflated, &mut seq_conflated);
                    prop_assert_eq!(&view_conflated[0], &mirror.top(Side::Buy, depth));
                    prop_assert_eq!(&view_conflated[1], &mirror.top(Side::Sell, depth));
                }
            }
        }
    }
}
