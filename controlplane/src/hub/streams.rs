//! The order, trade and status streams: what the hub does with the data plane's order, trade
//! and status events, under the same contract as the level stream (per-subscription `seq`,
//! a Resync on any discontinuity, slow consumers lagged then closed by the same policy).
//!
//! - **Orders**: a symbol's [`OrdersMirror`] exists while some client streams its orders; the
//!   data plane then publishes its order events and its resyncs carry its orders. A
//!   subscriber's first snapshot is sent once the mirror is live; after a discontinuity it gets
//!   a Resync and a fresh snapshot.
//! - **Trades**: no state; after a discontinuity, a Resync says trades may have been lost and
//!   the next trade continues the seq.
//! - **Status**: the state is kept for every symbol; the first update and every update after a
//!   Resync is the whole state (`STATUS_CHANGE_SNAPSHOT`), then the whole state again on each
//!   change.

use std::sync::atomic::Ordering;
use std::time::Instant;

use dataplane::clock::now_ns;
use dataplane::runtime::event::{
    Event, OrderUpdate, ResyncReason as UpstreamReason, StatusUpdate, TradeUpdate,
};
use tonic::Status;

use super::stats::snapshot_slot;
use super::subscriber::Clock;
use super::{Hub, State, Stream, is_stale};
use crate::deltas::{Held, update};
use crate::mirror::Mirror;
use crate::pb::{self, ResyncReason, book_update::Update};
use crate::queue::{Pushed, Queue};
use crate::status::{Market, change_kind};

/// Subscriber ids of one symbol, per stream other than levels.
#[derive(Debug, Default)]
pub(super) struct StreamWatchers {
    pub(super) orders: Vec<u64>,
    pub(super) trades: Vec<u64>,
    pub(super) status: Vec<u64>,
}

impl StreamWatchers {
    pub(super) fn of(&mut self, stream: Stream) -> Option<&mut Vec<u64>> {
        match stream {
            Stream::Levels => None,
            Stream::Orders => Some(&mut self.orders),
            Stream::Trades => Some(&mut self.trades),
            Stream::Status => Some(&mut self.status),
        }
    }

    pub(super) fn all(&self) -> impl Iterator<Item = &u64> {
        self.orders.iter().chain(&self.trades).chain(&self.status)
    }
}

/// The first updates a subscriber of `stream` gets for `mirror`, its `held.seq` advanced:
/// the order book (if live; otherwise nothing yet: it comes when the book arrives) or the
/// status; nothing for trades.
pub(super) fn first_updates(
    stream: Stream,
    mirror: &Mirror,
    held: &mut Held,
    stale: bool,
    market: &Market,
) -> Vec<pb::BookUpdate> {
    match stream {
        Stream::Levels | Stream::Trades => Vec::new(),
        Stream::Orders => match &mirror.orders {
            Some(orders) if orders.live => {
                let chunks = orders.book.snapshot(
                    &mirror.symbol,
                    held.seq + 1,
                    mirror.price_exponent,
                    mirror.incomplete,
                    stale,
                    timestamps(mirror),
                );
                held.seq += chunks.len() as u64;
                chunks
                    .into_iter()
                    .map(|c| update(Update::Orders(c)))
                    .collect()
            }
            _ => Vec::new(),
        },
        Stream::Status => {
            held.seq += 1;
            let status = mirror.status.message(
                &mirror.symbol,
                held.seq,
                pb::StatusChange::Snapshot,
                market,
                mirror.price_exponent,
                timestamps(mirror),
            );
            vec![update(Update::Status(Box::new(status)))]
        }
    }
}

fn timestamps(mirror: &Mirror) -> pb::Timestamps {
    pb::Timestamps {
        exchange_ns: mirror.last_exchange_ns,
        ingest_ns: mirror.last_ingest_ns,
        send_ns: now_ns(),
    }
}

