//! [`Op`]: what one feed message asks of the books, decoded once.
//!
//! A message is parsed once, where it arrives, into a small `Copy` value holding only the
//! fields the books read. The value is what waits in [`super::lookahead::Lookahead`] and in
//! the shard's held messages while its records load, what each prefetch step reads, and what
//! [`super::Books::apply_op`] applies: no message is parsed twice and no message bytes are
//! copied to be held.

use crate::feed::itch::{Message, Side};
use crate::runtime::event::{StatusChange, TradeKind};
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
    /// E: shares of an order executed at its own price.
    Execute {
        /// Order reference.
        reference: u64,
        /// Shares executed.
        shares: u32,
        /// The exchange's match number.
        match_number: u64,
        /// Exchange time.
        timestamp: u64,
    },
    /// C: shares of an order executed at another price (for the tape: the order keeps its own
    /// price in the book, which this reduces as [`Op::Execute`]).
    ExecuteAt {
        /// Order reference.
        reference: u64,
        /// Shares executed.
        shares: u32,
        /// The exchange's match number.
        match_number: u64,
        /// The execution price.
        price: i64,
        /// Counts toward volume.
        printable: bool,
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
    /// H, Y, J, K, I (one symbol) or V, W (market-wide): a trading status changed. The books
    /// keep the trading state (H); the rest is for the status stream.
    Status {
        /// Stock locate (0 for a market-wide change).
        locate: u16,
        /// What changed.
        change: StatusChange,
        /// Exchange time.
        timestamp: u64,
    },
    /// P, Q, B (ITCH) or T, F (DBN): a trade the books do not change for (the tape only).
    Trade {
        /// Stock locate.
        locate: u16,
        /// What kind.
        kind: TradeKind,
        /// The resting order's side, if the feed says.
        resting_side: Option<Side>,
        /// Counts toward volume.
        printable: bool,
        /// ITCH Q's cross type byte, else 0.
        cross_type: u8,
        /// Shares traded (0 for a broken trade).
        shares: u32,
        /// Price (0 for a broken trade).
        price: i64,
        /// The exchange's match number (0 if the feed has none).
        match_number: u64,
        /// Exchange time.
        timestamp: u64,
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
                match_number: m.match_number(),
                timestamp: m.header().timestamp,
            },
            Message::OrderExecutedWithPrice(m) => Op::ExecuteAt {
                reference: m.order_ref(),
                shares: m.executed_shares(),
                match_number: m.match_number(),
                price: i64::from(m.execution_price()),
                printable: m.is_printable(),
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
            Message::TradingAction(m) => Op::status(
                m.header(),
                StatusChange::Trading {
                    state: m.trading_state(),
                    reason: *m.reason(),
                },
            ),
            Message::RegShoRestriction(m) => Op::status(
                m.header(),
                StatusChange::RegSho {
                    action: m.reg_sho_action(),
                },
            ),
            Message::LuldAuctionCollar(m) => Op::status(
                m.header(),
                StatusChange::Luld {
                    reference: m.reference_price(),
                    upper: m.upper_collar_price(),
                    lower: m.lower_collar_price(),
                    extension: m.extension(),
                },
            ),
            Message::IpoQuotingPeriod(m) => Op::status(
                m.header(),
                StatusChange::Ipo {
                    release_time: m.release_time(),
                    qualifier: m.release_qualifier(),
                    price: m.ipo_price(),
                },
            ),
            Message::Noii(m) => Op::status(
                m.header(),
                StatusChange::Imbalance {
                    paired: m.paired_shares(),
                    imbalance: m.imbalance_shares(),
                    far: m.far_price(),
                    near: m.near_price(),
                    reference: m.current_reference_price(),
                    direction: m.imbalance_direction(),
                    cross_type: m.cross_type(),
                    variation: m.price_variation_indicator(),
                },
            ),
            Message::MwcbDeclineLevel(m) => Op::status(
                m.header(),
                StatusChange::MwcbLevels {
                    levels: [m.level1(), m.level2(), m.level3()],
                },
            ),
            Message::MwcbStatus(m) => Op::status(
                m.header(),
                StatusChange::MwcbBreach {
                    level: m.breached_level(),
                },
            ),
            Message::Trade(m) => Op::Trade {
                locate: m.header().stock_locate,
                kind: TradeKind::Trade,
                // the side byte has been `B` whatever the resting side since 2014: not said
                resting_side: None,
                printable: true,
                cross_type: 0,
                shares: m.shares(),
                price: i64::from(m.price()),
                match_number: m.match_number(),
                timestamp: m.header().timestamp,
            },
            Message::CrossTrade(m) => Op::Trade {
                locate: m.header().stock_locate,
                kind: TradeKind::Cross,
                resting_side: None,
                printable: true,
                cross_type: m.cross_type(),
                shares: u32::try_from(m.shares()).unwrap_or(u32::MAX),
                price: i64::from(m.cross_price()),
                match_number: m.match_number(),
                timestamp: m.header().timestamp,
            },
            Message::BrokenTrade(m) => Op::Trade {
                locate: m.header().stock_locate,
                kind: TradeKind::Broken,
                resting_side: None,
                printable: false,
                cross_type: 0,
                shares: 0,
                price: 0,
                match_number: m.match_number(),
                timestamp: m.header().timestamp,
            },
            Message::SystemEvent(m) => Op::System {
                code: m.event_code(),
            },
            _ => Op::Other,
        }
    }

    /// A status op of a message with `header`.
    #[inline]
    fn status(header: crate::feed::itch::Header, change: StatusChange) -> Self {
        Op::Status {
            locate: header.stock_locate,
            change,
            timestamp: header.timestamp,
        }
    }

    /// The reference of the resting order the op changes first (E, C, X, D, U, M).
    #[inline(always)]
    pub const fn resting(&self) -> Option<u64> {
        match *self {
            Op::Execute { reference, .. }
            | Op::ExecuteAt { reference, .. }
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
        // a held slot (with its ingest time and kind) stays one cache line
        assert!(size_of::<Op>() <= 48, "{}", size_of::<Op>());
    }
}
