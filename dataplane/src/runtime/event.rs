//! What a shard tells the control plane, through its event ring.
//!
//! Every event about a symbol carries that symbol's sequence number, which grows by exactly
//! one per event of the symbol (level updates, resyncs, added, removed), so a consumer sees
//! at once if it missed one. The contract on the consumer side:
//!
//! - [`Event::Level`]: set the level `(side, price)` to `shares`/`orders`; 0 shares removes it.
//! - [`Event::Resync`]: clear the symbol's book; the next `levels` events of the symbol are
//!   [`Event::Level`]s that rebuild it completely (all levels, both sides). They are pushed
//!   together: a resync is only started when the ring has room for all of it.
//! - [`Event::SymbolAdded`] is followed by a resync (reason [`ResyncReason::Added`]) with the
//!   book as it is now; [`Event::SymbolRemoved`] ends the symbol's events.
//! - [`Event::Stale`] / [`Event::Fresh`] are shard-wide: the feed lost messages and every book
//!   of the shard may be wrong, until the next start of day.
//! - [`Event::Order`]: one order changed (market by order). Sent only for symbols whose order
//!   stream is on ([`crate::runtime::command::Command::SetStreams`]); while it is on, every
//!   resync of the symbol also carries its orders: after its `levels` level events come
//!   `orders` [`Event::Order`]s of [`OrderAction::Add`] that rebuild its order book (bids best
//!   price first, then asks best first, each price oldest first).
//! - Every resync then carries the symbol's status: `statuses` [`Event::Status`] events, the
//!   last of each kind the feed sent today (the consumer's status is exactly these).
//! - [`Event::Trade`]: an execution, cross or broken trade; only while the symbol's trade
//!   stream is on. [`Event::Status`]: a change of the symbol's trading status, always sent.
//!   Neither waits for an owed resync (only a full ring loses them, and then a resync says
//!   so). [`Event::Market`]: a market-wide status change (circuit breakers), shard-wide.

pub use crate::book::change::OrderAction;
use crate::feed::itch::Side;
use crate::symbol::Symbol;

/// One price level's new state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelUpdate {
    /// Stock locate of the symbol.
    pub locate: u16,
    /// Bid or ask.
    pub side: Side,
    /// Price in the feed's integer units: `price × 10^price_exponent` (the exponent comes with
    /// [`Event::SymbolAdded`]).
    pub price: i64,
    /// Aggregate shares at the level; 0 removes the level.
    pub shares: u64,
    /// Orders at the level.
    pub orders: u32,
    /// The symbol's sequence number.
    pub seq: u64,
    /// Exchange timestamp of the message that changed the level (ns since midnight); 0 in a
    /// resync.
    pub exchange_ns: u64,
    /// When the shard took the message from the feed ([`crate::clock::now_ns`]).
    pub ingest_ns: u64,
}

/// One order's change (the market-by-order stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderUpdate {
    /// Stock locate of the symbol.
    pub locate: u16,
    /// What happened.
    pub action: OrderAction,
    /// The order's side.
    pub side: Side,
    /// Add, Replace: the (new) order's shares. Execute, Cancel: the shares taken off, never
    /// more than it had (it is gone when none are left). Delete: the shares it had.
    pub shares: u32,
    /// The symbol's sequence number.
    pub seq: u64,
    /// The order (Replace: the one replaced).
    pub reference: u64,
    /// Replace: the new order's reference. Execute: the match number (0 if the feed has
    /// none). Otherwise 0.
    pub other: u64,
    /// Add, Replace: the (new) order's price; otherwise the order's price.
    pub price: i64,
    /// Exchange time of the message (0 in a resync).
    pub exchange_ns: u64,
    /// When the shard took the message from the feed.
    pub ingest_ns: u64,
}

/// What kind of trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TradeKind {
    /// A displayed resting order executed (ITCH E, C; DBN F).
    Execution,
    /// A trade with no displayed resting order (ITCH P; DBN T).
    Trade,
    /// A cross (ITCH Q).
    Cross,
    /// An earlier execution was broken (ITCH B).
    Broken,
}

