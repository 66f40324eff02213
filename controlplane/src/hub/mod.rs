//! [`Hub`]: the L2 mirror books and the subscribers, fed by one event thread per shard.
//!
//! Each event thread (pinned to a control-plane core) drains its shard's event ring, applies
//! the events to the mirrors, and turns each change of a subscribed book into updates for its
//! subscribers' queues, under the subscription contract of proto/pinbook/v2/book.proto:
//! per-subscription `seq`, depth enforced, checksums, resyncs on every discontinuity.
//!
//! One mutex guards the mirrors and the subscribers. The event threads take it once per batch
//! of events; RPC handlers take it briefly to subscribe, unsubscribe or read a book.
//!
//! **Slow consumers** cost bounded work. When a subscriber's queue overflows, or its stream has
//! waited longer than [`Policy::blocked`] for the client to take an update (a client that has
//! stopped reading is caught long before its queue fills: building a whole queue of updates
//! for it would slow everyone else), its queued
//! updates are dropped (removals excepted), one small `Resync(SLOW_CONSUMER)` per symbol it
//! holds is queued, and it is *lagging*: no delta and no snapshot is built for it until its
//! stream has taken those resyncs ([`Hub::catch_up`]); then its fresh snapshots are built, once,
//! and deltas resume, `seq` contiguous throughout. It is closed with RESOURCE_EXHAUSTED, after
//! its queued resyncs, when it overflows more than [`Policy::max_resyncs`] times within
//! [`Policy::window`], or stays lagging longer than [`Policy::stall`]; its stream also gives
//! up on a client that takes nothing for [`Policy::stall`] ([`Hub::stalled`]).

//!
//! The module's parts: `apply` turns events into mirror changes and subscriber updates,
//! `subscriber` holds the slow-consumer policy, `stats` the counters, `event_thread` the loop
//! of an event thread ([`drain`]).

mod apply;
mod event_thread;
mod stats;
mod streams;
mod subscriber;

use ahash::AHashMap as HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dataplane::runtime::event::Event;
use tonic::Status;

pub use event_thread::drain;
use stats::snapshot_slot;
pub use stats::{HubStats, SnapshotReason};
pub use streams::Wanted;
use subscriber::Subscriber;

use crate::deltas::{Held, Top, snapshot};
use crate::mirror::Mirror;
use crate::pb::{self, ResyncReason};
use crate::queue::Queue;

/// How updates of one subscription are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every change of the best `depth` levels.
    EveryChange,
    /// What changed, at most once per interval.
    Conflated(Duration),
}

/// What one subscription streams (`pb::Stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Price levels (L2).
    Levels,
    /// Every order (L3, market by order).
    Orders,
    /// Trades.
    Trades,
    /// Trading status.
    Status,
}

/// Limits of the subscriber policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Updates a subscriber's queue holds.
    pub queue: usize,
    /// Resyncs for slowness tolerated within `window` before the subscriber is closed.
    pub max_resyncs: usize,
    /// See `max_resyncs`.
    pub window: Duration,
    /// How long a lagging subscriber may take to read its resyncs, and how long its stream
    /// waits for the client to take one update, before it is closed as too slow.
    pub stall: Duration,
    /// How long a subscriber's stream may wait for its client to take an update before the
    /// subscriber is treated as overflowed (see the module docs). At most `stall`.
    pub blocked: Duration,
}

#[derive(Debug, Default)]
struct State {
    mirrors: HashMap<u16, Mirror>,
    by_name: HashMap<String, u16>,
    /// Subscriber ids per locate: the level stream's.
    watchers: HashMap<u16, Vec<u64>>,
    /// Subscriber ids per locate: the other streams'.
    streams: HashMap<u16, streams::StreamWatchers>,
    /// The market-wide circuit breakers.
    market: crate::status::Market,
    /// What each symbol's data plane was last told to send ([`Hub::streams_to_send`]).
    sent: HashMap<u16, Wanted>,
    /// The epoch the next order book gets ([`crate::mirror::OrdersMirror::epoch`]).
    next_epoch: u32,
    subscribers: HashMap<u64, Subscriber>,
    stale: Vec<bool>,
    next_id: u64,
    /// The earliest `next_due` of the conflated subscribers (`None`: there are none). Never
    /// later than the true earliest; a subscriber gone since only costs one early pass.
    conflated_due: Option<Instant>,
}

