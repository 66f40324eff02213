//! [`Op`]: what one feed message asks of the books, decoded once.
//!
//! A message is parsed once, where it arrives, into a small `Copy` value holding only the
//! fields the books read. The value is what waits in [`super::lookahead::Lookahead`] and in
//! the shard's held messages while its records load, what each prefetch step reads, and what
//! [`super::Books::apply_op`] applies: no message is parsed twice and no message bytes are
//! copied to be held.

use crate::feed::itch::{Message, Side};
use crate::symbol::Symbol;

/// An order to rest: an A, or the new half of a U (or a DBN A or M).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// The book's stock locate.
    pub locate: u16,
    /// Order reference.
    pub reference: u64,
    /// Buy or sell.
    pub side: Side,
    /// Shares.
    pub shares: u32,
    /// Limit price.
    pub price: i64,
    /// Exchange time, ns since midnight.
    pub timestamp: u64,
}

/// One message (ITCH) or record (DBN MBO), as the books see it. Prices are `i64` as the books
/// hold them, in the feed's own unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A: an order rests.
    Add(NewOrder),
    /// E or C: shares of an order executed (C's execution price is for the tape, not the
    /// book).
    Execute {
        /// Order reference.
        reference: u64,
        /// Shares executed.
        shares: u32,
        /// Exchange time.
        timestamp: u64,
    },
    /// X: shares of an order cancelled.
    Cancel {
        /// Order reference.
        reference: u64,
        /// Shares cancelled.
        shares: u32,
        /// Exchange time.
        timestamp: u64,
    },
    /// D: an order gone.
    Delete {
        /// Order reference.
        reference: u64,
        /// Exchange time.
        timestamp: u64,
    },
    /// U: an order replaced by a new one, which joins the back of its price.
    Replace {
        /// The order replaced.
        original: u64,
        /// The new order's reference.
        new: u64,
        /// The new order's shares.
        shares: u32,
        /// The new order's price.
        price: i64,
        /// Exchange time.
        timestamp: u64,
    },
    /// DBN M: the order's price and shares become these. It keeps its place in the queue only
    /// when its price stays and its shares do not grow; otherwise it joins the back of its
    /// (new) price. An order the book does not hold is added (as Databento's reference book
    /// does), and counted.
    Modify(NewOrder),
    /// DBN R (or the first record of a snapshot): every order of the book goes.
    Clear {
        /// Stock locate.
        locate: u16,
    },
    /// R: a stock directory entry names a locate (DBN: the file's symbology does).
    Directory {
        /// Stock locate.
        locate: u16,
        /// Symbol, as the feed sent it.
        symbol: Symbol,
        /// The book's prices are integers × 10^`price_exponent`.
        price_exponent: i8,
    },
    /// H: a trading state.
    Trading {
        /// Stock locate.
        locate: u16,
        /// `T`, `H`, `P` or `Q`.
        state: u8,
    },
    /// S: a system event (`O` starts the day's messages).
    System {
        /// The event code.
        code: u8,
    },
    /// Any other message: nothing for the books.
    Other,
}

impl Op {
    /// The op of `message`.
    #[inline(always)]
    pub fn of(message: &Message<'_>) -> Self {
        match message {
            Message::AddOrder(m) => Op::Add(NewOrder {
                locate: m.header().stock_locate,
                reference: m.order_ref(),
                side: m.side(),
                shares: m.shares(),
                price: i64::from(m.price()),
                timestamp: m.header().timestamp,
            }),
            Message::OrderExecuted(m) => Op::Execute {
                reference: m.order_ref(),
                shares: m.executed_shares(),
                timestamp: m.header().timestamp,
            },
            Message::OrderExecutedWithPrice(m) => Op::Execute {
                reference: m.order_ref(),
                shares: m.executed_shares(),
                timestamp: m.header().timestamp,
            },
            Message::OrderCancel(m) => Op::Cancel {
                reference: m.order_ref(),
                shares: m.cancelled_shares(),
                timestamp: m.header().timestamp,
            },
            Message::OrderDelete(m) => Op::Delete {
                reference: m.order_ref(),
                timestamp: m.header().timestamp,
            },
            Message::OrderReplace(m) => Op::Replace {
                original: m.original_order_ref(),
                new: m.new_order_ref(),
                shares: m.shares(),
                price: i64::from(m.price()),
                timestamp: m.header().timestamp,
            },
            Message::StockDirectory(m) => Op::Directory {
                locate: m.header().stock_locate,
                symbol: Symbol::from_itch(*m.stock()),
                price_exponent: crate::feed::itch::PRICE_EXPONENT,
            },
            Message::TradingAction(m) => Op::Trading {
                locate: m.header().stock_locate,
                state: m.trading_state(),
            },
            Message::SystemEvent(m) => Op::System {
                code: m.event_code(),
            },
            _ => Op::Other,
        }
    }

    /// The reference of the resting order the op changes first (E, C, X, D, U, M).
    #[inline(always)]
    pub const fn resting(&self) -> Option<u64> {
        match *self {
            Op::Execute { reference, .. }
            | Op::Cancel { reference, .. }
            | Op::Delete { reference, .. }
            | Op::Modify(NewOrder { reference, .. }) => Some(reference),
            Op::Replace { original, .. } => Some(original),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::itch::encode::{self, EncHeader};
    use crate::feed::itch::parse;

    #[test]
    fn ops_carry_the_fields_the_books_read() {
        let h = EncHeader {
            stock_locate: 7,
            tracking: 0,
            timestamp: 99,
        };
        let add = encode::add_order(
            h,
            5,
            Side::Sell,
            300,
            encode::stock("AAPL"),
            1_234_500,
            None,
        );
        assert_eq!(
            Op::of(&parse(&add).unwrap()),
            Op::Add(NewOrder {
                locate: 7,
                reference: 5,
                side: Side::Sell,
                shares: 300,
                price: 1_234_500,
                timestamp: 99,
            })
        );
        let delete = encode::order_delete(h, 5);
        let op = Op::of(&parse(&delete).unwrap());
        assert_eq!(
            op,
            Op::Delete {
                reference: 5,
                timestamp: 99
            }
        );
        assert_eq!(op.resting(), Some(5));
        assert!(size_of::<Op>() <= 40, "{}", size_of::<Op>());
    }
}
