//! One subject's updates held as the publisher's subscriber held them: a gateway's copy of a
//! symbol's levels, orders, status or trades, checked update by update against the contract.
//!
//! A [`Replica`] is `Live` (every update so far applied, seq contiguous, checksums matching)
//! or `Waiting` for a snapshot: at the start, after a Resync, after a gap or a checksum
//! mismatch. While it waits, what arrives is kept (bounded) so that a snapshot from the
//! key-value bucket at an older seq can be brought forward with it ([`Replica::restore`]).

use std::collections::{BTreeMap, VecDeque};

use dataplane::feed::itch::Side;
use dataplane::runtime::event::{OrderAction, OrderUpdate};

use crate::checksum::{CHECKSUM_LEVELS, checksum};
use crate::orders::OrderBook;
use crate::pb::{self, book_update::Update};

/// Updates kept while a replica waits for a snapshot; past it the oldest go (and a snapshot
/// from the bucket must be newer than what is kept).
pub const WAITING_UPDATES: usize = 65_536;

/// What one subject's updates build.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Price levels: bids and asks by price, `(shares, orders)`.
    Levels {
        /// Bids by price (best last).
        bids: BTreeMap<i64, (u64, u32)>,
        /// Asks by price (best first).
        asks: BTreeMap<i64, (u64, u32)>,
    },
    /// Every live order.
    Orders(Box<OrderBook>),
    /// The last status.
    Status(Option<Box<pb::TradingStatus>>),
    /// Trades carry no state.
    Trades,
}

/// What applying one update did, for the gateway to turn into events.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to pass on (a snapshot chunk before the last, a Resync, an update kept while
    /// waiting).
    Nothing,
    /// The replica is whole again (a snapshot's last chunk, or a restore): send it all.
    Whole,
    /// One live update, applied: pass it on.
    Applied(Update),
    /// The updates stopped adding up (why): the replica waits for a snapshot.
    Lost(String),
    /// The symbol is no longer published.
    Removed,
}

/// Where a replica stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a snapshot; `after_resync`: a Resync was seen, so the next snapshot chunk
    /// is a first chunk.
    Waiting {
        /// See above.
        after_resync: bool,
    },
    /// Snapshot chunks are arriving.
    InSnapshot,
    /// Whole and current.
    Live,
}

/// One subject's replica.
#[derive(Debug, Clone)]
pub struct Replica {
    /// The seq of the last update applied (or kept).
    pub seq: u64,
    /// Where it stands.
    pub phase: Phase,
    /// What it holds.
    pub content: Content,
    /// As the last snapshot said.
    pub incomplete: bool,
    /// As the last snapshot said.
    pub stale: bool,
    /// As the last snapshot, trade or status said.
    pub price_exponent: i8,
    /// The reason of the last Resync seen (what the book is sent again for).
    pub reason: Option<pb::ResyncReason>,
    /// Kept while waiting.
    kept: VecDeque<Update>,
}

impl Replica {
    /// An empty replica of `content`'s kind, waiting for its first snapshot.
    pub fn new(content: Content) -> Self {
        Self {
            seq: 0,
            phase: Phase::Waiting {
                after_resync: false,
            },
            content,
            incomplete: false,
            stale: false,
            price_exponent: 0,
            reason: None,
            kept: VecDeque::new(),
        }
    }

    /// True when whole and current.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// Applies the subject's next update.
    pub fn apply(&mut self, update: Update) -> Step {
        if let Update::Removed(_) = update {
            return Step::Removed;
        }
        if let Update::Resync(r) = &update {
            self.reason = Some(pb::ResyncReason::try_from(r.reason).unwrap_or_default());
            self.phase = Phase::Waiting { after_resync: true };
            self.kept.clear();
            return Step::Nothing;
        }
        let Some(seq) = seq_of(&update) else {
            return Step::Nothing;
        };
        let starts_over = if self.is_trades_or_status() {
            // each status is whole, and trades carry no state: any one starts over
            !self.is_live() || seq == 1
        } else {
            is_snapshot(&update)
                && (seq == 1 || self.phase == (Phase::Waiting { after_resync: true }))
        };
        if starts_over {
            // a new publisher starts at 1; otherwise a snapshot follows its Resync
            self.start_snapshot();
        } else if let Phase::Waiting { .. } = self.phase {
            self.seq = seq;
            if self.kept.len() == WAITING_UPDATES {
                self.kept.pop_front();
            }
            self.kept.push_back(update);
            return Step::Nothing;
        } else if seq != self.seq + 1 {
            let why = format!("seq {seq} after {}", self.seq);
            return self.lose(seq, why);
        }
        self.seq = seq;
        match self.take(update) {
            Ok(step) => step,
            Err(why) => self.lose(seq, why),
        }
    }

