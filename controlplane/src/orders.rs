//! [`OrderBook`]: one symbol's live orders (market by order, L3), rebuilt from the data plane's
//! order events alone, and the messages of the orders stream built from it (`STREAM_ORDERS`
//! in proto/pinbook/v2/book.proto): [`OrderBook::snapshot`] in chunks, [`OrderBook::event`]
//! per order change, each with the orders checksum ([`crate::checksum::orders_checksum`]).
//!
//! Each side keeps its prices in a `BTreeMap`, each price its orders by arrival number (a
//! counter the book hands out as orders join), and an index maps each reference to where its
//! order is: every event costs O(log n), wherever the order stands in its queue.

use std::collections::BTreeMap;

use ahash::AHashMap;
use dataplane::clock::now_ns;
use dataplane::feed::itch::Side;
use dataplane::runtime::event::{OrderAction, OrderUpdate};

use crate::checksum::orders_checksum;
use crate::pb;

/// Orders per snapshot chunk: far below 1 MiB encoded (an order is at most 37 bytes with its
/// tag and length, so a chunk is at most about 600 KiB).
pub const CHUNK_ORDERS: usize = 16_384;

/// One price's orders, oldest first: arrival number → (reference, shares).
type Queue = BTreeMap<u64, (u64, u64)>;

/// Where a live order is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    side: Side,
    price: i64,
    /// Its key in its price's [`Queue`].
    arrival: u64,
}

/// One symbol's live orders: per side its prices best first (bids highest, asks lowest), each
/// price's orders in time priority (oldest, first to fill, first). Every live order has at
/// least one share and a reference no other live order has.
#[derive(Clone, Debug, Default)]
pub struct OrderBook {
    bids: BTreeMap<i64, Queue>,
    asks: BTreeMap<i64, Queue>,
    index: AHashMap<u64, Slot>,
    /// The arrival number the next order to join gets.
    next_arrival: u64,
}

/// What [`OrderBook::apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The order's shares after the event (`OrderEvent.remaining`): 0 when it is gone; for a
    /// Replace, the new order's shares.
    pub remaining: u64,
}

/// An order event that does not fit the book: the mirror is broken and must be resynced. The
/// event was not applied; the book is as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderBookError {
    /// The event is about an order the book does not hold.
    #[error("{action:?} of order {reference}: no such live order")]
    UnknownReference {
        /// The event's action.
        action: OrderAction,
        /// The reference it named.
        reference: u64,
    },
    /// An Add, or the new half of a Replace, names a reference that is already live.
    #[error("{action:?} of order {reference}: an order with that reference is already live")]
    DuplicateReference {
        /// The event's action.
        action: OrderAction,
        /// The reference already live.
        reference: u64,
    },
    /// An Add or a Replace for no shares: an order rests with at least one.
    #[error("{action:?} of order {reference} for 0 shares")]
    NoShares {
        /// The event's action.
        action: OrderAction,
        /// The order (for a Replace, the new one).
        reference: u64,
    },
    /// An Execute or Cancel takes off more shares than the order has.
    #[error("{action:?} of {shares} shares of order {reference}, which has only {held}")]
    TooManyShares {
        /// The event's action.
        action: OrderAction,
        /// The order.
        reference: u64,
        /// The shares the event takes off.
        shares: u64,
        /// The shares the order has.
        held: u64,
    },
    /// A Delete says the order had other shares than it has.
    #[error("Delete of order {reference} says it had {shares} shares; it has {held}")]
    DeletedShares {
        /// The order.
        reference: u64,
        /// The shares the event says it had.
        shares: u64,
        /// The shares it has.
        held: u64,
    },
    /// The event puts the order on the other side than the book holds it on.
    #[error("{action:?} of order {reference} on the {said:?} side; it rests on the {held:?} side")]
    SideMismatch {
        /// The event's action.
        action: OrderAction,
        /// The order.
        reference: u64,
        /// The side the event gives.
        said: Side,
        /// The side the order rests on.
        held: Side,
    },
    /// An Execute, Cancel or Delete gives another price than the order rests at.
    #[error("{action:?} of order {reference} at price {said}; it rests at {held}")]
    PriceMismatch {
        /// The event's action.
        action: OrderAction,
        /// The order.
        reference: u64,
        /// The price the event gives.
        said: i64,
        /// The price the order rests at.
        held: i64,
    },
}

/// Two books are equal when they hold the same orders in the same priority (however they
/// numbered their arrivals).
impl PartialEq for OrderBook {
    fn eq(&self, other: &Self) -> bool {
        self.orders().eq(other.orders())
    }
}

