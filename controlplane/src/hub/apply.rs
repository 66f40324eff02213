//! Applying the data plane's events to the mirrors, and turning each change of a subscribed
//! book into what its subscribers are sent: deltas, conflated diffs, resyncs with snapshots.

use std::sync::atomic::Ordering;
use std::time::Instant;

use dataplane::feed::itch::Side;
use dataplane::runtime::event::{Event, ResyncReason as UpstreamReason};

use super::stats::snapshot_slot;
use super::subscriber::Clock;
use super::{Hub, Mode, State, is_stale};
use crate::deltas::{Change, Held, Top, send_change, send_diff, touches, update};
use crate::mirror::Mirror;
use crate::pb::{self, ResyncReason, book_update::Update};
use crate::queue::{Pushed, Queue};

impl Hub {
    pub(super) fn apply_one(&self, state: &mut State, shard: u16, event: Event) {
        match event {
            Event::SymbolAdded {
                locate,
                symbol,
                seq,
                price_exponent,
            } => {
                let name = symbol.to_string();
                state.by_name.insert(name.clone(), locate);
                let mirror = state
                    .mirrors
                    .entry(locate)
                    .or_insert_with(|| Mirror::new(name, locate, shard));
                mirror.shard = shard;
                mirror.price_exponent = price_exponent;
                mirror.published = true;
                mirror.awaiting_book = true;
                mirror.seq = seq;
                // its status from here is what the data plane sends after this
                mirror.status = crate::status::SymbolStatus::default();
            }
            Event::SymbolRemoved { locate, seq, .. } => {
                if let Some(mirror) = state.mirrors.get_mut(&locate) {
                    mirror.published = false;
                    mirror.seq = seq;
                    mirror.clear();
                    mirror.rebuild = None;
                }
                let symbol = state
                    .mirrors
                    .get(&locate)
                    .map(|m| m.symbol.clone())
                    .unwrap_or_default();
                if let Some(mirror) = state.mirrors.get_mut(&locate) {
                    mirror.orders = None;
                }
                let mut ids = state.watchers.remove(&locate).unwrap_or_default();
                if let Some(streams) = state.streams.remove(&locate) {
                    ids.extend(streams.all());
                }
                state.sent.remove(&locate);
                for id in ids {
                    if let Some(sub) = state.subscribers.get_mut(&id)
                        && let Some(held) = sub.held.remove(&locate)
                    {
                        // a lagging client saw its updates only up to the first one dropped
                        let seq = match sub.lagging {
                            Some(_) => sub.queue.first_dropped(&symbol).map_or(held.seq, |f| f - 1),
                            None => held.seq,
                        };
                        sub.queue.force(update(Update::Removed(pb::SymbolRemoved {
                            symbol: symbol.clone(),
                            seq: seq + 1,
                        })));
                    }
                }
            }
            Event::Resync {
                locate,
                seq,
                reason,
                levels,
                orders,
                orders_omitted,
                epoch,
                statuses,
                incomplete,
                ..
            } => {
                let Some(mirror) = state.mirrors.get_mut(&locate) else {
                    return;
                };
                self.check_seq(mirror, seq);
                mirror.clear();
                mirror.incomplete = incomplete;
                mirror.awaiting_book = false;
                // the status comes with the book: what it was is kept to tell what changed
                mirror.status_before = Some(std::mem::take(&mut mirror.status));
                if let Some(book) = &mut mirror.orders {
                    // live again once the orders that follow are in, if they come at all and
                    // answer the hub's latest request
                    book.book.clear();
                    book.live = false;
                    book.arriving = orders.is_some() && !orders_omitted && epoch == book.epoch;
                    book.omitted = orders_omitted && epoch == book.epoch;
                }
                if orders_omitted {
                    self.orders_omitted(state, locate);
                }
                let Some(mirror) = state.mirrors.get_mut(&locate) else {
                    return;
                };
                let events = levels
                    .saturating_add(orders.unwrap_or(0))
                    .saturating_add(u32::from(statuses));
                if events == 0 {
                    mirror.rebuild = None;
                    self.rebuilt(state, locate, reason);
                } else {
                    mirror.rebuild = Some((events, reason));
                }
            }
            Event::Level(l) => {
                let Some(mirror) = state.mirrors.get_mut(&l.locate) else {
                    return;
                };
                self.check_seq(mirror, l.seq);
                mirror.set(l.side, l.price, l.shares, l.orders);
                mirror.updates += 1;
                if l.exchange_ns != 0 {
                    mirror.last_exchange_ns = l.exchange_ns;
                }
                mirror.last_ingest_ns = l.ingest_ns;
                if let Some((left, reason)) = mirror.rebuild {
                    if left > 1 {
                        mirror.rebuild = Some((left - 1, reason));
                    } else {
                        mirror.rebuild = None;
                        self.rebuilt(state, l.locate, reason);
                    }
                    return;
                }
                self.changed(state, l.locate, l.side, l.price, l.exchange_ns, l.ingest_ns);
            }
            Event::Stale { first, count } => {
                if let Some(s) = state.stale.get_mut(shard as usize) {
                    *s = true;
                }
                let locates: Vec<u16> = state
                    .mirrors
                    .values()
                    .filter(|m| m.shard == shard && m.published)
                    .map(|m| m.locate)
                    .collect();
                let detail = if count == 0 {
                    "messages were lost upstream (how many is unknown: a file's framing lost, or a gateway's publisher silent)".to_owned()
                } else {
                    format!("feed lost {count} messages from sequence {first}")
                };
                for locate in locates {
                    self.resync_watchers(state, locate, ResyncReason::UpstreamGap, &detail);
                    self.streams_gap(state, locate, &detail);
                }
            }
            Event::Fresh => {
                if let Some(s) = state.stale.get_mut(shard as usize) {
                    *s = false;
                }
            }
            Event::Order(_) | Event::Trade(_) | Event::Status(_) | Event::Market { .. } => {
                self.apply_stream_event(state, event);
            }
        }
    }

