//! The subscription contract (proto/pinbook/v2/book.proto), checked from the client's side:
//! the books a subscriber holds, rebuilt from snapshots and deltas, and every way the stream
//! can break the contract. `pinbook subscribe` and the gRPC tests hold their books with it;
//! [`Level`] is the one price level of the control plane (the hub's mirrors keep theirs too).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::checksum::checksum;
use crate::pb;

/// One price level as the API sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// ITCH ticks (4 implied decimals).
    pub price: i64,
    /// Aggregate shares.
    pub shares: u64,
    /// Orders.
    pub orders: u32,
}

impl From<&pb::Level> for Level {
    fn from(l: &pb::Level) -> Self {
        Self {
            price: l.price,
            shares: l.shares,
            orders: l.orders,
        }
    }
}

impl From<Level> for pb::Level {
    fn from(l: Level) -> Self {
        Self {
            price: l.price,
            shares: l.shares,
            orders: l.orders,
        }
    }
}

impl From<(i64, u64, u32)> for Level {
    fn from((price, shares, orders): (i64, u64, u32)) -> Self {
        Self {
            price,
            shares,
            orders,
        }
    }
}

impl From<Level> for (i64, u64, u32) {
    fn from(l: Level) -> Self {
        (l.price, l.shares, l.orders)
    }
}

/// Where a symbol's stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No update yet: the next must be a snapshot chunk with seq 1.
    First,
    /// A Resync came: the next must be a snapshot chunk.
    AfterResync,
    /// Snapshot chunks are arriving; the book is complete at the last one.
    InSnapshot,
    /// Deltas apply to a complete book.
    Live,
}

/// One symbol's book as the client holds it.
#[derive(Debug)]
pub struct Held {
    /// Bids by price: the best is the last.
    pub bids: BTreeMap<i64, (u64, u32)>,
    /// Asks by price: the best is the first.
    pub asks: BTreeMap<i64, (u64, u32)>,
    /// The seq of the last update of the symbol, 0 before any.
    pub seq: u64,
    /// Where the stream of the symbol stands.
    pub phase: Phase,
    /// The last snapshot said the server knows the book misses orders.
    pub incomplete: bool,
    /// The last snapshot said the book may be wrong after a feed gap.
    pub stale: bool,
    /// Prices are integers × 10^`price_exponent`, as the last snapshot said.
    pub price_exponent: i8,
    /// A checksum mismatch was reported since the last snapshot (later ones would only repeat
    /// it: the book stays wrong until a snapshot replaces it).
    diverged: bool,
}

impl Held {
    fn new() -> Self {
        Self {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            seq: 0,
            phase: Phase::First,
            incomplete: false,
            stale: false,
            price_exponent: 0,
            diverged: false,
        }
    }

    /// Bids best (highest) first.
    pub fn bids(&self) -> impl Iterator<Item = Level> + '_ {
        self.bids
            .iter()
            .rev()
            .map(|(&price, &(shares, orders))| Level {
                price,
                shares,
                orders,
            })
    }

    /// Asks best (lowest) first.
    pub fn asks(&self) -> impl Iterator<Item = Level> + '_ {
        self.asks.iter().map(|(&price, &(shares, orders))| Level {
            price,
            shares,
            orders,
        })
    }

    /// The contract's checksum of the book held, over `depth` levels.
    pub fn checksum(&self, depth: usize) -> u32 {
        checksum(
            self.bids().map(|l| (l.price, l.shares)),
            self.asks().map(|l| (l.price, l.shares)),
            depth,
        )
    }

    /// True if a level of `side` at `price` is held.
    fn holds(&self, side: pb::Side, price: i64) -> bool {
        match side {
            pb::Side::Ask => self.asks.contains_key(&price),
            _ => self.bids.contains_key(&price),
        }
    }

    fn set(&mut self, side: pb::Side, level: &pb::Level) {
        let book = match side {
            pb::Side::Ask => &mut self.asks,
            _ => &mut self.bids,
        };
        if level.shares == 0 {
            book.remove(&level.price);
        } else {
            book.insert(level.price, (level.shares, level.orders));
        }
    }
}

/// The books of one subscription and the contract checks; each method returns the
/// violations the update shows, as text (`AAPL seq 17 after 15`).
#[derive(Debug)]
pub struct Checker {
    depth: usize,
    /// Symbols are taken as they first come, instead of only those asked for.
    learning: bool,
    /// Symbols asked for, in the order asked, still held.
    order: Vec<String>,
    held: HashMap<String, Held>,
    removed: HashSet<String>,
}

