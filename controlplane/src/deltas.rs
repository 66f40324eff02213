//! The updates one subscriber gets for one symbol: snapshots (in chunks) and deltas, each
//! with its per-subscription `seq` and the checksum of the book the client holds after it.
//!
//! `Held` is what the server knows the client holds; every function here keeps it equal to
//! what the client has after applying what was queued (tested in the proptest below).

use std::collections::HashMap;

use dataplane::clock::now_ns;
use dataplane::feed::itch::Side;

use crate::checksum::checksum;
use crate::mirror::{Lvl, Mirror};
use crate::pb::{self, BookUpdate, book_update::Update};
use crate::queue::{Pushed, Queue};

/// Levels per snapshot chunk: far below 1 MiB encoded (a level is at most 17 bytes).
pub const CHUNK_LEVELS: usize = 32_768;

/// What a subscription holds of one symbol.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) seq: u64,
    pub(crate) bids: Vec<Lvl>,
    pub(crate) asks: Vec<Lvl>,
    /// Changed since the last conflated send.
    pub(crate) dirty: bool,
}

pub(crate) fn update(update: Update) -> BookUpdate {
    BookUpdate {
        update: Some(update),
    }
}

pub(crate) fn level(l: &Lvl) -> pb::Level {
    pb::Level {
        price: l.price,
        shares: l.shares,
        orders: l.orders,
    }
}

pub(crate) fn checksum_of(bids: &[Lvl], asks: &[Lvl], depth: usize) -> u32 {
    checksum(
        bids.iter().map(|l| (l.price, l.shares)),
        asks.iter().map(|l| (l.price, l.shares)),
        depth,
    )
}

/// The snapshot of `mirror` for a subscriber holding `held`, in chunks; `held` becomes it.
pub(crate) fn snapshot(
    mirror: &Mirror,
    held: &mut Held,
    depth: usize,
    stale: bool,
) -> Vec<BookUpdate> {
    held.bids = mirror.top(Side::Buy, depth);
    held.asks = mirror.top(Side::Sell, depth);
    held.dirty = false;
    let sum = checksum_of(&held.bids, &held.asks, depth);
    let send_ns = now_ns();
    let all: Vec<(bool, &Lvl)> = held
        .bids
        .iter()
        .map(|l| (true, l))
        .chain(held.asks.iter().map(|l| (false, l)))
        .collect();
    let chunks: Vec<&[(bool, &Lvl)]> = if all.is_empty() {
        vec![&[]]
    } else {
        all.chunks(CHUNK_LEVELS).collect()
    };
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            held.seq += 1;
            update(Update::Snapshot(pb::BookSnapshot {
                symbol: mirror.symbol.clone(),
                seq: held.seq,
                bids: chunk
                    .iter()
                    .filter(|(b, _)| *b)
                    .map(|(_, l)| level(l))
                    .collect(),
                asks: chunk
                    .iter()
                    .filter(|(b, _)| !*b)
                    .map(|(_, l)| level(l))
                    .collect(),
                checksum: if i == last { sum } else { 0 },
                timestamps: Some(pb::Timestamps {
                    exchange_ns: mirror.last_exchange_ns,
                    ingest_ns: mirror.last_ingest_ns,
                    send_ns,
                }),
                last_chunk: i == last,
                incomplete: mirror.incomplete,
                stale,
            }))
        })
        .collect()
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
    let mut deltas: Vec<(pb::Side, Lvl)> = Vec::new();
    let mut changes: Vec<(pb::Side, Lvl)> = Vec::new();
    for (side, ours, old) in [
        (pb::Side::Bid, Side::Buy, &held.bids),
        (pb::Side::Ask, Side::Sell, &held.asks),
    ] {
        let new = mirror.top(ours, depth);
        let old_by_price: HashMap<u32, Lvl> = old.iter().map(|l| (l.price, *l)).collect();
        let new_prices: std::collections::HashSet<u32> = new.iter().map(|l| l.price).collect();
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
pub(crate) fn touches(mirror: &Mirror, held: &Held, depth: usize, side: Side, price: u32) -> bool {
    let old = match side {
        Side::Buy => &held.bids,
        Side::Sell => &held.asks,
    };
    old.iter().any(|l| l.price == price) || mirror.within(side, price, depth)
}

/// Queues what the change of one level (`side`, `price`) does to the best `depth` levels a
/// subscriber holds: the level itself, and the level that leaves or enters the top. O(depth)
/// at worst, usually O(1) past the search.
pub(crate) fn send_change(
    mirror: &Mirror,
    held: &mut Held,
    depth: usize,
    side: Side,
    price: u32,
    queue: &Queue,
    at: (u64, u64),
) -> Pushed {
    let (pb_side, old) = match side {
        Side::Buy => (pb::Side::Bid, &held.bids),
        Side::Sell => (pb::Side::Ask, &held.asks),
    };
    let now = mirror.level(side, price);
    let held_it = old.iter().any(|l| l.price == price);
    let full = old.len() >= depth;
    let mut deltas: Vec<(pb::Side, Lvl)> = Vec::with_capacity(2);
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

pub(crate) fn removal(price: u32) -> Lvl {
    Lvl {
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
    deltas: &[(pb::Side, Lvl)],
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
            level: Some(level(&lvl)),
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
pub(crate) fn apply(book: &mut Vec<Lvl>, side: pb::Side, lvl: Lvl) {
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
        }
    }

    /// Replays the queued deltas as a client would and checks each checksum.
    fn client_view(queue: &Queue, depth: usize, book: &mut [Vec<Lvl>; 2], seq: &mut u64) {
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
                Lvl {
                    price: l.price,
                    shares: l.shares,
                    orders: l.orders,
                },
            );
            assert_eq!(d.checksum, checksum_of(&book[0], &book[1], depth));
        }
    }

    proptest! {
        /// Whatever sequence of level changes, one-level deltas keep every client's view equal
        /// to the best `depth` levels, with contiguous seqs and right checksums — and so does
        /// the full diff used by conflation.
        #[test]
        fn deltas_keep_the_held_depth_exact(
            depth in 1usize..6,
            changes in proptest::collection::vec((any::<bool>(), 90u32..110, 0u64..3), 1..200),
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
                send_change(&mirror, &mut every, depth, side, price, &q_every, (0, 0));
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