    /// The data plane cannot send the orders of `locate` (its book has more than the event
    /// ring holds): its order watchers are closed with the reason.
    fn orders_omitted(&self, state: &mut State, locate: u16) {
        let Some(mirror) = state.mirrors.get(&locate) else {
            return;
        };
        let ids = state
            .streams
            .get(&locate)
            .map(|w| w.orders.clone())
            .unwrap_or_default();
        for id in ids {
            if let Some(sub) = state.subscribers.get_mut(&id)
                && !sub.closed
            {
                sub.closed = true;
                super::streams::close_omitted(&sub.queue, &mirror.symbol);
            }
        }
    }

    pub(super) fn check_seq(&self, mirror: &mut Mirror, seq: u64) {
        if seq != mirror.seq + 1 {
            self.stats
                .upstream_seq_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(symbol = %mirror.symbol, expected = mirror.seq + 1, got = seq, "data-plane sequence break");
        }
        mirror.seq = seq;
    }

    /// A data-plane resync of `locate` is complete: tell its watchers.
    pub(super) fn rebuilt(&self, state: &mut State, locate: u16, reason: UpstreamReason) {
        self.streams_rebuilt(state, locate, reason);
        let (reason, detail) = match reason {
            // the levels lost nothing: nothing to tell
            UpstreamReason::Added | UpstreamReason::Orders => return,
            UpstreamReason::RingFull => (
                ResyncReason::RingOverflow,
                "the data plane's event ring overflowed; the book is exact again",
            ),
            UpstreamReason::Requested => (ResyncReason::Requested, "resent on request"),
            UpstreamReason::NewDay => (ResyncReason::NewDay, "a new trading day started"),
            UpstreamReason::Cleared => (
                ResyncReason::Cleared,
                "the feed cleared the book (a clear or a snapshot)",
            ),
        };
        self.resync_watchers(state, locate, reason, detail);
    }

    /// Sends every watcher of `locate` a resync and a fresh snapshot.
    fn resync_watchers(&self, state: &mut State, locate: u16, reason: ResyncReason, detail: &str) {
        let State {
            mirrors,
            watchers,
            subscribers,
            stale,
            ..
        } = state;
        let (Some(mirror), Some(ids)) = (mirrors.get(&locate), watchers.get(&locate)) else {
            return;
        };
        // the book is read once, as deep as the deepest watcher sees it
        let deepest = ids
            .iter()
            .filter_map(|id| subscribers.get(id))
            .map(|sub| sub.depth)
            .max()
            .unwrap_or(0);
        let mut top = Top::new(mirror, deepest, is_stale(stale, mirror.shard));
        for id in ids {
            let Some(sub) = subscribers.get_mut(id) else {
                continue;
            };
            if sub.closed || sub.lagging.is_some() {
                // its SLOW_CONSUMER resync already announced the break; the snapshot it gets
                // on catching up is built from the book as it is then
                continue;
            }
            let Some(held) = sub.held.get_mut(&locate) else {
                continue;
            };
            self.resync_one(&sub.queue, held, sub.depth, &mut top, reason, detail);
        }
    }