impl Eq for OrderBook {}

impl OrderBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one order event (semantics in `dataplane::runtime::event::OrderUpdate` and the
    /// proto's `OrderAction`):
    /// - Add: `reference` joins the back of `price` on `side` with `shares`;
    /// - Execute, Cancel: `shares` come off the order, which is gone at 0;
    /// - Delete: the order is gone (`shares` is what it had);
    /// - Replace: `reference` is gone and `other` (the new reference, which may equal it)
    ///   joins the back of `price` with `shares`, same side.
    ///
    /// An event that does not fit the book (an unknown or already live reference, more shares
    /// than the order has, another side or price than it rests at, an order for 0 shares) is
    /// an error and changes nothing.
    pub fn apply(&mut self, u: &OrderUpdate) -> Result<Applied, OrderBookError> {
        let shares = u64::from(u.shares);
        match u.action {
            OrderAction::Add => {
                self.check_joining(u.action, u.reference, shares, None)?;
                self.join(u.reference, u.side, u.price, shares);
                Ok(Applied { remaining: shares })
            }
            OrderAction::Execute | OrderAction::Cancel => {
                let (slot, held) = self.resting(u, true)?;
                let Some(remaining) = held.checked_sub(shares) else {
                    return Err(OrderBookError::TooManyShares {
                        action: u.action,
                        reference: u.reference,
                        shares,
                        held,
                    });
                };
                if remaining == 0 {
                    self.leave(u.reference, slot);
                } else if let Some((_, left)) = self.entry_mut(slot) {
                    *left = remaining;
                }
                Ok(Applied { remaining })
            }
            OrderAction::Delete => {
                let (slot, held) = self.resting(u, true)?;
                if shares != held {
                    return Err(OrderBookError::DeletedShares {
                        reference: u.reference,
                        shares,
                        held,
                    });
                }
                self.leave(u.reference, slot);
                Ok(Applied { remaining: 0 })
            }
            OrderAction::Replace => {
                // the price is the new order's: only the side says which order this is
                let (slot, _) = self.resting(u, false)?;
                self.check_joining(u.action, u.other, shares, Some(u.reference))?;
                self.leave(u.reference, slot);
                self.join(u.other, slot.side, u.price, shares);
                Ok(Applied { remaining: shares })
            }
        }
    }

    /// Empties the book.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.index.clear();
        self.next_arrival = 0;
    }

    /// Live orders, both sides.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True if no order is live.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The live order `reference` as (side, price, shares), if there is one.
    pub fn get(&self, reference: u64) -> Option<(Side, i64, u64)> {
        let (slot, shares) = self.find(reference)?;
        Some((slot.side, slot.price, shares))
    }

    /// Every live order as (side, price, reference, shares) in published order: the bids best
    /// (highest) price first, then the asks best (lowest) first, each price oldest first.
    pub fn orders(&self) -> impl Iterator<Item = (Side, i64, u64, u64)> + '_ {
        let bids = self.bid_orders().map(|(r, p, s)| (Side::Buy, p, r, s));
        let asks = self.ask_orders().map(|(r, p, s)| (Side::Sell, p, r, s));
        bids.chain(asks)
    }

    /// The orders checksum of the book (see book.proto): of its first
    /// [`crate::checksum::CHECKSUM_ORDERS`] orders of each side, so at most 64 orders are read
    /// whatever the book's size.
    pub fn checksum(&self) -> u32 {
        orders_checksum(self.bid_orders(), self.ask_orders())
    }

    /// The whole book as the chunks of one snapshot, in published order, at most
    /// [`CHUNK_ORDERS`] orders (well under 1 MiB encoded) a chunk. Each chunk takes one seq:
    /// the first `first_seq`, the next `first_seq + 1`, and so on, so the subscriber's seq
    /// advances by the number of chunks (as `deltas.rs` numbers L2 chunks). Only the last
    /// chunk carries the checksum (0 on the others) and `last_chunk`; an empty book is one
    /// empty last chunk with checksum 0. Every chunk carries `timestamps` as given (for
    /// `deltas.rs`'s convention: the last event's exchange and ingest times, `send_ns` now).
    pub fn snapshot(
        &self,
        symbol: &str,
        first_seq: u64,
        price_exponent: i8,
        incomplete: bool,
        stale: bool,
        timestamps: pb::Timestamps,
    ) -> Vec<pb::OrdersSnapshot> {
        self.chunked::<CHUNK_ORDERS>(
            symbol,
            first_seq,
            price_exponent,
            incomplete,
            stale,
            timestamps,
        )
    }

    /// [`OrderBook::snapshot`] in chunks of at most `N` orders.
    fn chunked<const N: usize>(
        &self,
        symbol: &str,
        first_seq: u64,
        price_exponent: i8,
        incomplete: bool,
        stale: bool,
        timestamps: pb::Timestamps,
    ) -> Vec<pb::OrdersSnapshot> {
        let sum = self.checksum();
        let chunks = self.len().div_ceil(N).max(1);
        let mut orders = self
            .orders()
            .map(|(side, price, reference, shares)| pb::Order {
                reference,
                side: wire_side(side) as i32,
                price,
                shares,
            });
        (0..chunks)
            .map(|i| {
                let last = i + 1 == chunks;
                pb::OrdersSnapshot {
                    symbol: symbol.to_owned(),
                    seq: first_seq + i as u64,
                    orders: orders.by_ref().take(N).collect(),
                    checksum: if last { sum } else { 0 },
                    timestamps: Some(timestamps),
                    last_chunk: last,
                    incomplete,
                    stale,
                    price_exponent: i32::from(price_exponent),
                }
            })
            .collect()
    }

    /// The wire event of `u`, which [`OrderBook::apply`] just applied with `applied`: numbered
    /// `seq`, with the checksum of the book as it is now, `new_reference` set for a Replace
    /// only, `match_number` for an Execute only, and the update's exchange and ingest times
    /// with `send_ns` taken now.
    pub fn event(
        &self,
        symbol: &str,
        seq: u64,
        u: &OrderUpdate,
        applied: &Applied,
    ) -> pb::OrderEvent {
        let action = match u.action {
            OrderAction::Add => pb::OrderAction::Add,
            OrderAction::Execute => pb::OrderAction::Execute,
            OrderAction::Cancel => pb::OrderAction::Cancel,
            OrderAction::Delete => pb::OrderAction::Delete,
            OrderAction::Replace => pb::OrderAction::Replace,
        };
        pb::OrderEvent {
            symbol: symbol.to_owned(),
            seq,
            action: action as i32,
            reference: u.reference,
            new_reference: if u.action == OrderAction::Replace {
                u.other
            } else {
                0
            },
            side: wire_side(u.side) as i32,
            price: u.price,
            shares: u64::from(u.shares),
            match_number: if u.action == OrderAction::Execute {
                u.other
            } else {
                0
            },
            remaining: applied.remaining,
            checksum: self.checksum(),
            timestamps: Some(pb::Timestamps {
                exchange_ns: u.exchange_ns,
                ingest_ns: u.ingest_ns,
                send_ns: now_ns(),
            }),
        }
    }

    /// The bids in published order as (reference, price, shares).
    fn bid_orders(&self) -> impl Iterator<Item = (u64, i64, u64)> + '_ {
        self.bids.iter().rev().flat_map(level_orders)
    }

    /// The asks in published order as (reference, price, shares).
    fn ask_orders(&self) -> impl Iterator<Item = (u64, i64, u64)> + '_ {
        self.asks.iter().flat_map(level_orders)
    }

    fn side(&self, side: Side) -> &BTreeMap<i64, Queue> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i64, Queue> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The (reference, shares) entry of the order at `slot`.
    fn entry_mut(&mut self, slot: Slot) -> Option<&mut (u64, u64)> {
        self.side_mut(slot.side)
            .get_mut(&slot.price)?
            .get_mut(&slot.arrival)
    }

    /// Where the order `u` is about rests and its shares, if it rests on `u.side` (and, if
    /// `at_price`, at `u.price`).
    fn resting(&self, u: &OrderUpdate, at_price: bool) -> Result<(Slot, u64), OrderBookError> {
        let (action, reference) = (u.action, u.reference);
        let Some((slot, shares)) = self.find(reference) else {
            return Err(OrderBookError::UnknownReference { action, reference });
        };
        if slot.side != u.side {
            return Err(OrderBookError::SideMismatch {
                action,
                reference,
                said: u.side,
                held: slot.side,
            });
        }
        if at_price && slot.price != u.price {
            return Err(OrderBookError::PriceMismatch {
                action,
                reference,
                said: u.price,
                held: slot.price,
            });
        }
        Ok((slot, shares))
    }

    /// Where the live order `reference` is, and its shares.
    fn find(&self, reference: u64) -> Option<(Slot, u64)> {
        let slot = *self.index.get(&reference)?;
        let &(_, shares) = self.side(slot.side).get(&slot.price)?.get(&slot.arrival)?;
        Some((slot, shares))
    }

    /// Checks that an order `reference` for `shares` may join: it has shares, and no live
    /// order has its reference but `leaving` (the order a Replace takes out).
    fn check_joining(
        &self,
        action: OrderAction,
        reference: u64,
        shares: u64,
        leaving: Option<u64>,
    ) -> Result<(), OrderBookError> {
        if shares == 0 {
            return Err(OrderBookError::NoShares { action, reference });
        }
        if leaving != Some(reference) && self.index.contains_key(&reference) {
            return Err(OrderBookError::DuplicateReference { action, reference });
        }
        Ok(())
    }

    /// Puts the order at the back of its price.
    fn join(&mut self, reference: u64, side: Side, price: i64, shares: u64) {
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.side_mut(side)
            .entry(price)
            .or_default()
            .insert(arrival, (reference, shares));
        self.index.insert(
            reference,
            Slot {
                side,
                price,
                arrival,
            },
        );
    }

    /// Takes the order out of its queue (and its price out if it was the last) and the index.
    fn leave(&mut self, reference: u64, slot: Slot) {
        let prices = self.side_mut(slot.side);
        if let Some(queue) = prices.get_mut(&slot.price) {
            queue.remove(&slot.arrival);
            if queue.is_empty() {
                prices.remove(&slot.price);
            }
        }
        self.index.remove(&reference);
    }
}