/// The mirrors and subscribers.
#[derive(Debug)]
pub struct Hub {
    state: Mutex<State>,
    /// Read by copy at each use, so [`Hub::set_policy`] takes effect at the next.
    policy: Mutex<Policy>,
    /// Counters for the metrics.
    pub stats: HubStats,
}

/// A symbol as the admin API lists it.
#[derive(Debug, Clone)]
pub struct SymbolView {
    /// Trimmed symbol.
    pub symbol: String,
    /// Stock locate.
    pub locate: u16,
    /// Its prices are integers × 10^`price_exponent`.
    pub price_exponent: i8,
    /// Owning shard.
    pub shard: u16,
    /// Published now.
    pub published: bool,
    /// Level updates applied.
    pub updates: u64,
    /// Levels now.
    pub levels: usize,
    /// Known to miss orders.
    pub incomplete: bool,
    /// Its shard's feed lost messages.
    pub stale: bool,
    /// The mirror holds the book as the data plane last sent it whole: no resync is under way
    /// and none is still due after the symbol was (re)published.
    pub settled: bool,
}

impl SymbolView {
    fn of(m: &Mirror, stale: &[bool]) -> Self {
        Self {
            symbol: m.symbol.clone(),
            locate: m.locate,
            price_exponent: m.price_exponent,
            shard: m.shard,
            published: m.published,
            updates: m.updates,
            levels: m.levels(),
            incomplete: m.incomplete,
            stale: is_stale(stale, m.shard),
            settled: !m.awaiting_book && m.rebuild.is_none(),
        }
    }
}

/// True if `shard`'s feed is known to have lost messages (`stale` is the hub's per-shard flag).
fn is_stale(stale: &[bool], shard: u16) -> bool {
    stale.get(usize::from(shard)).copied().unwrap_or(false)
}