impl Hub {
    /// An order, trade, status or market event.
    pub(super) fn apply_stream_event(&self, state: &mut State, event: Event) {
        match event {
            Event::Order(o) => self.on_order(state, &o),
            Event::Trade(t) => self.on_trade(state, &t),
            Event::Status(s) => self.on_status(state, &s),
            Event::Market { change, .. } => {
                state.market.apply(&change);
                let locates: Vec<u16> = state
                    .streams
                    .iter()
                    .filter(|(_, w)| !w.status.is_empty())
                    .map(|(l, _)| *l)
                    .collect();
                for locate in locates {
                    self.send_status(state, locate, change_kind(&change));
                }
            }
            _ => {}
        }
    }

    fn on_order(&self, state: &mut State, order: &OrderUpdate) {
        let Some(mirror) = state.mirrors.get_mut(&order.locate) else {
            return;
        };
        self.check_seq(mirror, order.seq);
        mirror.last_exchange_ns = order.exchange_ns;
        mirror.last_ingest_ns = order.ingest_ns;
        if let Some((left, reason)) = mirror.rebuild {
            // part of a resync: the book is being sent whole
            if let Some(orders) = &mut mirror.orders
                && let Err(e) = orders.book.apply(order)
            {
                self.diverged(state, order.locate, &e.to_string());
                return;
            }
            if left > 1 {
                mirror.rebuild = Some((left - 1, reason));
            } else {
                mirror.rebuild = None;
                self.rebuilt(state, order.locate, reason);
            }
            return;
        }
        let Some(orders) = mirror.orders.as_mut().filter(|o| o.live) else {
            return;
        };
        let applied = match orders.book.apply(order) {
            Ok(applied) => applied,
            Err(e) => {
                self.diverged(state, order.locate, &e.to_string());
                return;
            }
        };
        let event = orders.book.event(&mirror.symbol, 0, order, &applied);
        let ids = state
            .streams
            .get(&order.locate)
            .map(|w| w.orders.clone())
            .unwrap_or_default();
        self.push_each(state, order.locate, &ids, |seq| {
            Update::Order(pb::OrderEvent {
                seq,
                ..event.clone()
            })
        });
    }

    fn on_trade(&self, state: &mut State, trade: &TradeUpdate) {
        let Some(mirror) = state.mirrors.get_mut(&trade.locate) else {
            return;
        };
        self.check_seq(mirror, trade.seq);
        let ids = match state.streams.get(&trade.locate) {
            Some(w) if !w.trades.is_empty() => w.trades.clone(),
            _ => return,
        };
        let (symbol, exponent) = (mirror.symbol.clone(), mirror.price_exponent);
        let send_ns = now_ns();
        self.push_each(state, trade.locate, &ids, |seq| {
            Update::Trade(crate::status::trade(&symbol, seq, trade, exponent, send_ns))
        });
    }

    fn on_status(&self, state: &mut State, status: &StatusUpdate) {
        let Some(mirror) = state.mirrors.get_mut(&status.locate) else {
            return;
        };
        self.check_seq(mirror, status.seq);
        mirror.status.apply(&status.change);
        if status.exchange_ns != 0 {
            mirror.last_exchange_ns = status.exchange_ns;
        }
        self.send_status(state, status.locate, change_kind(&status.change));
    }

    /// Sends every status watcher of `locate` its whole status, for a change of `kind`.
    fn send_status(&self, state: &mut State, locate: u16, kind: pb::StatusChange) {
        let ids = match state.streams.get(&locate) {
            Some(w) if !w.status.is_empty() => w.status.clone(),
            _ => return,
        };
        let Some(mirror) = state.mirrors.get(&locate) else {
            return;
        };
        let message = mirror.status.message(
            &mirror.symbol,
            0,
            kind,
            &state.market,
            mirror.price_exponent,
            timestamps(mirror),
        );
        self.push_each(state, locate, &ids, |seq| {
            Update::Status(Box::new(pb::TradingStatus {
                seq,
                ..message.clone()
            }))
        });
    }