/// One trade (the trade stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeUpdate {
    /// Stock locate of the symbol.
    pub locate: u16,
    /// What kind.
    pub kind: TradeKind,
    /// The resting order's side, if the feed says.
    pub resting_side: Option<Side>,
    /// Counts toward volume (see the proto's `Trade.printable`).
    pub printable: bool,
    /// ITCH Q's cross type byte, else 0.
    pub cross_type: u8,
    /// Shares traded (0 for a broken trade; a cross of more than `u32::MAX` saturates).
    pub shares: u32,
    /// The symbol's sequence number.
    pub seq: u64,
    /// Price in the feed's unit (0 for a broken trade).
    pub price: i64,
    /// The exchange's match number (0 if the feed has none).
    pub match_number: u64,
    /// Exchange time.
    pub exchange_ns: u64,
    /// When the shard took the message from the feed.
    pub ingest_ns: u64,
}

/// One change of a symbol's trading status (ITCH prices here are 4-decimal ticks, as sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChange {
    /// H: the trading state (`T`, `H`, `P`, `Q`) and its reason code.
    Trading {
        /// The state byte.
        state: u8,
        /// The reason, four bytes space-padded.
        reason: [u8; 4],
    },
    /// Y: the Reg SHO action (`0` none, `1` in effect, `2` remains in effect).
    RegSho {
        /// The action byte.
        action: u8,
    },
    /// J: LULD auction collars.
    Luld {
        /// Reference price.
        reference: u32,
        /// Upper collar.
        upper: u32,
        /// Lower collar.
        lower: u32,
        /// Extensions so far.
        extension: u32,
    },
    /// K: IPO quotation release.
    Ipo {
        /// Seconds since midnight.
        release_time: u32,
        /// `A` anticipated, `C` cancelled.
        qualifier: u8,
        /// The IPO price.
        price: u32,
    },
    /// I: net order imbalance.
    Imbalance {
        /// Paired shares.
        paired: u64,
        /// Imbalance shares.
        imbalance: u64,
        /// Far price.
        far: u32,
        /// Near price.
        near: u32,
        /// Current reference price.
        reference: u32,
        /// `B`, `S`, `N`, `O`.
        direction: u8,
        /// `O`, `C`, `H`, `A`.
        cross_type: u8,
        /// The price variation indicator byte.
        variation: u8,
    },
    /// V: market-wide circuit breaker levels (8 implied decimals).
    MwcbLevels {
        /// Levels 1 to 3.
        levels: [u64; 3],
    },
    /// W: a market-wide circuit breaker level was breached.
    MwcbBreach {
        /// `1`, `2` or `3` (the byte as sent).
        level: u8,
    },
}

/// How many kinds of per-symbol status a symbol has (see [`StatusChange::kind`]).
pub const STATUS_KINDS: usize = 5;

impl StatusChange {
    /// Its kind, `0..STATUS_KINDS`, for a per-symbol change; `None` for a market-wide one.
    pub const fn kind(&self) -> Option<usize> {
        match self {
            StatusChange::Trading { .. } => Some(0),
            StatusChange::RegSho { .. } => Some(1),
            StatusChange::Luld { .. } => Some(2),
            StatusChange::Ipo { .. } => Some(3),
            StatusChange::Imbalance { .. } => Some(4),
            StatusChange::MwcbLevels { .. } | StatusChange::MwcbBreach { .. } => None,
        }
    }

    /// True for the market-wide changes (sent as [`Event::Market`]).
    pub const fn market_wide(&self) -> bool {
        matches!(
            self,
            StatusChange::MwcbLevels { .. } | StatusChange::MwcbBreach { .. }
        )
    }
}

/// A symbol's status changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusUpdate {
    /// Stock locate of the symbol.
    pub locate: u16,
    /// The symbol's sequence number.
    pub seq: u64,
    /// Exchange time.
    pub exchange_ns: u64,
    /// What changed.
    pub change: StatusChange,
}

/// Why a symbol's book is being sent again in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResyncReason {
    /// The event ring was full, so some level updates were never sent.
    RingFull,
    /// The symbol was just added: this is its first book.
    Added,
    /// The control plane asked for it.
    Requested,
    /// The feed started a new day (a looping file started over, or a new MoldUDP64 session):
    /// the books were cleared.
    NewDay,
    /// The feed cleared the symbol's book (a DBN clear, or the start of a DBN snapshot): this
    /// is its book as the feed rebuilt it.
    Cleared,
    /// Its order stream was turned on: nothing was lost (no update was held back for it), the
    /// book comes with its orders.
    Orders,
}