/// One price's orders, oldest first, as (reference, price, shares).
fn level_orders<'a>(
    (&price, queue): (&i64, &'a Queue),
) -> impl Iterator<Item = (u64, i64, u64)> + use<'a> {
    queue
        .values()
        .map(move |&(reference, shares)| (reference, price, shares))
}

/// The wire side of a data-plane side.
fn wire_side(side: Side) -> pb::Side {
    match side {
        Side::Buy => pb::Side::Bid,
        Side::Sell => pb::Side::Ask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::CHECKSUM_ORDERS;
    use proptest::prelude::*;
    use prost::Message;

    fn update(
        action: OrderAction,
        side: Side,
        reference: u64,
        price: i64,
        shares: u32,
    ) -> OrderUpdate {
        OrderUpdate {
            locate: 1,
            action,
            side,
            shares,
            seq: 0,
            reference,
            other: 0,
            price,
            exchange_ns: 0,
            ingest_ns: 0,
        }
    }

    fn add(side: Side, reference: u64, price: i64, shares: u32) -> OrderUpdate {
        update(OrderAction::Add, side, reference, price, shares)
    }

    fn replace(side: Side, old: u64, new: u64, price: i64, shares: u32) -> OrderUpdate {
        OrderUpdate {
            other: new,
            ..update(OrderAction::Replace, side, old, price, shares)
        }
    }

    fn all(book: &OrderBook) -> Vec<(Side, i64, u64, u64)> {
        book.orders().collect()
    }

    fn applied(book: &mut OrderBook, u: OrderUpdate) -> u64 {
        match book.apply(&u) {
            Ok(a) => a.remaining,
            Err(e) => panic!("{u:?}: {e}"),
        }
    }

    use Side::{Buy, Sell};

    #[test]
    fn orders_keep_price_then_time_priority_through_every_action() {
        let mut book = OrderBook::new();
        assert!(book.is_empty());
        for u in [
            add(Buy, 1, 100, 10),
            add(Buy, 2, 101, 20),
            add(Buy, 3, 100, 30),
            add(Sell, 4, 105, 40),
            add(Sell, 5, 103, 50),
            add(Sell, 6, 105, 60),
            add(Buy, 7, 101, 70),
            add(Buy, 8, 99, 80),
            add(Sell, 9, 103, 90),
        ] {
            assert_eq!(applied(&mut book, u), u64::from(u.shares));
        }
        assert_eq!(
            all(&book),
            [
                (Buy, 101, 2, 20),
                (Buy, 101, 7, 70),
                (Buy, 100, 1, 10),
                (Buy, 100, 3, 30),
                (Buy, 99, 8, 80),
                (Sell, 103, 5, 50),
                (Sell, 103, 9, 90),
                (Sell, 105, 4, 40),
                (Sell, 105, 6, 60),
            ]
        );
        assert_eq!(book.len(), 9);

        // a partial execution keeps the order's place; a full one takes it out
        let exec = OrderUpdate {
            other: 777,
            ..update(OrderAction::Execute, Buy, 2, 101, 5)
        };
        assert_eq!(applied(&mut book, exec), 15);
        assert_eq!(
            applied(&mut book, update(OrderAction::Execute, Sell, 5, 103, 50)),
            0
        );
        // a cancel from the middle of a queue
        assert_eq!(
            applied(&mut book, update(OrderAction::Cancel, Sell, 6, 105, 59)),
            1
        );
        assert_eq!(
            applied(&mut book, update(OrderAction::Cancel, Buy, 8, 99, 80)),
            0
        );
        // a delete from the front of a queue
        assert_eq!(
            applied(&mut book, update(OrderAction::Delete, Buy, 1, 100, 10)),
            0
        );
        // a replace to another price joins the back of it, with a new reference
        assert_eq!(applied(&mut book, replace(Buy, 2, 12, 100, 25)), 25);
        // a replace to the same price loses priority too
        assert_eq!(applied(&mut book, replace(Sell, 9, 19, 103, 90)), 90);
        assert_eq!(applied(&mut book, add(Sell, 10, 103, 1)), 1);
        assert_eq!(
            all(&book),
            [
                (Buy, 101, 7, 70),
                (Buy, 100, 3, 30),
                (Buy, 100, 12, 25),
                (Sell, 103, 19, 90),
                (Sell, 103, 10, 1),
                (Sell, 105, 4, 40),
                (Sell, 105, 6, 1),
            ]
        );
        assert_eq!(book.len(), 7);
        assert_eq!(book.get(12), Some((Buy, 100, 25)));
        assert_eq!(book.get(2), None);
        assert_eq!(book.get(5), None);
        assert_eq!(book.get(6), Some((Sell, 105, 1)));

        book.clear();
        assert!(book.is_empty());
        assert_eq!(all(&book), []);
        assert_eq!(book.checksum(), 0);
        assert_eq!(applied(&mut book, add(Sell, 4, 105, 1)), 1);
        assert_eq!(all(&book), [(Sell, 105, 4, 1)]);
    }

    #[test]
    fn a_replace_with_the_same_reference_goes_to_the_back() {
        let mut book = OrderBook::new();
        for r in 1..=3 {
            applied(&mut book, add(Sell, r, 200, 10));
        }
        // DBN modify that loses priority: same reference, same price, more shares
        assert_eq!(applied(&mut book, replace(Sell, 1, 1, 200, 15)), 15);
        assert_eq!(
            all(&book),
            [(Sell, 200, 2, 10), (Sell, 200, 3, 10), (Sell, 200, 1, 15)]
        );
        // and to another price
        assert_eq!(applied(&mut book, replace(Sell, 2, 2, 199, 4)), 4);
        assert_eq!(
            all(&book),
            [(Sell, 199, 2, 4), (Sell, 200, 3, 10), (Sell, 200, 1, 15)]
        );
        assert_eq!(book.len(), 3);
    }

    #[test]
    fn errors_leave_the_book_unchanged() {
        let mut book = OrderBook::new();
        for u in [
            add(Buy, 1, 100, 10),
            add(Buy, 2, 100, 20),
            add(Sell, 3, 101, 30),
        ] {
            applied(&mut book, u);
        }
        let before = book.clone();
        let cases = [
            (
                add(Sell, 2, 102, 5),
                OrderBookError::DuplicateReference {
                    action: OrderAction::Add,
                    reference: 2,
                },
            ),
            (
                add(Buy, 4, 100, 0),
                OrderBookError::NoShares {
                    action: OrderAction::Add,
                    reference: 4,
                },
            ),
            (
                update(OrderAction::Execute, Buy, 9, 100, 1),
                OrderBookError::UnknownReference {
                    action: OrderAction::Execute,
                    reference: 9,
                },
            ),
            (
                update(OrderAction::Cancel, Buy, 1, 100, 11),
                OrderBookError::TooManyShares {
                    action: OrderAction::Cancel,
                    reference: 1,
                    shares: 11,
                    held: 10,
                },
            ),
            (
                update(OrderAction::Execute, Sell, 1, 100, 1),
                OrderBookError::SideMismatch {
                    action: OrderAction::Execute,
                    reference: 1,
                    said: Sell,
                    held: Buy,
                },
            ),
            (
                update(OrderAction::Cancel, Buy, 1, 99, 1),
                OrderBookError::PriceMismatch {
                    action: OrderAction::Cancel,
                    reference: 1,
                    said: 99,
                    held: 100,
                },
            ),
            (
                update(OrderAction::Delete, Buy, 2, 100, 19),
                OrderBookError::DeletedShares {
                    reference: 2,
                    shares: 19,
                    held: 20,
                },
            ),
            (
                update(OrderAction::Delete, Buy, 3, 101, 30),
                OrderBookError::SideMismatch {
                    action: OrderAction::Delete,
                    reference: 3,
                    said: Buy,
                    held: Sell,
                },
            ),
            (
                replace(Buy, 9, 10, 100, 5),
                OrderBookError::UnknownReference {
                    action: OrderAction::Replace,
                    reference: 9,
                },
            ),
            (
                // the new reference is another live order
                replace(Buy, 1, 2, 99, 5),
                OrderBookError::DuplicateReference {
                    action: OrderAction::Replace,
                    reference: 2,
                },
            ),
            (
                replace(Buy, 1, 3, 99, 5),
                OrderBookError::DuplicateReference {
                    action: OrderAction::Replace,
                    reference: 3,
                },
            ),
            (
                replace(Sell, 1, 10, 99, 5),
                OrderBookError::SideMismatch {
                    action: OrderAction::Replace,
                    reference: 1,
                    said: Sell,
                    held: Buy,
                },
            ),
            (
                replace(Buy, 1, 10, 99, 0),
                OrderBookError::NoShares {
                    action: OrderAction::Replace,
                    reference: 10,
                },
            ),
        ];
        for (u, expected) in cases {
            assert_eq!(book.apply(&u), Err(expected), "{u:?}");
            assert_eq!(book, before, "{u:?} changed the book");
        }
        assert_eq!(
            OrderBookError::TooManyShares {
                action: OrderAction::Cancel,
                reference: 1,
                shares: 11,
                held: 10,
            }
            .to_string(),
            "Cancel of 11 shares of order 1, which has only 10"
        );
        // a replace that keeps its reference is no duplicate
        assert_eq!(applied(&mut book, replace(Buy, 1, 1, 100, 10)), 10);
        assert_eq!(
            all(&book),
            [(Buy, 100, 2, 20), (Buy, 100, 1, 10), (Sell, 101, 3, 30)]
        );
    }

    /// The orders checksum of published orders, as a client computes it from what it holds.
    fn checksum_of(orders: &[(Side, i64, u64, u64)]) -> u32 {
        let side = |s: Side| {
            orders
                .iter()
                .filter(move |o| o.0 == s)
                .map(|&(_, price, reference, shares)| (reference, price, shares))
        };
        orders_checksum(side(Buy), side(Sell))
    }

    fn from_wire(o: &pb::Order) -> (Side, i64, u64, u64) {
        let side = match pb::Side::try_from(o.side) {
            Ok(pb::Side::Bid) => Buy,
            Ok(pb::Side::Ask) => Sell,
            other => panic!("side {other:?}"),
        };
        (side, o.price, o.reference, o.shares)
    }

    /// A book of `bids` bids over a few prices, `asks` asks likewise.
    fn book_of(bids: u64, asks: u64) -> OrderBook {
        let mut book = OrderBook::new();
        for r in 0..bids {
            applied(
                &mut book,
                add(Buy, 1 + r, 1_000 - (r % 7) as i64, 1 + r as u32),
            );
        }
        for r in 0..asks {
            applied(
                &mut book,
                add(Sell, 1_000_000 + r, 2_000 + (r % 5) as i64, 3),
            );
        }
        book
    }

    #[test]
    fn snapshots_are_chunked_in_order_with_the_checksum_last() {
        let book = book_of(23, 14);
        let at = pb::Timestamps {
            exchange_ns: 11,
            ingest_ns: 22,
            send_ns: 33,
        };
        let chunks = book.chunked::<8>("T", 5, -4, true, false, at);
        assert_eq!(chunks.len(), 5);
        let mut got = Vec::new();
        for (i, s) in chunks.iter().enumerate() {
            let last = i == 4;
            assert_eq!(s.seq, 5 + i as u64);
            assert_eq!(s.symbol, "T");
            assert_eq!(s.last_chunk, last);
            assert_eq!(s.orders.len(), if last { 37 - 32 } else { 8 });
            assert_eq!(s.checksum, if last { book.checksum() } else { 0 });
            assert!(s.incomplete && !s.stale);
            assert_eq!(s.price_exponent, -4);
            assert_eq!(s.timestamps, Some(at));
            got.extend(s.orders.iter().map(from_wire));
        }
        assert_eq!(got, all(&book));
        // a client's checksum of the orders it got is the book's
        assert_eq!(checksum_of(&got), book.checksum());

        // exactly full chunks: no empty chunk after them
        let book = book_of(8, 8);
        let chunks = book.chunked::<8>("T", 1, -4, false, false, at);
        assert_eq!(chunks.len(), 2);
        assert!(chunks[1].last_chunk && chunks[1].orders.len() == 8);

        // an empty book is one empty, last chunk with checksum 0
        let chunks = OrderBook::new().snapshot("E", 8, -9, false, true, at);
        assert_eq!(chunks.len(), 1);
        let s = &chunks[0];
        assert!(s.last_chunk && s.stale && s.orders.is_empty());
        assert_eq!((s.seq, s.checksum, s.price_exponent), (8, 0, -9));
    }

    #[test]
    fn full_size_chunks_stay_under_a_mebibyte() {
        let book = book_of(CHUNK_ORDERS as u64 + 5, CHUNK_ORDERS as u64 + 7);
        let chunks = book.snapshot("T", 1, -4, false, false, pb::Timestamps::default());
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.iter().map(|s| s.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(chunks.iter().all(|s| s.orders.len() <= CHUNK_ORDERS));
        assert!(chunks[2].last_chunk && !chunks[1].last_chunk && chunks[1].checksum == 0);
        let got: Vec<_> = chunks
            .iter()
            .flat_map(|s| s.orders.iter().map(from_wire))
            .collect();
        assert_eq!(got, all(&book));
        assert_eq!(chunks[2].checksum, checksum_of(&got));
        // the largest chunk possible: every field at its longest encoding
        let worst = pb::OrdersSnapshot {
            symbol: "X".repeat(64),
            seq: u64::MAX,
            orders: vec![
                pb::Order {
                    reference: u64::MAX,
                    side: pb::Side::Ask as i32,
                    price: i64::MIN,
                    shares: u64::MAX,
                };
                CHUNK_ORDERS
            ],
            checksum: u32::MAX,
            timestamps: Some(pb::Timestamps {
                exchange_ns: u64::MAX,
                ingest_ns: u64::MAX,
                send_ns: u64::MAX,
            }),
            last_chunk: true,
            incomplete: true,
            stale: true,
            price_exponent: -9,
        };
        let update = pb::BookUpdate {
            update: Some(pb::book_update::Update::Orders(worst)),
        };
        assert!(update.encoded_len() < 1 << 20, "{}", update.encoded_len());
    }

    #[test]
    fn the_checksum_covers_the_first_32_orders_of_each_side() {
        let book = book_of(40, 35);
        let orders = all(&book);
        let first = |s: Side| -> Vec<(u64, i64, u64)> {
            orders
                .iter()
                .filter(|o| o.0 == s)
                .take(CHECKSUM_ORDERS)
                .map(|&(_, p, r, q)| (r, p, q))
                .collect()
        };
        assert_eq!(book.checksum(), orders_checksum(first(Buy), first(Sell)));
        assert_eq!(book.checksum(), checksum_of(&orders));
        let mut other = book.clone();
        // the 33rd bid changes nothing; the 32nd does
        let bids: Vec<_> = orders.iter().filter(|o| o.0 == Buy).collect();
        let (_, p33, r33, _) = *bids[32];
        applied(&mut other, update(OrderAction::Cancel, Buy, r33, p33, 1));
        assert_eq!(other.checksum(), book.checksum());
        let (_, p32, r32, _) = *bids[31];
        applied(&mut other, update(OrderAction::Cancel, Buy, r32, p32, 1));
        assert_ne!(other.checksum(), book.checksum());
    }

    #[test]
    fn events_carry_what_the_proto_says() {
        let mut book = OrderBook::new();
        let at = |u: OrderUpdate| OrderUpdate {
            exchange_ns: 5,
            ingest_ns: 6,
            ..u
        };
        let a = at(add(Buy, 1, 100, 10));
        let done = book.apply(&a).unwrap();
        let e = book.event("T", 3, &a, &done);
        assert_eq!(
            (
                e.symbol.as_str(),
                e.seq,
                e.action,
                e.reference,
                e.new_reference
            ),
            ("T", 3, pb::OrderAction::Add as i32, 1, 0)
        );
        assert_eq!(
            (e.side, e.price, e.shares, e.match_number, e.remaining),
            (pb::Side::Bid as i32, 100, 10, 0, 10)
        );
        assert_eq!(e.checksum, book.checksum());
        let t = e.timestamps.unwrap();
        assert_eq!((t.exchange_ns, t.ingest_ns), (5, 6));

        let x = OrderUpdate {
            other: 4242,
            ..at(update(OrderAction::Execute, Buy, 1, 100, 4))
        };
        let done = book.apply(&x).unwrap();
        let e = book.event("T", 4, &x, &done);
        assert_eq!(
            (
                e.action,
                e.match_number,
                e.new_reference,
                e.shares,
                e.remaining
            ),
            (pb::OrderAction::Execute as i32, 4242, 0, 4, 6)
        );

        let r = at(replace(Buy, 1, 2, 99, 7));
        let done = book.apply(&r).unwrap();
        let e = book.event("T", 5, &r, &done);
        assert_eq!(
            (
                e.action,
                e.reference,
                e.new_reference,
                e.match_number,
                e.price,
                e.shares,
                e.remaining
            ),
            (pb::OrderAction::Replace as i32, 1, 2, 0, 99, 7, 7)
        );
        assert_eq!(e.checksum, book.checksum());

        let c = at(update(OrderAction::Cancel, Buy, 2, 99, 2));
        let done = book.apply(&c).unwrap();
        let e = book.event("T", 6, &c, &done);
        assert_eq!(
            (e.action, e.match_number, e.remaining),
            (pb::OrderAction::Cancel as i32, 0, 5)
        );

        let d = at(update(OrderAction::Delete, Buy, 2, 99, 5));
        let done = book.apply(&d).unwrap();
        let e = book.event("T", 7, &d, &done);
        assert_eq!(
            (e.action, e.shares, e.remaining, e.checksum),
            (pb::OrderAction::Delete as i32, 5, 0, 0)
        );
        assert_eq!(e.side, pb::Side::Bid as i32);
    }

    /// The obvious model: live orders in arrival order as (side, price, reference, shares).
    /// Published order is a stable sort of it: bids first, best price first.
    fn published(model: &[(Side, i64, u64, u64)]) -> Vec<(Side, i64, u64, u64)> {
        let mut out = model.to_vec();
        out.sort_by_key(|&(side, price, _, _)| match side {
            Buy => (0, -i128::from(price)),
            Sell => (1, i128::from(price)),
        });
        out
    }

    proptest! {
        /// Whatever valid events, the book lists what the model does, in its order, with the
        /// model's checksum; the invalid events mixed in are refused and change nothing.
        #[test]
        fn the_book_matches_a_plain_list(
            ops in proptest::collection::vec(
                (0u8..7, any::<prop::sample::Index>(), -3i64..4, 1u32..20, any::<bool>()),
                1..300,
            ),
        ) {
            let mut book = OrderBook::new();
            let mut model: Vec<(Side, i64, u64, u64)> = Vec::new();
            let mut next_reference = 1u64;
            for (kind, pick, price, shares, flag) in ops {
                let side = if flag { Buy } else { Sell };
                let kind = if model.is_empty() && kind != 6 { 0 } else { kind };
                let i = if model.is_empty() { 0 } else { pick.index(model.len()) };
                let (u, expected) = match kind {
                    0 => {
                        next_reference += 1;
                        model.push((side, price, next_reference, u64::from(shares)));
                        (add(side, next_reference, price, shares), u64::from(shares))
                    }
                    1 | 2 => {
                        let (s, p, r, held) = model[i];
                        let take = (u64::from(shares)).min(held);
                        let action = if kind == 1 { OrderAction::Execute } else { OrderAction::Cancel };
                        let left = held - take;
                        if left == 0 { model.remove(i); } else { model[i].3 = left; }
                        (update(action, s, r, p, take as u32), left)
                    }
                    3 => {
                        let (s, p, r, held) = model.remove(i);
                        (update(OrderAction::Delete, s, r, p, held as u32), 0)
                    }
                    4 | 5 => {
                        let (s, _, r, _) = model.remove(i);
                        // 4 keeps the reference, 5 takes a new one
                        let new = if kind == 4 { r } else { next_reference += 1; next_reference };
                        model.push((s, price, new, u64::from(shares)));
                        (replace(s, r, new, price, shares), u64::from(shares))
                    }
                    _ => {
                        // an invalid event: an unknown reference, or too many shares
                        let before = book.clone();
                        let bad = match model.get(i) {
                            Some(&(s, p, r, held)) if flag => {
                                update(OrderAction::Cancel, s, r, p, held as u32 + 1)
                            }
                            _ => update(OrderAction::Execute, side, next_reference + 1, price, 1),
                        };
                        prop_assert!(book.apply(&bad).is_err(), "{:?}", bad);
                        prop_assert_eq!(&book, &before);
                        continue;
                    }
                };
                let done = book.apply(&u);
                prop_assert_eq!(done, Ok(Applied { remaining: expected }), "{:?}", u);
                let want = published(&model);
                prop_assert_eq!(all(&book), want.clone());
                prop_assert_eq!(book.len(), model.len());
                prop_assert_eq!(book.checksum(), checksum_of(&want));
                for &(s, p, r, q) in &model {
                    prop_assert_eq!(book.get(r), Some((s, p, q)));
                }
            }
        }
    }
}
