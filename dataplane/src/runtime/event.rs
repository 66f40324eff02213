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
    /// The shard stopped publishing this symbol and freed its book.
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
}

impl Event {
    /// The stock locate and the symbol's sequence number, if the event is about one symbol.
    pub fn symbol_seq(&self) -> Option<(u16, u64)> {
        match *self {
            Event::Level(l) => Some((l.locate, l.seq)),
            Event::Resync { locate, seq, .. }
            | Event::SymbolAdded { locate, seq, .. }
            | Event::SymbolRemoved { locate, seq, .. } => Some((locate, seq)),
            Event::Stale { .. } | Event::Fresh => None,
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
        assert!(size_of::<Event>() <= 64, "{}", size_of::<Event>());
    }
}