/// An event from a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A level changed.
    Level(LevelUpdate),
    /// Clear the symbol's book; its next `levels` events rebuild it.
    Resync {
        /// Stock locate.
        locate: u16,
        /// The symbol's sequence number.
        seq: u64,
        /// Why.
        reason: ResyncReason,
        /// How many [`Event::Level`] events of this symbol follow and make up the book.
        levels: u32,
        /// How many [`Event::Order`] events follow the levels and make up its order book;
        /// `None` when its order stream is off.
        orders: Option<u32>,
        /// The order stream is on but the book has more orders than half the event ring
        /// holds: none are sent (`orders` is `Some(0)`) and its order book cannot be served
        /// until a later resync.
        orders_omitted: bool,
        /// The epoch of the [`crate::runtime::command::Command::SetStreams`] that turned the
        /// order stream on (0 when off): a consumer that turned it off and on again knows
        /// which resync answers its latest request.
        epoch: u32,
        /// How many [`Event::Status`] events follow the orders: the symbol's status.
        statuses: u8,
        /// True when the book is known to miss orders (a capacity limit, or the symbol was
        /// not tracked for part of the day): serve it as such.
        incomplete: bool,
        /// When the resync was taken.
        ingest_ns: u64,
    },
    /// The shard now publishes this symbol.
    SymbolAdded {
        /// Stock locate.
        locate: u16,
        /// Symbol.
        symbol: Symbol,
        /// The symbol's sequence number.
        seq: u64,
        /// Its prices are integers × 10^`price_exponent` (-4 for ITCH, -9 for DBN).
        price_exponent: i8,
    },
    /// The shard stopped publishing this symbol (its book is still kept, for a later add).
    SymbolRemoved {
        /// Stock locate.
        locate: u16,
        /// Symbol.
        symbol: Symbol,
        /// The symbol's sequence number.
        seq: u64,
    },
    /// The feed lost messages: every book of this shard may be wrong until [`Event::Fresh`].
    Stale {
        /// First lost sequence number (0 if unknown).
        first: u64,
        /// Messages lost (0 if unknown).
        count: u64,
    },
    /// A new day started on a clean slate: the shard's books are trustworthy again.
    Fresh,
    /// An order changed (the symbol's order stream is on).
    Order(OrderUpdate),
    /// A trade (the symbol's trade stream is on).
    Trade(TradeUpdate),
    /// The symbol's trading status changed.
    Status(StatusUpdate),
    /// A market-wide status change ([`StatusChange::market_wide`]), for every symbol.
    Market {
        /// What changed.
        change: StatusChange,
        /// Exchange time.
        exchange_ns: u64,
    },
}

impl Event {
    /// The stock locate and the symbol's sequence number, if the event is about one symbol.
    pub fn symbol_seq(&self) -> Option<(u16, u64)> {
        match *self {
            Event::Level(l) => Some((l.locate, l.seq)),
            Event::Order(o) => Some((o.locate, o.seq)),
            Event::Trade(t) => Some((t.locate, t.seq)),
            Event::Status(s) => Some((s.locate, s.seq)),
            Event::Resync { locate, seq, .. }
            | Event::SymbolAdded { locate, seq, .. }
            | Event::SymbolRemoved { locate, seq, .. } => Some((locate, seq)),
            Event::Stale { .. } | Event::Fresh | Event::Market { .. } => None,
        }
    }

    /// The stock locate the event is about, if it is about one symbol.
    pub fn locate(&self) -> Option<u16> {
        self.symbol_seq().map(|(locate, _)| locate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_small_enough_to_copy() {
        // one cache line a ring slot
        assert!(size_of::<Event>() <= 64, "{}", size_of::<Event>());
        assert!(
            size_of::<OrderUpdate>() <= 56,
            "{}",
            size_of::<OrderUpdate>()
        );
        assert!(
            size_of::<TradeUpdate>() <= 56,
            "{}",
            size_of::<TradeUpdate>()
        );
    }
}