    /// Queues `make(seq)` for each subscriber in `ids` holding `locate` (not closed, not
    /// lagging, and whose client is reading), numbered with its next seq; subscribers whose
    /// queue overflows lag.
    fn push_each(&self, state: &mut State, locate: u16, ids: &[u64], make: impl Fn(u64) -> Update) {
        let mut slow = Vec::new();
        let mut now = None;
        let mut clock = Clock::default();
        for id in ids {
            let Some(sub) = state.subscribers.get_mut(id) else {
                continue;
            };
            if sub.closed {
                continue;
            }
            if sub.lagging.is_some() {
                let now = *now.get_or_insert_with(Instant::now);
                sub.stalled_lagging(&self.stats, now, self.policy.stall);
                continue;
            }
            if clock.blocked_too_long(&sub.queue, self.policy.blocked) {
                slow.push(*id);
                continue;
            }
            let Some(held) = sub.held.get_mut(&locate) else {
                continue;
            };
            if sub.stream == Stream::Orders && held.seq == 0 {
                // its first snapshot has not been sent: nothing before it
                continue;
            }
            match sub.queue.push(update(make(held.seq + 1))) {
                Pushed::Queued => held.seq += 1,
                Pushed::Full => slow.push(*id),
                Pushed::Closed => {}
            }
        }
        let now = now.unwrap_or_else(Instant::now);
        for id in slow {
            self.too_slow(state, id, now);
        }
    }