    /// Brings the replica forward from `snapshot` (one whole snapshot at its seq, from the
    /// bucket) and what was kept since. Returns [`Step::Whole`] if that made it live.
    pub fn restore(&mut self, snapshot: Update) -> Step {
        if self.is_live() || !is_snapshot(&snapshot) {
            return Step::Nothing;
        }
        let Some(at) = seq_of(&snapshot) else {
            return Step::Nothing;
        };
        let kept: Vec<Update> = std::mem::take(&mut self.kept)
            .into_iter()
            .filter(|u| seq_of(u).is_some_and(|s| s > at))
            .collect();
        // what was kept must go on from the snapshot's seq without a hole
        let joins = kept.first().is_none_or(|u| seq_of(u) == Some(at + 1));
        if !joins || (kept.is_empty() && self.seq > at) {
            self.kept = kept.into();
            return Step::Nothing;
        }
        let before = self.phase;
        self.start_snapshot();
        self.seq = at;
        if self.take(snapshot) != Ok(Step::Whole) {
            self.phase = before;
            return Step::Nothing;
        }
        for update in kept {
            if let Step::Lost(_) = self.apply(update) {
                return Step::Nothing;
            }
        }
        Step::Whole
    }

    fn is_trades_or_status(&self) -> bool {
        matches!(self.content, Content::Status(_) | Content::Trades)
    }

    fn start_snapshot(&mut self) {
        self.phase = Phase::InSnapshot;
        self.kept.clear();
        match &mut self.content {
            Content::Levels { bids, asks } => {
                bids.clear();
                asks.clear();
            }
            Content::Orders(book) => book.clear(),
            Content::Status(s) => *s = None,
            Content::Trades => {}
        }
    }

    fn lose(&mut self, seq: u64, why: String) -> Step {
        self.phase = Phase::Waiting {
            after_resync: false,
        };
        self.seq = seq;
        self.kept.clear();
        Step::Lost(why)
    }

    /// Applies an update in sequence.
    fn take(&mut self, update: Update) -> Result<Step, String> {
        let live = self.phase == Phase::Live;
        match (&mut self.content, update) {
            (Content::Levels { bids, asks }, Update::Snapshot(s)) => {
                if self.phase != Phase::InSnapshot {
                    return Err("a snapshot chunk without its first".into());
                }
                for l in &s.bids {
                    set(bids, l);
                }
                for l in &s.asks {
                    set(asks, l);
                }
                self.incomplete = s.incomplete;
                self.stale = s.stale;
                self.price_exponent = i8::try_from(s.price_exponent).unwrap_or_default();
                if !s.last_chunk {
                    return Ok(Step::Nothing);
                }
                check(levels_checksum(bids, asks), s.checksum)?;
                self.phase = Phase::Live;
                Ok(Step::Whole)
            }
            (Content::Levels { bids, asks }, Update::Delta(d)) if live => {
                let level = d.level.ok_or("a delta without a level")?;
                match pb::Side::try_from(d.side) {
                    Ok(pb::Side::Bid) => set(bids, &level),
                    Ok(pb::Side::Ask) => set(asks, &level),
                    _ => return Err("a delta without a side".into()),
                }
                check(levels_checksum(bids, asks), d.checksum)?;
                Ok(Step::Applied(Update::Delta(d)))
            }
            (Content::Orders(book), Update::Orders(s)) => {
                if self.phase != Phase::InSnapshot {
                    return Err("an orders chunk without its first".into());
                }
                for o in &s.orders {
                    let add = OrderUpdate {
                        locate: 0,
                        action: OrderAction::Add,
                        side: side(o.side)?,
                        shares: u32::try_from(o.shares).map_err(|_| "an order too large")?,
                        seq: 0,
                        reference: o.reference,
                        other: 0,
                        price: o.price,
                        exchange_ns: 0,
                        ingest_ns: 0,
                    };
                    book.apply(&add).map_err(|e| e.to_string())?;
                }
                self.incomplete = s.incomplete;
                self.stale = s.stale;
                self.price_exponent = i8::try_from(s.price_exponent).unwrap_or_default();
                if !s.last_chunk {
                    return Ok(Step::Nothing);
                }
                check(book.checksum(), s.checksum)?;
                self.phase = Phase::Live;
                Ok(Step::Whole)
            }
            (Content::Orders(book), Update::Order(e)) if live => {
                let u = order_update(&e)?;
                let applied = book.apply(&u).map_err(|e| e.to_string())?;
                if applied.remaining != e.remaining {
                    return Err(format!(
                        "order {} has {} shares left, the event says {}",
                        e.reference, applied.remaining, e.remaining
                    ));
                }
                check(book.checksum(), e.checksum)?;
                Ok(Step::Applied(Update::Order(e)))
            }
            (Content::Status(held), Update::Status(s)) => {
                self.price_exponent = i8::try_from(s.price_exponent).unwrap_or_default();
                *held = Some(s.clone());
                if self.phase == Phase::InSnapshot {
                    self.phase = Phase::Live;
                    return Ok(Step::Whole);
                }
                Ok(Step::Applied(Update::Status(s)))
            }
            (Content::Trades, Update::Trade(t)) => {
                self.price_exponent = i8::try_from(t.price_exponent).unwrap_or_default();
                // no state to send again: the trade itself goes on, whole or not
                self.phase = Phase::Live;
                Ok(Step::Applied(Update::Trade(t)))
            }
            _ => Err("an update of another stream, or a delta where a snapshot was due".into()),
        }
    }
}

