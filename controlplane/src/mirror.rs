//! [`Mirror`]: one symbol's L2 book, rebuilt from the data plane's events alone.
//!
//! Snapshots are served from mirrors, never from the data plane.

use std::collections::BTreeMap;

use dataplane::feed::itch::Side;

use crate::contract::Level;
use crate::orders::OrderBook;
use crate::status::SymbolStatus;

/// One symbol's L2 book and what the control plane knows of it.
#[derive(Debug, Default)]
pub struct Mirror {
    /// The symbol, trimmed.
    pub symbol: String,
    /// The stock locate.
    pub locate: u16,
    /// The shard that owns it.
    pub shard: u16,
    /// Its prices are integers × 10^`price_exponent`.
    pub price_exponent: i8,
    /// Published by its shard right now.
    pub published: bool,
    /// The upstream sequence number of the last event applied.
    pub seq: u64,
    /// While the data plane resends the book: the levels still to come (never 0) and why it
    /// resends it. `None` when no resync is under way.
    pub rebuild: Option<(u32, dataplane::runtime::event::ResyncReason)>,
    /// Published, but the book the data plane sends after publishing has not arrived whole
    /// yet (set by `SymbolAdded`, cleared when the resync that follows it completes).
    pub awaiting_book: bool,
    /// The data plane says the book misses orders.
    pub incomplete: bool,
    /// Level updates applied since the server started.
    pub updates: u64,
    /// Exchange and ingest time of the last update.
    pub last_exchange_ns: u64,
    /// See `last_exchange_ns`.
    pub last_ingest_ns: u64,
    /// Its trading status, from the data plane's status events.
    pub status: SymbolStatus,
    /// Its order book, kept while some client streams its orders.
    pub orders: Option<OrdersMirror>,
    /// Its status before the resync under way (which carries the status anew).
    pub status_before: Option<SymbolStatus>,
    bids: BTreeMap<i64, (u64, u32)>,
    asks: BTreeMap<i64, (u64, u32)>,
}

/// A symbol's order book as the control plane rebuilds it from the data plane's order events.
#[derive(Debug, Default)]
pub struct OrdersMirror {
    /// The orders.
    pub book: OrderBook,
    /// The data plane sent the book whole (a resync that carried its orders) and every order
    /// event since was applied: it can be served. False while waiting for that resync, and
    /// while it arrives.
    pub live: bool,
    /// The resync under way carries the orders: the book is live once it is complete.
    pub arriving: bool,
    /// The number the hub gave this book when it was made: only a resync answering a request
    /// of this number can make it live (an older one may miss the order events of a time the
    /// stream was off).
    pub epoch: u32,
    /// The data plane could not send it (it has more orders than half its event ring holds).
    pub omitted: bool,
}

impl Mirror {
    /// An empty book.
    pub fn new(symbol: String, locate: u16, shard: u16) -> Self {
        Self {
            symbol,
            locate,
            shard,
            ..Self::default()
        }
    }

    /// Sets a level; 0 shares removes it.
    pub fn set(&mut self, side: Side, price: i64, shares: u64, orders: u32) {
        let map = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if shares == 0 {
            map.remove(&price);
        } else {
            map.insert(price, (shares, orders));
        }
    }

    /// Empties the book.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    /// Levels on both sides.
    pub fn levels(&self) -> usize {
        self.bids.len() + self.asks.len()
    }

    /// The best `n` levels of `side`, best first.
    pub fn top(&self, side: Side, n: usize) -> Vec<Level> {
        match side {
            Side::Buy => self.bids.iter().rev().take(n).map(lvl).collect(),
            Side::Sell => self.asks.iter().take(n).map(lvl).collect(),
        }
    }

    /// The level at `price` on `side`, if there is one.
    pub fn level(&self, side: Side, price: i64) -> Option<Level> {
        let map = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        map.get_key_value(&price).map(lvl)
    }

    /// The `i`-th best level of `side` (0 is the best).
    pub fn nth(&self, side: Side, i: usize) -> Option<Level> {
        match side {
            Side::Buy => self.bids.iter().rev().nth(i).map(lvl),
            Side::Sell => self.asks.iter().nth(i).map(lvl),
        }
    }

    /// True if `price` is among the best `n` levels of `side`, or would be if it existed.
    pub fn within(&self, side: Side, price: i64, n: usize) -> bool {
        // fewer than `n` levels strictly better than `price`
        let Some(skip) = n.checked_sub(1) else {
            return false;
        };
        match side {
            Side::Buy => self
                .bids
                .range(price.saturating_add(1)..)
                .nth(skip)
                .is_none(),
            Side::Sell => self.asks.range(..price).rev().nth(skip).is_none(),
        }
    }
}

/// A level of one side's map as the API sends it.
fn lvl((&price, &(shares, orders)): (&i64, &(u64, u32))) -> Level {
    Level {
        price,
        shares,
        orders,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_is_best_first_and_zero_removes() {
        let mut m = Mirror::new("AAPL".into(), 1, 0);
        for p in [100, 102, 101] {
            m.set(Side::Buy, p, 10, 1);
            m.set(Side::Sell, p + 10, 5, 1);
        }
        assert_eq!(
            m.top(Side::Buy, 2)
                .iter()
                .map(|l| l.price)
                .collect::<Vec<_>>(),
            [102, 101]
        );
        assert_eq!(
            m.top(Side::Sell, 2)
                .iter()
                .map(|l| l.price)
                .collect::<Vec<_>>(),
            [110, 111]
        );
        m.set(Side::Buy, 102, 0, 0);
        assert_eq!(m.top(Side::Buy, 1)[0].price, 101);
        assert_eq!(m.levels(), 5);
        assert!(m.within(Side::Buy, 101, 1));
        assert!(m.within(Side::Buy, 105, 1), "a new best is within");
        assert!(!m.within(Side::Buy, 100, 1));
        assert!(m.within(Side::Buy, 100, 2));
        assert!(m.within(Side::Sell, 110, 1));
        assert!(!m.within(Side::Sell, 112, 2));
        assert!(m.within(Side::Sell, 111, 2));
    }
}
