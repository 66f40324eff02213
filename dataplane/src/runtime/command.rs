//! What the control plane asks of a shard, through its command ring, and the shard's answer.
//!
//! Every command carries an id chosen by the sender; the shard answers each with exactly one
//! [`Ack`] of the same id on its ack ring, once the command has taken effect (events it causes
//! are already in the event ring by then). Commands go to every shard: the one that owns the
//! symbol acts, the others answer [`Applied::NotOwned`].

use super::idle::IdleStrategy;
use crate::feed::itch::Side;
use crate::symbol::Symbol;

/// A request to a shard.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Command {
    /// Start publishing the symbol: a [`super::event::Event::SymbolAdded`] and a resync with
    /// its current book follow.
    AddSymbol {
        /// Sender's id, echoed in the ack.
        id: u64,
        /// The symbol.
        symbol: Symbol,
    },
    /// Stop publishing the symbol. Its book stays maintained (every symbol a shard owns is,
    /// published or not), so adding it again later serves it complete at once.
    RemoveSymbol {
        /// Sender's id.
        id: u64,
        /// The symbol.
        symbol: Symbol,
    },
    /// Send the symbol's book again in full (a resync, reason `Requested`).
    Resync {
        /// Sender's id.
        id: u64,
        /// The symbol.
        symbol: Symbol,
    },
    /// Turn the symbol's order (market by order) and trade streams on or off. Turning orders
    /// on, or `resend` while they are on, sends a resync (reason `Orders`) that carries them.
    SetStreams {
        /// Sender's id.
        id: u64,
        /// The symbol.
        symbol: Symbol,
        /// Publish its order changes.
        orders: bool,
        /// Publish its trades.
        trades: bool,
        /// Send its orders again even if their stream was on already.
        resend: bool,
        /// The sender's number for this request, echoed by the resyncs that carry the orders.
        epoch: u32,
    },
    /// Where the order `reference` of the symbol stands in its queue, now.
    Position {
        /// Sender's id.
        id: u64,
        /// The symbol.
        symbol: Symbol,
        /// The order's reference.
        reference: u64,
    },
    /// Change how the shard idles when there is no work.
    SetIdle {
        /// Sender's id.
        id: u64,
        /// The new strategy.
        strategy: IdleStrategy,
    },
}

impl Command {
    /// The sender's id.
    pub fn id(&self) -> u64 {
        match *self {
            Command::AddSymbol { id, .. }
            | Command::RemoveSymbol { id, .. }
            | Command::Resync { id, .. }
            | Command::SetStreams { id, .. }
            | Command::Position { id, .. }
            | Command::SetIdle { id, .. } => id,
        }
    }
}

/// What a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The symbol is now published; `levels` levels went out in its first resync.
    Added {
        /// Its stock locate.
        locate: u16,
    },
    /// The symbol is no longer published; its book, of `orders` orders, is still kept.
    Removed {
        /// Its stock locate.
        locate: u16,
        /// Orders its book holds.
        orders: u32,
    },
    /// A resync of the symbol was queued.
    Resynced {
        /// Its stock locate.
        locate: u16,
    },
    /// The symbol's streams are as asked.
    Streams {
        /// Its stock locate.
        locate: u16,
    },
    /// Where the order asked about stands; `None` if no such order rests in the symbol's
    /// book.
    Position {
        /// Its stock locate.
        locate: u16,
        /// The order's place, if it rests.
        found: Option<OrderPosition>,
    },
    /// A configuration change took effect.
    Configured,
    /// The symbol exists but another shard owns it.
    NotOwned,
}

/// A resting order and its place in its level's queue ([`Command::Position`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderPosition {
    /// Its side.
    pub side: Side,
    /// Its price.
    pub price: i64,
    /// Its shares left.
    pub shares: u32,
    /// Orders ahead of it at its price.
    pub orders_ahead: u32,
    /// Their shares.
    pub shares_ahead: u64,
    /// Orders at its price, itself included.
    pub level_orders: u32,
    /// Shares at its price, its own included.
    pub level_shares: u64,
}

/// Why a command was refused. The messages say what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No stock directory message named the symbol today.
    #[error("unknown symbol {}: the feed has not listed it (check the spelling, or wait for its stock directory message)", .0)]
    UnknownSymbol(Symbol),
    /// AddSymbol for a symbol already published.
    #[error("symbol {} is already published", .0)]
    AlreadyActive(Symbol),
    /// RemoveSymbol or Resync for a symbol not published.
    #[error("symbol {} is not published: add it first", .0)]
    NotActive(Symbol),
}

/// A shard's answer to one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The command's id.
    pub id: u64,
    /// The answering shard.
    pub shard: u16,
    /// What happened.
    pub outcome: Result<Applied, CommandError>,
}
