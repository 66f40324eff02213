//! The order, trade and status streams' contract (proto/pinbook/v2/book.proto), checked from
//! the client's side as [`crate::contract::Checker`] checks the level stream: per symbol, seq
//! 1 first and contiguous after, resyncs honoured, and for orders the book the client holds
//! rebuilt from snapshots and events, each checksum and `remaining` verified. `pinbook orders`,
//! `trades`, `status` and the tests hold their state with it.

use std::collections::{HashMap, HashSet};

use dataplane::feed::itch::Side;
use dataplane::runtime::event::{OrderAction, OrderUpdate};

use crate::contract::Phase;
use crate::orders::OrderBook;
use crate::pb::{self, book_update::Update};

/// One symbol as the client holds it.
#[derive(Debug)]
pub struct Held {
    /// The seq of its last update, 0 before any.
    pub seq: u64,
    /// Where its stream stands (trades: only `First` then `Live`).
    pub phase: Phase,
    /// Orders: the book held.
    pub orders: OrderBook,
    /// Status: the last status received.
    pub status: Option<pb::TradingStatus>,
    /// Trades received.
    pub trades: u64,
    /// Prices are integers × 10^`price_exponent`, as the last snapshot, trade or status said.
    pub price_exponent: i8,
    /// As the last snapshot said.
    pub incomplete: bool,
    /// As the last snapshot said.
    pub stale: bool,
    /// A checksum mismatch was reported since the last snapshot.
    diverged: bool,
}

impl Held {
    fn new() -> Self {
        Self {
            seq: 0,
            phase: Phase::First,
            orders: OrderBook::new(),
            status: None,
            trades: 0,
            price_exponent: 0,
            incomplete: false,
            stale: false,
            diverged: false,
        }
    }
}

/// Checks one subscription of the orders, trades or status stream.
#[derive(Debug)]
pub struct StreamChecker {
    held: HashMap<String, Held>,
    /// The symbols asked for, in order.
    symbols: Vec<String>,
    removed: HashSet<String>,
}

impl StreamChecker {
    /// A checker for a subscription to `symbols`.
    pub fn new(symbols: &[String]) -> Self {
        Self {
            held: symbols.iter().map(|s| (s.clone(), Held::new())).collect(),
            symbols: symbols.to_vec(),
            removed: HashSet::new(),
        }
    }

    /// The symbols still held, in the order they were asked for.
    pub fn symbols(&self) -> Vec<String> {
        self.symbols
            .iter()
            .filter(|s| self.held.contains_key(*s))
            .cloned()
            .collect()
    }

    /// What the client holds of `symbol`.
    pub fn held(&self, symbol: &str) -> Option<&Held> {
        self.held.get(symbol)
    }

    fn held_mut(&mut self, symbol: &str) -> Result<&mut Held, String> {
        if self.removed.contains(symbol) {
            return Err(format!("{symbol}: an update after SymbolRemoved"));
        }
        self.held.get_mut(symbol).ok_or_else(|| {
            format!("{symbol}: an update for a symbol this subscription did not ask for")
        })
    }