impl Checker {
    /// Books for `symbols`, each holding at most `depth` levels per side (1 for top of book).
    pub fn new(symbols: &[String], depth: usize) -> Self {
        Self {
            depth,
            learning: false,
            order: symbols.to_vec(),
            held: symbols.iter().map(|s| (s.clone(), Held::new())).collect(),
            removed: HashSet::new(),
        }
    }

    /// Books for whatever symbols the stream brings (a test, or a client that does not know
    /// what its subscription covers), each first held from its first update on.
    pub fn learning(depth: usize) -> Self {
        Self {
            learning: true,
            ..Self::new(&[], depth)
        }
    }

    /// The books held, in the order asked for.
    pub fn books(&self) -> impl Iterator<Item = (&str, &Held)> {
        self.order
            .iter()
            .filter_map(|s| self.held.get(s).map(|h| (s.as_str(), h)))
    }

    /// The book of `symbol`, if held.
    pub fn book(&self, symbol: &str) -> Option<&Held> {
        self.held.get(symbol)
    }

    /// The symbol's book, or the violation of an update naming a symbol not held.
    fn held_mut(&mut self, symbol: &str) -> Result<&mut Held, String> {
        if self.removed.contains(symbol) {
            return Err(format!("{symbol}: an update after SymbolRemoved"));
        }
        if self.learning && !self.held.contains_key(symbol) {
            self.order.push(symbol.to_owned());
            self.held.insert(symbol.to_owned(), Held::new());
        }
        self.held.get_mut(symbol).ok_or_else(|| {
            format!("{symbol}: an update for a symbol this subscription did not ask for")
        })
    }

    /// Checks `seq` follows the symbol's last, resyncs included: the server rewinds its
    /// sequence to the first update it dropped, so nothing may be skipped.
    fn check_seq(held: &mut Held, symbol: &str, seq: u64, found: &mut Vec<String>) {
        let ok = match held.phase {
            Phase::First => seq == 1,
            Phase::AfterResync | Phase::InSnapshot | Phase::Live => seq == held.seq + 1,
        };
        if !ok {
            found.push(if held.phase == Phase::First {
                format!("{symbol} seq {seq} on its first update, not 1")
            } else {
                format!("{symbol} seq {seq} after {}", held.seq)
            });
        }
        held.seq = seq;
    }

    fn check_depth(&self, symbol: &str, held: &Held, found: &mut Vec<String>) {
        for (side, n) in [("bid", held.bids.len()), ("ask", held.asks.len())] {
            if n > self.depth {
                found.push(format!(
                    "{symbol} holds {n} {side} levels, more than the depth of {}",
                    self.depth
                ));
            }
        }
    }

    fn check_sum(
        depth: usize,
        symbol: &str,
        held: &mut Held,
        seq: u64,
        sent: u32,
        found: &mut Vec<String>,
    ) {
        let computed = held.checksum(depth);
        if computed != sent && !held.diverged {
            held.diverged = true;
            found.push(format!(
                "{symbol} seq {seq} checksum mismatch: server sent {sent:#010x}, the book held \
                 gives {computed:#010x} (later mismatches of {symbol} are not reported until \
                 its next snapshot)"
            ));
        }
    }

    /// A snapshot chunk: the first replaces the book, the last completes it.
    pub fn snapshot(&mut self, s: &pb::BookSnapshot) -> Vec<String> {
        let depth = self.depth;
        let mut found = Vec::new();
        let held = match self.held_mut(&s.symbol) {
            Ok(held) => held,
            Err(v) => return vec![v],
        };
        Self::check_seq(held, &s.symbol, s.seq, &mut found);
        held.price_exponent = i8::try_from(s.price_exponent).unwrap_or_default();
        if held.phase != Phase::InSnapshot {
            held.bids.clear();
            held.asks.clear();
            held.diverged = false;
        }
        for level in &s.bids {
            held.set(pb::Side::Bid, level);
        }
        for level in &s.asks {
            held.set(pb::Side::Ask, level);
        }
        held.incomplete = s.incomplete;
        held.stale = s.stale;
        if s.last_chunk {
            held.phase = Phase::Live;
            Self::check_sum(depth, &s.symbol, held, s.seq, s.checksum, &mut found);
        } else {
            held.phase = Phase::InSnapshot;
        }
        let held = &self.held[&s.symbol];
        self.check_depth(&s.symbol, held, &mut found);
        found
    }