    /// A resync of `locate` from the data plane is complete (`reason`): the order book is live
    /// again and the order, trade and status watchers hear of what they may have lost.
    pub(super) fn streams_rebuilt(&self, state: &mut State, locate: u16, reason: UpstreamReason) {
        let lost = match reason {
            // nothing was lost: the book was resent because it was (re)published or its
            // orders were asked for, or rebuilt by the feed itself (its changes are in it)
            UpstreamReason::Added | UpstreamReason::Orders | UpstreamReason::Requested => None,
            UpstreamReason::Cleared => Some((
                ResyncReason::Cleared,
                "the feed cleared the book (a clear or a snapshot)",
            )),
            UpstreamReason::NewDay => Some((ResyncReason::NewDay, "a new trading day started")),
            UpstreamReason::RingFull => Some((
                ResyncReason::RingOverflow,
                "the data plane's event ring overflowed; updates were lost, the state is exact \
                 again",
            )),
        };
        let (Some(mirror), Some(watchers)) =
            (state.mirrors.get(&locate), state.streams.get(&locate))
        else {
            return;
        };
        let stale = is_stale(&state.stale, mirror.shard);
        let orders_live = mirror.orders.as_ref().is_some_and(|o| o.live);
        for (stream, ids) in [
            (Stream::Orders, &watchers.orders),
            (Stream::Trades, &watchers.trades),
            (Stream::Status, &watchers.status),
        ] {
            for id in ids {
                let Some(sub) = state.subscribers.get_mut(id) else {
                    continue;
                };
                if sub.closed || sub.lagging.is_some() {
                    continue;
                }
                let Some(held) = sub.held.get_mut(&locate) else {
                    continue;
                };
                let resync = match stream {
                    // the order book: sent to whoever waits for its first, and again after
                    // a loss
                    Stream::Orders if !orders_live => continue,
                    Stream::Orders if held.seq == 0 => None,
                    Stream::Orders => match lost {
                        Some(lost) => Some(lost),
                        None => continue,
                    },
                    // trades and statuses are lost only to an overflow: a new day or a
                    // clear changes neither
                    Stream::Trades | Stream::Status => match lost {
                        Some(lost) if lost.0 == ResyncReason::RingOverflow => Some(lost),
                        _ => continue,
                    },
                    Stream::Levels => continue,
                };
                if let Some((why, detail)) = resync {
                    sub.queue.force(update(Update::Resync(pb::Resync {
                        symbol: mirror.symbol.clone(),
                        reason: why as i32,
                        detail: detail.to_owned(),
                    })));
                }
                for u in first_updates(stream, mirror, held, stale, &state.market) {
                    sub.queue.force(u);
                }
                if stream == Stream::Orders {
                    let slot = snapshot_slot(resync.map(|(why, _)| why));
                    self.stats.snapshots[slot].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// The feed lost messages: every order, trade and status watcher of `locate` gets a Resync
    /// (`detail`) and, for orders and status, the state as it is (marked stale).
    pub(super) fn streams_gap(&self, state: &mut State, locate: u16, detail: &str) {
        let (Some(mirror), Some(watchers)) =
            (state.mirrors.get(&locate), state.streams.get(&locate))
        else {
            return;
        };
        let stale = is_stale(&state.stale, mirror.shard);
        for (stream, ids) in [
            (Stream::Orders, &watchers.orders),
            (Stream::Trades, &watchers.trades),
            (Stream::Status, &watchers.status),
        ] {
            for id in ids {
                let Some(sub) = state.subscribers.get_mut(id) else {
                    continue;
                };
                if sub.closed || sub.lagging.is_some() {
                    continue;
                }
                let Some(held) = sub.held.get_mut(&locate) else {
                    continue;
                };
                if stream == Stream::Orders && held.seq == 0 {
                    // its first snapshot comes when the book arrives, marked stale then
                    continue;
                }
                sub.queue.force(update(Update::Resync(pb::Resync {
                    symbol: mirror.symbol.clone(),
                    reason: ResyncReason::UpstreamGap as i32,
                    detail: detail.to_owned(),
                })));
                for u in first_updates(stream, mirror, held, stale, &state.market) {
                    sub.queue.force(u);
                }
            }
        }
    }

    /// The order book mirror of `locate` no longer matches the data plane's events (a bug):
    /// counted, logged, and its order watchers closed with INTERNAL; the mirror waits for the
    /// next resync that carries the book.
    fn diverged(&self, state: &mut State, locate: u16, why: &str) {
        self.stats
            .upstream_seq_errors
            .fetch_add(1, Ordering::Relaxed);
        let Some(mirror) = state.mirrors.get_mut(&locate) else {
            return;
        };
        tracing::error!(symbol = %mirror.symbol, why, "order book mirror diverged from the data plane");
        if let Some(orders) = &mut mirror.orders {
            orders.book.clear();
            orders.live = false;
        }
        let ids = state
            .streams
            .get(&locate)
            .map(|w| w.orders.clone())
            .unwrap_or_default();
        for id in ids {
            if let Some(sub) = state.subscribers.get_mut(&id) {
                sub.closed = true;
                sub.queue.close(Status::internal(format!(
                    "the server's order book of {} diverged from its data plane ({why}); \
                     this is a bug: please report it, then subscribe again",
                    mirror.symbol
                )));
            }
        }
    }

    /// What `symbol` needs from the data plane now (`None` if the symbol is unknown).
    pub fn wanted_streams(&self, symbol: &str) -> Option<Wanted> {
        let state = self.lock();
        let locate = *state.by_name.get(symbol)?;
        let (orders, trades) = state.streams.get(&locate).map_or((false, false), |w| {
            (!w.orders.is_empty(), !w.trades.is_empty())
        });
        let book = state
            .mirrors
            .get(&locate)
            .and_then(|m| m.orders.as_ref())
            .is_some_and(|o| !o.live);
        Some(Wanted {
            orders,
            trades,
            book,
        })
    }
}

/// What a symbol needs from the data plane ([`Hub::wanted_streams`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Its order events.
    pub orders: bool,
    /// Its trades.
    pub trades: bool,
    /// Its order book, sent whole: the hub keeps one that is not live.
    pub book: bool,
}

/// A queue closed because the book has more orders than the data plane's ring can resend.
pub(super) fn close_omitted(queue: &Queue, symbol: &str) {
    queue.close(Status::resource_exhausted(format!(
        "the book of {symbol} has more orders than the data plane's event ring holds, so its \
         orders cannot be sent; raise event_ring in the server's config"
    )));
}