impl Hub {
    /// The slow-consumer policy in force.
    pub fn policy(&self) -> Policy {
        *self.policy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the slow-consumer policy: the queue size for subscriptions opened from now on,
    /// the rest at once for every subscriber.
    pub fn set_policy(&self, policy: Policy) {
        *self.policy.lock().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// An empty hub for `shards` shards.
    pub fn new(shards: usize, policy: Policy) -> Self {
        Self {
            state: Mutex::new(State {
                stale: vec![false; shards],
                ..State::default()
            }),
            policy: Mutex::new(policy),
            stats: HubStats {
                ring_occupancy: (0..shards).map(|_| AtomicU64::new(0)).collect(),
                ..HubStats::default()
            },
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes to `symbols`: queues their first snapshots and returns the subscription id
    /// and its queue.
    ///
    /// # Errors
    /// NOT_FOUND naming the first symbol not published.
    pub fn subscribe(
        &self,
        symbols: &[String],
        depth: usize,
        mode: Mode,
        stream: Stream,
    ) -> Result<(u64, Arc<Queue>), Status> {
        let mut state = self.lock();
        let mut locates = Vec::with_capacity(symbols.len());
        for symbol in symbols {
            match state.by_name.get(symbol.as_str()) {
                Some(&locate) if state.mirrors.get(&locate).is_some_and(|m| m.published) => {
                    locates.push(locate)
                }
                _ => {
                    return Err(Status::not_found(format!(
                        "symbol {symbol:?} is not published here (AdminService.ListSymbols \
                         lists what is; AddSymbol publishes one the feed lists)"
                    )));
                }
            }
        }
        state.next_id += 1;
        let id = state.next_id;
        let queue = Arc::new(Queue::new(self.policy().queue));
        let mut subscriber = Subscriber {
            queue: Arc::clone(&queue),
            depth,
            mode,
            stream,
            held: HashMap::new(),
            next_due: Instant::now(),
            resyncs: Vec::new(),
            lagging: None,
            closed: false,
        };
        for &locate in &locates {
            if stream != Stream::Levels {
                let State {
                    streams,
                    mirrors,
                    stale,
                    market,
                    next_epoch,
                    ..
                } = &mut *state;
                let watchers = streams.entry(locate).or_default();
                if let Some(list) = watchers.of(stream) {
                    list.push(id);
                }
                let Some(mirror) = mirrors.get_mut(&locate) else {
                    continue;
                };
                if stream == Stream::Orders && mirror.orders.is_none() {
                    // kept from now on; live once the data plane sends it with its orders
                    *next_epoch = next_epoch.wrapping_add(1).max(1);
                    mirror.orders = Some(crate::mirror::OrdersMirror {
                        epoch: *next_epoch,
                        ..Default::default()
                    });
                }
                let held = subscriber.held.entry(locate).or_insert(Held {
                    seq: 0,
                    bids: Vec::new(),
                    asks: Vec::new(),
                    dirty: false,
                    awaiting: false,
                });
                let stale = is_stale(stale, mirror.shard);
                let first = streams::first_updates(stream, mirror, held, stale, market);
                if stream == Stream::Orders && !first.is_empty() {
                    self.stats.snapshots[snapshot_slot(None)].fetch_add(1, Ordering::Relaxed);
                }
                for update in first {
                    subscriber.queue.force(update);
                }
                continue;
            }
            state.watchers.entry(locate).or_default().push(id);
            if let Some(mirror) = state.mirrors.get(&locate) {
                let stale = is_stale(&state.stale, mirror.shard);
                let held = subscriber.held.entry(locate).or_insert(Held {
                    seq: 0,
                    bids: Vec::new(),
                    asks: Vec::new(),
                    dirty: false,
                    awaiting: false,
                });
                for update in snapshot(mirror, held, depth, stale) {
                    subscriber.queue.force(update);
                }
                self.stats.snapshots[snapshot_slot(None)].fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Mode::Conflated(_) = mode {
            let due = subscriber.next_due;
            state.conflated_due = Some(state.conflated_due.map_or(due, |d| d.min(due)));
        }
        state.subscribers.insert(id, subscriber);
        Ok((id, queue))
    }

    /// Forgets subscription `id` (its stream ended).
    pub fn unsubscribe(&self, id: u64) {
        let mut state = self.lock();
        if let Some(sub) = state.subscribers.remove(&id) {
            sub.queue.abandon();
            for locate in sub.held.keys() {
                if let Some(list) = state.watchers.get_mut(locate) {
                    list.retain(|s| *s != id);
                }
                let Some(watchers) = state.streams.get_mut(locate) else {
                    continue;
                };
                if let Some(list) = watchers.of(sub.stream) {
                    list.retain(|s| *s != id);
                }
                if watchers.orders.is_empty()
                    && let Some(mirror) = state.mirrors.get_mut(locate)
                {
                    // nobody streams its orders: the data plane is told to stop sending them
                    mirror.orders = None;
                }
            }
        }
    }

    /// Subscriptions open now.
    pub fn subscribers(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Subscriptions open now, by what they stream: levels, orders, trades, status.
    pub fn subscribers_by_stream(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for sub in self.lock().subscribers.values() {
            counts[sub.stream as usize] += 1;
        }
        counts
    }

    /// Queue depths of all subscribers.
    pub fn queue_depths(&self) -> Vec<usize> {
        self.lock()
            .subscribers
            .values()
            .map(|s| s.queue.len())
            .collect()
    }

    /// Closes every subscription with `status` (shutdown): what is queued is dropped.
    pub fn close_all(&self, status: &Status) {
        let state = self.lock();
        for sub in state.subscribers.values() {
            sub.queue.close_now(status.clone());
        }
    }

    /// Subscription `id`'s stream has taken the resyncs of its lagging queue: builds its fresh
    /// snapshots (once) and resumes its deltas.
    pub fn catch_up(&self, id: u64) {
        let mut state = self.lock();
        let State {
            subscribers,
            mirrors,
            stale,
            conflated_due,
            market,
            ..
        } = &mut *state;
        let Some(sub) = subscribers.get_mut(&id) else {
            return;
        };
        if sub.closed || sub.lagging.take().is_none() {
            return;
        }
        // the client saw everything up to the first update the overflow dropped
        let rewinds = sub.queue.take_rewinds();
        for (locate, held) in sub.held.iter_mut() {
            if let Some(mirror) = mirrors.get(locate)
                && let Some(first) = rewinds.get(mirror.symbol.as_str())
            {
                held.seq = first - 1;
            }
        }
        if let Mode::Conflated(_) = sub.mode {
            // left out of the schedule while lagging
            let due = sub.next_due;
            *conflated_due = Some(conflated_due.map_or(due, |d| d.min(due)));
        }
        for (locate, held) in sub.held.iter_mut() {
            let Some(mirror) = mirrors.get(locate) else {
                continue;
            };
            if sub.stream != Stream::Levels {
                let stale = is_stale(stale, mirror.shard);
                let first = streams::first_updates(sub.stream, mirror, held, stale, market);
                if sub.stream == Stream::Orders && !first.is_empty() {
                    self.stats.snapshots[snapshot_slot(Some(ResyncReason::SlowConsumer))]
                        .fetch_add(1, Ordering::Relaxed);
                }
                for u in first {
                    sub.queue.force(u);
                }
                continue;
            }
            let mut top = Top::new(mirror, sub.depth, is_stale(stale, mirror.shard));
            for u in top.snapshot(held, sub.depth) {
                sub.queue.force(u);
            }
            self.stats.snapshots[snapshot_slot(Some(ResyncReason::SlowConsumer))]
                .fetch_add(1, Ordering::Relaxed);
        }
        sub.queue.resume();
    }

    /// Subscription `id`'s client took nothing for `waited`: closes it as too slow, after a
    /// SLOW_CONSUMER resync of each symbol it holds (its queued updates are dropped).
    pub fn stalled(&self, id: u64, waited: Duration) {
        let mut state = self.lock();
        let now = Instant::now();
        let lagging = match state.subscribers.get(&id) {
            Some(sub) if !sub.closed => sub.lagging.is_some(),
            _ => return,
        };
        let State {
            subscribers,
            mirrors,
            ..
        } = &mut *state;
        if let Some(sub) = subscribers.get_mut(&id) {
            if !lagging {
                sub.lag(mirrors, &self.policy(), now);
            }
            sub.close_slow(
                &self.stats,
                format!(
                    "subscriber too slow: it took no update for {waited:?}; read faster, ask \
                     for less depth, or use MODE_CONFLATED"
                ),
            );
        }
    }

    /// One snapshot of `symbol`'s best `depth` levels (seq 0, one chunk).
    ///
    /// # Errors
    /// NOT_FOUND if the symbol is not published.
    pub fn book(&self, symbol: &str, depth: usize) -> Result<pb::BookSnapshot, Status> {
        let state = self.lock();
        let mirror = state
            .by_name
            .get(symbol)
            .and_then(|l| state.mirrors.get(l))
            .filter(|m| m.published)
            .ok_or_else(|| Status::not_found(format!("symbol {symbol:?} is not published here")))?;
        Ok(Top::new(mirror, depth, is_stale(&state.stale, mirror.shard)).book(depth))
    }

    /// Every symbol known, sorted by name.
    pub fn symbols(&self) -> Vec<SymbolView> {
        let state = self.lock();
        let mut out: Vec<SymbolView> = state
            .mirrors
            .values()
            .map(|m| SymbolView::of(m, &state.stale))
            .collect();
        out.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        out
    }

    /// The symbol named `symbol` (trimmed, as the data plane names it), if it is known.
    pub fn symbol(&self, symbol: &str) -> Option<SymbolView> {
        let state = self.lock();
        let mirror = state.mirrors.get(state.by_name.get(symbol)?)?;
        Some(SymbolView::of(mirror, &state.stale))
    }

    /// True once some symbol is published (its first book arrived).
    pub fn any_published(&self) -> bool {
        self.lock().mirrors.values().any(|m| m.published)
    }

    /// Sends conflated subscribers what is due when no event came (an idle event thread calls
    /// it, so the last changes before a quiet spell are not held back).
    pub fn tick(&self) {
        let mut state = self.lock();
        self.send_conflated(&mut state);
        let now = Instant::now();
        for sub in state.subscribers.values_mut() {
            if sub.lagging.is_some() && !sub.closed {
                sub.stalled_lagging(&self.stats, now, self.policy().stall);
            }
        }
    }

    /// Applies a batch of events from `shard`.
    pub fn apply(&self, shard: u16, events: &[Event]) {
        let mut state = self.lock();
        for event in events {
            self.apply_one(&mut state, shard, *event);
        }
        self.send_conflated(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::book_update::Update;
    use dataplane::feed::itch::Side;
    use dataplane::runtime::event::ResyncReason as UpstreamReason;

    #[test]
    fn snapshot_reasons_index_their_counts_and_have_distinct_names() {
        for (i, reason) in SnapshotReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, i);
        }
        assert_eq!(
            SnapshotReason::of(Some(ResyncReason::NewDay)),
            SnapshotReason::NewDay
        );
        let mut names: Vec<&str> = SnapshotReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SnapshotReason::ALL.len());
        assert_eq!(snapshot_slot(None), SnapshotReason::Initial as usize);
    }
    use crate::queue::Taken;
    use dataplane::runtime::event::LevelUpdate;

    fn policy() -> Policy {
        Policy {
            queue: 1024,
            max_resyncs: 3,
            window: Duration::from_secs(1),
            stall: Duration::from_secs(5),
            blocked: Duration::from_secs(5),
        }
    }

    fn level(seq: u64, price: i64) -> Event {
        Event::Level(LevelUpdate {
            locate: 7,
            side: Side::Buy,
            price,
            shares: 100,
            orders: 1,
            seq,
            exchange_ns: 0,
            ingest_ns: 0,
        })
    }

    fn resync(seq: u64, reason: UpstreamReason, levels: u32) -> Event {
        Event::Resync {
            locate: 7,
            seq,
            reason,
            levels,
            orders: None,
            orders_omitted: false,
            epoch: 0,
            statuses: 0,
            incomplete: false,
            ingest_ns: 0,
        }
    }

    fn taken(queue: &Queue) -> Vec<Update> {
        let mut out = Vec::new();
        queue.take(usize::MAX, &mut out).unwrap();
        out.into_iter().filter_map(|u| u.update).collect()
    }

    #[test]
    fn a_resync_reaches_watchers_once_its_last_level_arrived() {
        let hub = Hub::new(1, policy());
        let added = Event::SymbolAdded {
            locate: 7,
            symbol: dataplane::symbol::Symbol::from_itch(*b"AAPL    "),
            seq: 1,
            price_exponent: -4,
        };
        hub.apply(0, &[added]);
        let view = hub.symbol("AAPL").unwrap();
        assert!(
            view.published && !view.settled,
            "published, its book not yet sent"
        );
        hub.apply(0, &[resync(2, UpstreamReason::Added, 1)]);
        assert!(
            !hub.symbol("AAPL").unwrap().settled,
            "one level still to come"
        );
        hub.apply(0, &[level(3, 100)]);
        let view = hub.symbol("AAPL").unwrap();
        assert!(view.published && view.settled);
        assert_eq!((view.locate, view.levels), (7, 1));
        assert!(hub.symbol("AAPL    ").is_none(), "names are trimmed");

        let (_, queue) = hub
            .subscribe(&["AAPL".to_owned()], 5, Mode::EveryChange, Stream::Levels)
            .unwrap();
        assert!(matches!(taken(&queue)[..], [Update::Snapshot(_)]));

        // the book is resent: watchers hear of it only when it is whole again
        hub.apply(0, &[resync(4, UpstreamReason::RingFull, 2), level(5, 101)]);
        assert!(taken(&queue).is_empty());
        hub.apply(0, &[level(6, 102)]);
        let updates = taken(&queue);
        let [Update::Resync(r), Update::Snapshot(s)] = &updates[..] else {
            panic!("{updates:?}");
        };
        assert_eq!(r.reason, ResyncReason::RingOverflow as i32);
        assert_eq!(
            s.bids.iter().map(|l| l.price).collect::<Vec<_>>(),
            [102, 101]
        );
        assert_eq!(hub.stats.upstream_seq_errors.load(Ordering::Relaxed), 0);

        // back to deltas
        hub.apply(0, &[level(7, 103)]);
        assert!(matches!(taken(&queue)[..], [Update::Delta(_)]));
    }

    /// A hub publishing AAPL (locate 7) with one bid level; the next data-plane seq is 4.
    fn published(policy: Policy) -> Hub {
        let hub = Hub::new(1, policy);
        let added = Event::SymbolAdded {
            locate: 7,
            symbol: dataplane::symbol::Symbol::from_itch(*b"AAPL    "),
            seq: 1,
            price_exponent: -4,
        };
        hub.apply(
            0,
            &[added, resync(2, UpstreamReason::Added, 1), level(3, 100)],
        );
        hub
    }

    fn slow_snapshots(hub: &Hub) -> u64 {
        hub.stats.snapshots[snapshot_slot(Some(ResyncReason::SlowConsumer))].load(Ordering::Relaxed)
    }

    /// Checks `updates` as a client would: seq contiguous from `*seq`, a snapshot after each
    /// resync before any delta.
    fn follow(updates: &[Update], seq: &mut u64, awaiting_snapshot: &mut bool) {
        for u in updates {
            let next = match u {
                Update::Snapshot(s) => {
                    *awaiting_snapshot = false;
                    s.seq
                }
                Update::Delta(d) => {
                    assert!(
                        !*awaiting_snapshot,
                        "a delta between a resync and its snapshot"
                    );
                    d.seq
                }
                Update::Resync(_) => {
                    *awaiting_snapshot = true;
                    continue;
                }
                _ => continue,
            };
            assert_eq!(next, *seq + 1, "{u:?}");
            *seq = next;
        }
    }

    #[test]
    fn a_lagging_subscriber_costs_no_snapshot_until_it_reads_its_resync() {
        let hub = published(Policy {
            queue: 8,
            ..policy()
        });
        let (id, queue) = hub
            .subscribe(
                &["AAPL".to_owned()],
                1000,
                Mode::EveryChange,
                Stream::Levels,
            )
            .unwrap();
        let (mut seq, mut awaiting) = (0, false);
        // the client reads its snapshot and a few deltas
        hub.apply(0, &[level(4, 101), level(5, 102)]);
        follow(&taken(&queue), &mut seq, &mut awaiting);
        assert_eq!(seq, 3);
        // then stops reading: the queue overflows once, then holds the resync alone however
        // much the book moves, and no snapshot is built
        let events: Vec<Event> = (6..2_006).map(|s| level(s, 200 + s as i64)).collect();
        hub.apply(0, &events);
        assert_eq!(slow_snapshots(&hub), 0);
        assert_eq!(queue.len(), 1);
        assert!(queue.is_lagging());
        let mut out = Vec::new();
        assert!(matches!(queue.take(100, &mut out), Ok(Taken::CaughtUp)));
        let updates: Vec<Update> = out.into_iter().filter_map(|u| u.update).collect();
        let [Update::Resync(r)] = &updates[..] else {
            panic!("{updates:?}");
        };
        assert_eq!(
            (r.symbol.as_str(), r.reason),
            ("AAPL", ResyncReason::SlowConsumer as i32)
        );
        follow(&updates, &mut seq, &mut awaiting);
        // more events while the stream is still sending the resync: nothing for it
        hub.apply(0, &[level(2_006, 5_000)]);
        assert!(queue.is_empty());
        // the stream sent the resync: one snapshot, the book as it is now, seq contiguous
        hub.catch_up(id);
        hub.catch_up(id);
        assert_eq!(slow_snapshots(&hub), 1);
        let updates = taken(&queue);
        let [Update::Snapshot(s)] = &updates[..] else {
            panic!("{updates:?}");
        };
        assert_eq!(s.bids.len(), 1000, "the best 1000 of 2003 levels");
        assert_eq!(s.bids[0].price, 5_000);
        follow(&updates, &mut seq, &mut awaiting);
        // deltas again
        hub.apply(0, &[level(2_007, 5_001)]);
        let updates = taken(&queue);
        assert!(matches!(updates[..], [Update::Delta(_), ..]), "{updates:?}");
        follow(&updates, &mut seq, &mut awaiting);
        assert_eq!(hub.stats.slow_closes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_slow_close_delivers_the_resync_before_the_status() {
        let hub = published(Policy {
            queue: 4,
            max_resyncs: 1,
            ..policy()
        });
        let (id, queue) = hub
            .subscribe(&["AAPL".to_owned()], 10, Mode::EveryChange, Stream::Levels)
            .unwrap();
        let (mut seq, mut awaiting) = (0, false);
        follow(&taken(&queue), &mut seq, &mut awaiting);
        let mut next = 4;
        let mut burst = |hub: &Hub| {
            let events: Vec<Event> = (next..next + 20).map(|s| level(s, s as i64)).collect();
            next += 20;
            hub.apply(0, &events);
        };
        // first overflow: resynced, caught up
        burst(&hub);
        let mut out = Vec::new();
        assert!(matches!(queue.take(100, &mut out), Ok(Taken::CaughtUp)));
        hub.catch_up(id);
        let mut updates: Vec<Update> = out.into_iter().filter_map(|u| u.update).collect();
        updates.extend(taken(&queue));
        follow(&updates, &mut seq, &mut awaiting);
        // second overflow within the window: closed, the resync still goes out first
        burst(&hub);
        burst(&hub);
        assert_eq!(hub.stats.slow_closes.load(Ordering::Relaxed), 1);
        let mut out = Vec::new();
        assert!(queue.take(100, &mut out).is_ok());
        let updates: Vec<Update> = out.drain(..).filter_map(|u| u.update).collect();
        assert!(
            matches!(&updates[..], [.., Update::Resync(r)] if r.reason == ResyncReason::SlowConsumer as i32),
            "{updates:?}"
        );
        follow(&updates, &mut seq, &mut awaiting);
        let status = queue.take(100, &mut out).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().contains("overflowed 2 times"),
            "{status:?}"
        );
        // nothing is built for a closed subscriber, and it is counted once
        hub.catch_up(id);
        hub.stalled(id, Duration::from_secs(1));
        assert_eq!(slow_snapshots(&hub), 1);
        assert_eq!(hub.stats.slow_closes.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_client_that_stopped_reading_lags_long_before_its_queue_fills() {
        let hub = published(Policy {
            blocked: Duration::from_millis(50),
            ..policy()
        });
        let (_, queue) = hub
            .subscribe(
                &["AAPL".to_owned()],
                1000,
                Mode::EveryChange,
                Stream::Levels,
            )
            .unwrap();
        let (mut seq, mut awaiting) = (0, false);
        follow(&taken(&queue), &mut seq, &mut awaiting);
        // waiting, but not for long yet: deltas are still built
        queue.set_blocked(dataplane::clock::now_ns());
        hub.apply(0, &[level(4, 101)]);
        assert!(matches!(taken(&queue)[..], [Update::Delta(_)]));
        // its stream has waited longer than `blocked` for the client: it lags, one resync
        std::thread::sleep(Duration::from_millis(60));
        hub.apply(0, &[level(5, 102), level(6, 103)]);
        let updates = taken(&queue);
        let [Update::Resync(r)] = &updates[..] else {
            panic!("{updates:?}");
        };
        assert_eq!(r.reason, ResyncReason::SlowConsumer as i32);
        assert_eq!(slow_snapshots(&hub), 0, "nothing built while it lags");
        follow(&updates, &mut seq, &mut awaiting);
    }

    #[test]
    fn a_subscriber_that_does_not_read_its_resync_in_time_is_closed_after_it() {
        let hub = published(Policy {
            queue: 4,
            stall: Duration::from_millis(1),
            ..policy()
        });
        let (_, queue) = hub
            .subscribe(&["AAPL".to_owned()], 10, Mode::EveryChange, Stream::Levels)
            .unwrap();
        let events: Vec<Event> = (4..24).map(|s| level(s, s as i64)).collect();
        hub.apply(0, &events);
        assert!(queue.is_lagging());
        std::thread::sleep(Duration::from_millis(5));
        // the next event (or an idle tick) finds it lagging for too long
        hub.tick();
        assert_eq!(hub.stats.slow_closes.load(Ordering::Relaxed), 1);
        let updates = {
            let mut out = Vec::new();
            queue.take(100, &mut out).unwrap();
            out.into_iter().filter_map(|u| u.update).collect::<Vec<_>>()
        };
        assert!(matches!(updates[..], [Update::Resync(_)]), "{updates:?}");
        let status = queue.take(100, &mut Vec::new()).unwrap_err();
        assert!(status.message().contains("did not read"), "{status:?}");
    }

    #[test]
    fn a_stalled_stream_is_closed_with_a_resync_and_its_queue_emptied() {
        let hub = published(policy());
        let (id, queue) = hub
            .subscribe(&["AAPL".to_owned()], 10, Mode::EveryChange, Stream::Levels)
            .unwrap();
        hub.apply(0, &[level(4, 101), level(5, 102)]);
        assert_eq!(queue.len(), 3);
        hub.stalled(id, Duration::from_secs(5));
        assert_eq!(hub.stats.slow_closes.load(Ordering::Relaxed), 1);
        let (rest, status) = queue.take_rest();
        let rest: Vec<Update> = rest.into_iter().filter_map(|u| u.update).collect();
        assert!(matches!(rest[..], [Update::Resync(_)]), "{rest:?}");
        let status = status.unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("took no update"), "{status:?}");
    }

    #[test]
    fn a_conflated_subscriber_is_scheduled_again_once_caught_up() {
        let hub = published(Policy {
            queue: 2,
            ..policy()
        });
        let (id, queue) = hub
            .subscribe(
                &["AAPL".to_owned()],
                10,
                Mode::Conflated(Duration::from_millis(1)),
                Stream::Levels,
            )
            .unwrap();
        let (mut seq, mut awaiting) = (0, false);
        follow(&taken(&queue), &mut seq, &mut awaiting);
        // each conflated send is a diff of several levels: the queue of 2 overflows
        let mut next = 4;
        while !queue.is_lagging() {
            std::thread::sleep(Duration::from_millis(2));
            let events: Vec<Event> = (next..next + 5).map(|s| level(s, s as i64)).collect();
            next += 5;
            hub.apply(0, &events);
            assert!(next < 1_000, "never overflowed");
        }
        let mut out = Vec::new();
        assert!(matches!(queue.take(100, &mut out), Ok(Taken::CaughtUp)));
        let mut updates: Vec<Update> = out.into_iter().filter_map(|u| u.update).collect();
        hub.catch_up(id);
        updates.extend(taken(&queue));
        follow(&updates, &mut seq, &mut awaiting);
        assert!(!awaiting);
        // a change after the catch-up goes out at the next due time
        std::thread::sleep(Duration::from_millis(2));
        hub.apply(0, &[level(next, 10_000)]);
        std::thread::sleep(Duration::from_millis(2));
        hub.tick();
        let updates = taken(&queue);
        assert!(matches!(updates[..], [Update::Delta(_), ..]), "{updates:?}");
        follow(&updates, &mut seq, &mut awaiting);
    }
}