    fn check_seq(held: &mut Held, symbol: &str, seq: u64, found: &mut Vec<String>) {
        let ok = match held.phase {
            Phase::First => seq == 1,
            _ => seq == held.seq + 1,
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

    fn check_sum(held: &mut Held, symbol: &str, seq: u64, sent: u32, found: &mut Vec<String>) {
        let computed = held.orders.checksum();
        if computed != sent && !held.diverged {
            held.diverged = true;
            found.push(format!(
                "{symbol} seq {seq} orders checksum mismatch: server sent {sent:#010x}, the \
                 orders held give {computed:#010x} (not reported again until the next snapshot)"
            ));
        }
    }

    /// Checks and applies one update; returns the contract violations it shows.
    pub fn apply(&mut self, update: &Update) -> Vec<String> {
        match update {
            Update::Orders(s) => self.orders_snapshot(s),
            Update::Order(e) => self.order_event(e),
            Update::Trade(t) => self.trade(t),
            Update::Status(s) => self.status(s),
            Update::Resync(r) => match self.held_mut(&r.symbol) {
                Ok(held) => {
                    held.orders.clear();
                    if held.phase != Phase::First {
                        held.phase = Phase::AfterResync;
                    }
                    Vec::new()
                }
                Err(v) => vec![v],
            },
            Update::Removed(r) => {
                let mut found = Vec::new();
                match self.held_mut(&r.symbol) {
                    Ok(held) => {
                        // the removal follows the last update sent, whatever its phase
                        if held.phase == Phase::First {
                            held.phase = Phase::AfterResync;
                        }
                        Self::check_seq(held, &r.symbol, r.seq, &mut found);
                    }
                    Err(v) => return vec![v],
                }
                self.held.remove(&r.symbol);
                self.removed.insert(r.symbol.clone());
                found
            }
            Update::Heartbeat(_) => Vec::new(),
            Update::Snapshot(s) => vec![format!(
                "{} seq {}: a level snapshot on an order, trade or status subscription",
                s.symbol, s.seq
            )],
            Update::Delta(d) => vec![format!(
                "{} seq {}: a level delta on an order, trade or status subscription",
                d.symbol, d.seq
            )],
        }
    }

    fn orders_snapshot(&mut self, s: &pb::OrdersSnapshot) -> Vec<String> {
        let mut found = Vec::new();
        let held = match self.held_mut(&s.symbol) {
            Ok(held) => held,
            Err(v) => return vec![v],
        };
        Self::check_seq(held, &s.symbol, s.seq, &mut found);
        if held.phase != Phase::InSnapshot {
            held.orders.clear();
            held.diverged = false;
        }
        held.price_exponent = i8::try_from(s.price_exponent).unwrap_or_default();
        held.incomplete = s.incomplete;
        held.stale = s.stale;
        for order in &s.orders {
            let add = OrderUpdate {
                locate: 0,
                action: OrderAction::Add,
                side: match side_of(order.side) {
                    Some(side) => side,
                    None => {
                        found.push(format!(
                            "{} seq {}: order {} without a side",
                            s.symbol, s.seq, order.reference
                        ));
                        continue;
                    }
                },
                shares: u32::try_from(order.shares).unwrap_or(u32::MAX),
                seq: 0,
                reference: order.reference,
                other: 0,
                price: order.price,
                exchange_ns: 0,
                ingest_ns: 0,
            };
            if let Err(e) = held.orders.apply(&add) {
                found.push(format!("{} seq {}: snapshot order: {e}", s.symbol, s.seq));
            }
        }
        if s.last_chunk {
            held.phase = Phase::Live;
            Self::check_sum(held, &s.symbol, s.seq, s.checksum, &mut found);
        } else {
            held.phase = Phase::InSnapshot;
        }
        found
    }

    fn order_event(&mut self, e: &pb::OrderEvent) -> Vec<String> {
        let mut found = Vec::new();
        let held = match self.held_mut(&e.symbol) {
            Ok(held) => held,
            Err(v) => return vec![v],
        };
        if held.phase != Phase::Live {
            found.push(format!(
                "{} seq {}: an order event where a snapshot (or its last chunk) was due",
                e.symbol, e.seq
            ));
        }
        Self::check_seq(held, &e.symbol, e.seq, &mut found);
        let action = match pb::OrderAction::try_from(e.action) {
            Ok(pb::OrderAction::Add) => OrderAction::Add,
            Ok(pb::OrderAction::Execute) => OrderAction::Execute,
            Ok(pb::OrderAction::Cancel) => OrderAction::Cancel,
            Ok(pb::OrderAction::Delete) => OrderAction::Delete,
            Ok(pb::OrderAction::Replace) => OrderAction::Replace,
            _ => {
                found.push(format!("{} seq {}: no order action", e.symbol, e.seq));
                return found;
            }
        };
        let Some(side) = side_of(e.side) else {
            found.push(format!(
                "{} seq {}: an order event without a side",
                e.symbol, e.seq
            ));
            return found;
        };
        let update = OrderUpdate {
            locate: 0,
            action,
            side,
            shares: u32::try_from(e.shares).unwrap_or(u32::MAX),
            seq: 0,
            reference: e.reference,
            other: if action == OrderAction::Replace {
                e.new_reference
            } else {
                e.match_number
            },
            price: e.price,
            exchange_ns: 0,
            ingest_ns: 0,
        };
        match held.orders.apply(&update) {
            Ok(applied) if applied.remaining != e.remaining => found.push(format!(
                "{} seq {}: remaining {} sent, {} held",
                e.symbol, e.seq, e.remaining, applied.remaining
            )),
            Ok(_) => {}
            Err(err) => found.push(format!("{} seq {}: {err}", e.symbol, e.seq)),
        }
        if held.phase == Phase::Live {
            Self::check_sum(held, &e.symbol, e.seq, e.checksum, &mut found);
        }
        found
    }

    fn trade(&mut self, t: &pb::Trade) -> Vec<String> {
        let mut found = Vec::new();
        let held = match self.held_mut(&t.symbol) {
            Ok(held) => held,
            Err(v) => return vec![v],
        };
        Self::check_seq(held, &t.symbol, t.seq, &mut found);
        held.phase = Phase::Live;
        held.trades += 1;
        held.price_exponent = i8::try_from(t.price_exponent).unwrap_or_default();
        found
    }

    fn status(&mut self, s: &pb::TradingStatus) -> Vec<String> {
        let mut found = Vec::new();
        let held = match self.held_mut(&s.symbol) {
            Ok(held) => held,
            Err(v) => return vec![v],
        };
        let snapshot = s.change == pb::StatusChange::Snapshot as i32;
        if held.phase != Phase::Live && !snapshot {
            found.push(format!(
                "{} seq {}: a status change where the whole status was due",
                s.symbol, s.seq
            ));
        }
        Self::check_seq(held, &s.symbol, s.seq, &mut found);
        held.phase = Phase::Live;
        held.price_exponent = i8::try_from(s.price_exponent).unwrap_or_default();
        held.status = Some(s.clone());
        found
    }
}

/// The data-plane side of a wire side.
fn side_of(side: i32) -> Option<Side> {
    match pb::Side::try_from(side) {
        Ok(pb::Side::Bid) => Some(Side::Buy),
        Ok(pb::Side::Ask) => Some(Side::Sell),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(reference: u64, side: pb::Side, price: i64, shares: u64) -> pb::Order {
        pb::Order {
            reference,
            side: side as i32,
            price,
            shares,
        }
    }

    fn snapshot(seq: u64, orders: Vec<pb::Order>, last: bool) -> Update {
        let mut book = OrderBook::new();
        let mut checksum = 0;
        if last {
            for o in &orders {
                let side = side_of(o.side).unwrap();
                let add = OrderUpdate {
                    locate: 0,
                    action: OrderAction::Add,
                    side,
                    shares: o.shares as u32,
                    seq: 0,
                    reference: o.reference,
                    other: 0,
                    price: o.price,
                    exchange_ns: 0,
                    ingest_ns: 0,
                };
                book.apply(&add).unwrap();
            }
            checksum = book.checksum();
        }
        Update::Orders(pb::OrdersSnapshot {
            symbol: "A".into(),
            seq,
            orders,
            checksum,
            last_chunk: last,
            ..Default::default()
        })
    }

    #[test]
    fn an_orders_stream_is_checked_event_by_event() {
        let mut c = StreamChecker::new(&["A".to_owned()]);
        let orders = vec![
            order(1, pb::Side::Bid, 100, 10),
            order(2, pb::Side::Ask, 101, 5),
        ];
        assert!(c.apply(&snapshot(1, orders, true)).is_empty());
        let mut book = c.held("A").unwrap().orders.clone();
        let execute = OrderUpdate {
            locate: 0,
            action: OrderAction::Execute,
            side: Side::Buy,
            shares: 4,
            seq: 0,
            reference: 1,
            other: 77,
            price: 100,
            exchange_ns: 0,
            ingest_ns: 0,
        };
        let applied = book.apply(&execute).unwrap();
        let event = book.event("A", 2, &execute, &applied);
        assert_eq!(event.remaining, 6);
        assert!(c.apply(&Update::Order(event.clone())).is_empty());
        // the same event again: wrong seq, and the book no longer matches its checksum
        let found = c.apply(&Update::Order(pb::OrderEvent { seq: 4, ..event }));
        assert!(
            found.iter().any(|f| f.contains("seq 4 after 2")),
            "{found:?}"
        );
        assert!(found.iter().any(|f| f.contains("remaining")), "{found:?}");
        assert!(found.iter().any(|f| f.contains("checksum")), "{found:?}");
        // a resync: an event before the next snapshot is a violation
        assert!(
            c.apply(&Update::Resync(pb::Resync {
                symbol: "A".into(),
                ..Default::default()
            }))
            .is_empty()
        );
        let found = c.apply(&Update::Order(pb::OrderEvent {
            symbol: "A".into(),
            seq: 5,
            action: pb::OrderAction::Delete as i32,
            reference: 2,
            side: pb::Side::Ask as i32,
            price: 101,
            shares: 5,
            ..Default::default()
        }));
        assert!(found.iter().any(|f| f.contains("snapshot")), "{found:?}");
    }

    #[test]
    fn trades_and_statuses_keep_their_seq() {
        let mut c = StreamChecker::new(&["A".to_owned()]);
        let trade = |seq| {
            Update::Trade(pb::Trade {
                symbol: "A".into(),
                seq,
                ..Default::default()
            })
        };
        assert!(c.apply(&trade(1)).is_empty());
        assert!(c.apply(&trade(2)).is_empty());
        assert_eq!(c.apply(&trade(4)).len(), 1);
        let mut c = StreamChecker::new(&["A".to_owned()]);
        let status = |seq, change: pb::StatusChange| {
            Update::Status(Box::new(pb::TradingStatus {
                symbol: "A".into(),
                seq,
                change: change as i32,
                ..Default::default()
            }))
        };
        assert_eq!(
            c.apply(&status(1, pb::StatusChange::TradingState)).len(),
            1,
            "the whole status comes first"
        );
        let mut c = StreamChecker::new(&["A".to_owned()]);
        assert!(c.apply(&status(1, pb::StatusChange::Snapshot)).is_empty());
        assert!(c.apply(&status(2, pb::StatusChange::Imbalance)).is_empty());
        assert!(c.apply(&trade(3)).is_empty(), "seq is per symbol");
    }
}