/// The contract's checksum of a level book.
pub fn levels_checksum(bids: &BTreeMap<i64, (u64, u32)>, asks: &BTreeMap<i64, (u64, u32)>) -> u32 {
    checksum(
        bids.iter().rev().map(|(p, (s, _))| (*p, *s)),
        asks.iter().map(|(p, (s, _))| (*p, *s)),
        CHECKSUM_LEVELS,
    )
}

fn check(computed: u32, sent: u32) -> Result<(), String> {
    if computed == sent {
        Ok(())
    } else {
        Err(format!(
            "checksum mismatch: sent {sent:#010x}, the replica gives {computed:#010x}"
        ))
    }
}

fn set(book: &mut BTreeMap<i64, (u64, u32)>, level: &pb::Level) {
    if level.shares == 0 {
        book.remove(&level.price);
    } else {
        book.insert(level.price, (level.shares, level.orders));
    }
}

fn side(side: i32) -> Result<Side, String> {
    match pb::Side::try_from(side) {
        Ok(pb::Side::Bid) => Ok(Side::Buy),
        Ok(pb::Side::Ask) => Ok(Side::Sell),
        _ => Err(format!("side {side} is neither bid nor ask")),
    }
}

/// An order event as the data plane sends it.
pub fn order_update(e: &pb::OrderEvent) -> Result<OrderUpdate, String> {
    let action = match pb::OrderAction::try_from(e.action) {
        Ok(pb::OrderAction::Add) => OrderAction::Add,
        Ok(pb::OrderAction::Execute) => OrderAction::Execute,
        Ok(pb::OrderAction::Cancel) => OrderAction::Cancel,
        Ok(pb::OrderAction::Delete) => OrderAction::Delete,
        Ok(pb::OrderAction::Replace) => OrderAction::Replace,
        _ => return Err(format!("order action {} is unknown", e.action)),
    };
    let t = e.timestamps.unwrap_or_default();
    Ok(OrderUpdate {
        locate: 0,
        action,
        side: side(e.side)?,
        shares: u32::try_from(e.shares).map_err(|_| "an order event too large")?,
        seq: 0,
        reference: e.reference,
        other: match action {
            OrderAction::Replace => e.new_reference,
            OrderAction::Execute => e.match_number,
            _ => 0,
        },
        price: e.price,
        exchange_ns: t.exchange_ns,
        ingest_ns: t.ingest_ns,
    })
}

/// The seq an update carries.
pub fn seq_of(update: &Update) -> Option<u64> {
    match update {
        Update::Snapshot(s) => Some(s.seq),
        Update::Delta(d) => Some(d.seq),
        Update::Removed(r) => Some(r.seq),
        Update::Orders(o) => Some(o.seq),
        Update::Order(o) => Some(o.seq),
        Update::Trade(t) => Some(t.seq),
        Update::Status(s) => Some(s.seq),
        Update::Resync(_) | Update::Heartbeat(_) => None,
    }
}

/// True for what starts a replica over: a snapshot chunk, an orders chunk, a status (the
/// status stream's every message is whole).
fn is_snapshot(update: &Update) -> bool {
    matches!(
        update,
        Update::Snapshot(_) | Update::Orders(_) | Update::Status(_)
    )
}