    /// A delta: applied to a complete book, then its checksum checked.
    pub fn delta(&mut self, d: &pb::BookDelta) -> Vec<String> {
        let depth = self.depth;
        let mut found = Vec::new();
        let held = match self.held_mut(&d.symbol) {
            Ok(held) => held,
            Err(v) => return vec![v],
        };
        match held.phase {
            Phase::First | Phase::AfterResync => found.push(format!(
                "{} seq {}: a delta where a snapshot was due",
                d.symbol, d.seq
            )),
            Phase::InSnapshot => found.push(format!(
                "{} seq {}: a delta before the snapshot's last chunk",
                d.symbol, d.seq
            )),
            Phase::Live => {}
        }
        Self::check_seq(held, &d.symbol, d.seq, &mut found);
        let side = pb::Side::try_from(d.side).unwrap_or(pb::Side::Unspecified);
        match (side, &d.level) {
            (pb::Side::Bid | pb::Side::Ask, Some(level)) => {
                if level.shares == 0 && !held.holds(side, level.price) {
                    found.push(format!(
                        "{} seq {}: a delta removes {} {}, a level not held",
                        d.symbol,
                        d.seq,
                        side.as_str_name(),
                        level.price
                    ));
                }
                held.set(side, level);
            }
            _ => found.push(format!(
                "{} seq {}: a delta without a side or a level",
                d.symbol, d.seq
            )),
        }
        if held.phase == Phase::Live {
            Self::check_sum(depth, &d.symbol, held, d.seq, d.checksum, &mut found);
        }
        let held = &self.held[&d.symbol];
        self.check_depth(&d.symbol, held, &mut found);
        found
    }

    /// A Resync: the book is dropped, a snapshot is due.
    pub fn resync(&mut self, r: &pb::Resync) -> Vec<String> {
        match self.held_mut(&r.symbol) {
            Ok(held) => {
                held.bids.clear();
                held.asks.clear();
                held.phase = Phase::AfterResync;
                Vec::new()
            }
            Err(v) => vec![v],
        }
    }

    /// SymbolRemoved: the symbol is forgotten; any later update of it is a violation.
    pub fn removed(&mut self, r: &pb::SymbolRemoved) -> Vec<String> {
        let mut found = Vec::new();
        match self.held_mut(&r.symbol) {
            Ok(held) => Self::check_seq(held, &r.symbol, r.seq, &mut found),
            Err(v) => return vec![v],
        }
        self.held.remove(&r.symbol);
        self.removed.insert(r.symbol.clone());
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(price: i64, shares: u64) -> pb::Level {
        pb::Level {
            price,
            shares,
            orders: 1,
        }
    }

    fn snap(seq: u64, bids: Vec<pb::Level>, asks: Vec<pb::Level>, last: bool) -> pb::BookSnapshot {
        let sum = checksum(
            bids.iter().map(|l| (l.price, l.shares)),
            asks.iter().map(|l| (l.price, l.shares)),
            10,
        );
        pb::BookSnapshot {
            symbol: "AAPL".into(),
            seq,
            bids,
            asks,
            checksum: if last { sum } else { 0 },
            last_chunk: last,
            ..Default::default()
        }
    }

    fn delta(seq: u64, side: pb::Side, l: pb::Level, checksum: u32) -> pb::BookDelta {
        pb::BookDelta {
            symbol: "AAPL".into(),
            seq,
            side: side as i32,
            level: Some(l),
            checksum,
            timestamps: None,
        }
    }

    fn checker() -> Checker {
        Checker::new(&["AAPL".to_owned()], 10)
    }

    #[test]
    fn a_clean_stream_shows_no_violation() {
        let mut c = checker();
        assert!(
            c.snapshot(&snap(1, vec![level(100, 5)], vec![level(101, 7)], true))
                .is_empty()
        );
        let sum = checksum([(100, 5), (99, 3)], [(101, 7)], 10);
        assert!(
            c.delta(&delta(2, pb::Side::Bid, level(99, 3), sum))
                .is_empty()
        );
        let sum = checksum([(100, 5), (99, 3)], [], 10);
        assert!(
            c.delta(&delta(3, pb::Side::Ask, level(101, 0), sum))
                .is_empty()
        );
        let book = c.book("AAPL").unwrap();
        assert_eq!(
            book.bids().next(),
            Some(Level {
                price: 100,
                shares: 5,
                orders: 1
            })
        );
        assert_eq!(book.asks().count(), 0);
    }

    #[test]
    fn removing_a_level_not_held_is_a_violation() {
        let mut c = checker();
        c.snapshot(&snap(1, vec![level(100, 5)], vec![], true));
        let v = c.delta(&delta(
            2,
            pb::Side::Bid,
            level(99, 0),
            checksum([(100, 5)], [], 10),
        ));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("a level not held"), "{v:?}");
    }