    /// Queues a resync of `top`'s symbol for one subscriber, then its snapshot at `depth`,
    /// and counts the snapshot.
    fn resync_one(
        &self,
        queue: &Queue,
        held: &mut Held,
        depth: usize,
        top: &mut Top<'_>,
        reason: ResyncReason,
        detail: &str,
    ) {
        queue.force(update(Update::Resync(pb::Resync {
            symbol: top.symbol().to_owned(),
            reason: reason as i32,
            detail: detail.to_owned(),
        })));
        for u in top.snapshot(held, depth) {
            queue.force(u);
        }
        self.stats.snapshots[snapshot_slot(Some(reason))].fetch_add(1, Ordering::Relaxed);
    }

    /// A level of `locate` changed: send the watchers whose view it touches what changed.
    fn changed(
        &self,
        state: &mut State,
        locate: u16,
        side: Side,
        price: i64,
        exchange_ns: u64,
        ingest_ns: u64,
    ) {
        let Some(ids) = state.watchers.get(&locate) else {
            return;
        };
        let Some(mirror) = state.mirrors.get(&locate) else {
            return;
        };
        let change = Change::of(mirror, side, price, (exchange_ns, ingest_ns));
        let mut slow = Vec::new();
        let mut now = None;
        let mut clock = Clock::default();
        let policy = self.policy();
        for id in ids {
            let Some(sub) = state.subscribers.get_mut(id) else {
                continue;
            };
            if sub.closed {
                continue;
            }
            if sub.lagging.is_some() {
                // nothing is built for it until it has read its resyncs
                let now = *now.get_or_insert_with(Instant::now);
                sub.stalled_lagging(&self.stats, now, policy.stall);
                continue;
            }
            if clock.blocked_too_long(&sub.queue, policy.blocked) {
                // its client stopped reading: treated as an overflow now, before a whole queue
                // of updates is built for it
                slow.push(*id);
                continue;
            }
            let depth = sub.depth;
            let Some(held) = sub.held.get_mut(&locate) else {
                continue;
            };
            if let Mode::Conflated(_) = sub.mode {
                if !held.dirty {
                    held.dirty = touches(mirror, held, depth, side, price);
                }
                continue;
            }
            match send_change(mirror, held, depth, &change, &sub.queue) {
                Pushed::Queued => {}
                Pushed::Full => slow.push(*id),
                Pushed::Closed => {}
            }
        }
        let now = now.unwrap_or_else(Instant::now);
        for id in slow {
            self.too_slow(state, id, now);
        }
    }

    /// Sends due conflated subscribers what changed.
    pub(super) fn send_conflated(&self, state: &mut State) {
        let Some(due) = state.conflated_due else {
            return;
        };
        let now = Instant::now();
        if now < due {
            return;
        }
        let mut slow = Vec::new();
        let State {
            subscribers,
            mirrors,
            conflated_due,
            ..
        } = state;
        let mut next_due: Option<Instant> = None;
        let mut clock = Clock::default();
        let policy = self.policy();
        for (id, sub) in subscribers.iter_mut() {
            let Mode::Conflated(interval) = sub.mode else {
                continue;
            };
            if sub.closed || sub.lagging.is_some() {
                // out of the schedule until it catches up (`catch_up` puts it back)
                continue;
            }
            if now < sub.next_due {
                next_due = Some(next_due.map_or(sub.next_due, |d| d.min(sub.next_due)));
                continue;
            }
            sub.next_due = now + interval;
            next_due = Some(next_due.map_or(sub.next_due, |d| d.min(sub.next_due)));
            if clock.blocked_too_long(&sub.queue, policy.blocked) {
                slow.push(*id);
                continue;
            }
            for (locate, held) in sub.held.iter_mut().filter(|(_, h)| h.dirty) {
                held.dirty = false;
                let Some(mirror) = mirrors.get(locate) else {
                    continue;
                };
                let at = (mirror.last_exchange_ns, mirror.last_ingest_ns);
                if send_diff(mirror, held, sub.depth, &sub.queue, at.0, at.1) == Pushed::Full {
                    slow.push(*id);
                    break;
                }
            }
        }
        *conflated_due = next_due;
        for id in slow {
            self.too_slow(state, id, now);
        }
    }

    /// Subscriber `id`'s queue overflowed at `now` (see [`super::subscriber::Subscriber::overflowed`]).
    pub(super) fn too_slow(&self, state: &mut State, id: u64, now: Instant) {
        let State {
            subscribers,
            mirrors,
            ..
        } = state;
        if let Some(sub) = subscribers.get_mut(&id) {
            sub.overflowed(mirrors, &self.policy(), &self.stats, now);
        }
    }
}