    #[test]
    fn a_learning_checker_holds_what_comes_and_still_checks_it() {
        let mut c = Checker::learning(10);
        assert!(
            c.snapshot(&snap(1, vec![level(100, 5)], vec![], true))
                .is_empty()
        );
        assert_eq!(c.books().count(), 1);
        let v = c.delta(&delta(
            3,
            pb::Side::Bid,
            level(100, 6),
            checksum([(100, 6)], [], 10),
        ));
        assert!(v.iter().any(|f| f.contains("seq 3 after 1")), "{v:?}");
    }

    #[test]
    fn a_seq_gap_is_reported_with_both_seqs() {
        let mut c = checker();
        c.snapshot(&snap(1, vec![], vec![], true));
        let v = c.delta(&delta(
            3,
            pb::Side::Bid,
            level(100, 5),
            checksum([(100, 5)], [], 10),
        ));
        assert_eq!(v, vec!["AAPL seq 3 after 1".to_owned()]);
    }

    #[test]
    fn the_first_update_must_be_a_snapshot_with_seq_1() {
        let mut c = checker();
        let v = c.delta(&delta(1, pb::Side::Bid, level(100, 5), 0));
        assert!(v[0].contains("snapshot was due"), "{v:?}");
        let mut c = checker();
        let v = c.snapshot(&snap(2, vec![], vec![], true));
        assert!(v[0].contains("not 1"), "{v:?}");
    }

    #[test]
    fn a_wrong_checksum_is_reported_once_until_the_next_snapshot() {
        let mut c = checker();
        c.snapshot(&snap(1, vec![level(100, 5)], vec![], true));
        let v = c.delta(&delta(2, pb::Side::Bid, level(99, 1), 42));
        assert_eq!(v.len(), 1);
        assert!(
            v[0].contains("checksum mismatch") && v[0].contains("0x0000002a"),
            "{v:?}"
        );
        assert!(
            c.delta(&delta(3, pb::Side::Bid, level(98, 1), 43))
                .is_empty()
        );
        assert!(c.snapshot(&snap(4, vec![], vec![], true)).is_empty());
        assert_eq!(c.delta(&delta(5, pb::Side::Bid, level(98, 1), 44)).len(), 1);
    }

    #[test]
    fn chunks_accumulate_and_the_last_carries_the_checksum() {
        let mut c = checker();
        assert!(
            c.snapshot(&snap(1, vec![level(100, 5)], vec![], false))
                .is_empty()
        );
        let mut last = snap(2, vec![], vec![level(101, 2)], true);
        last.checksum = checksum([(100, 5)], [(101, 2)], 10);
        assert!(c.snapshot(&last).is_empty());
        let sum = checksum([], [(101, 2)], 10);
        let v = c.delta(&delta(3, pb::Side::Bid, level(100, 0), sum));
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn after_a_resync_a_snapshot_is_due_and_seqs_stay_contiguous() {
        let mut c = checker();
        c.snapshot(&snap(1, vec![level(100, 5)], vec![], true));
        c.resync(&pb::Resync {
            symbol: "AAPL".into(),
            reason: pb::ResyncReason::SlowConsumer as i32,
            detail: String::new(),
        });
        assert!(c.book("AAPL").unwrap().bids.is_empty());
        assert_eq!(
            c.snapshot(&snap(9, vec![], vec![], true)).len(),
            1,
            "a skipped seq"
        );
        c.resync(&pb::Resync {
            symbol: "AAPL".into(),
            ..Default::default()
        });
        assert!(c.snapshot(&snap(10, vec![], vec![], true)).is_empty());
        c.resync(&pb::Resync {
            symbol: "AAPL".into(),
            ..Default::default()
        });
        assert_eq!(c.delta(&delta(11, pb::Side::Bid, level(1, 1), 0)).len(), 1);
    }

    #[test]
    fn removed_symbols_are_forgotten_and_stay_silent() {
        let mut c = checker();
        c.snapshot(&snap(1, vec![], vec![], true));
        let removed = pb::SymbolRemoved {
            symbol: "AAPL".into(),
            seq: 2,
        };
        assert!(c.removed(&removed).is_empty());
        assert!(c.book("AAPL").is_none());
        assert!(c.delta(&delta(3, pb::Side::Bid, level(1, 1), 0))[0].contains("SymbolRemoved"));
    }

    #[test]
    fn more_levels_than_the_depth_is_a_violation() {
        let mut c = Checker::new(&["AAPL".to_owned()], 1);
        let bids = vec![level(100, 1), level(99, 1)];
        let mut s = snap(1, bids, vec![], true);
        s.checksum = checksum([(100, 1)], [], 1);
        let v = c.snapshot(&s);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("more than the depth of 1"));
    }
}
