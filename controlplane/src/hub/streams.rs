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

/// The first updates a subscriber of `stream` gets for `mirror` (on subscribing, or after a
/// Resync), its `held.seq` advanced: the order book (if live; otherwise nothing yet, and
/// `held.awaiting` says it comes when the book arrives) or the status; nothing for trades.
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
                held.awaiting = false;
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
            _ => {
                held.awaiting = true;
                Vec::new()
            }
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
        self.push_each(state, order.locate, Stream::Orders, |seq| {
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
        if state
            .streams
            .get(&trade.locate)
            .is_none_or(|w| w.trades.is_empty())
        {
            return;
        }
        let (symbol, exponent) = (mirror.symbol.clone(), mirror.price_exponent);
        let send_ns = now_ns();
        self.push_each(state, trade.locate, Stream::Trades, |seq| {
            Update::Trade(crate::status::trade(&symbol, seq, trade, exponent, send_ns))
        });
    }

    fn on_status(&self, state: &mut State, status: &StatusUpdate) {
        let Some(mirror) = state.mirrors.get_mut(&status.locate) else {
            return;
        };
        self.check_seq(mirror, status.seq);
        mirror.status.apply(&status.change);
        if let Some((left, reason)) = mirror.rebuild {
            // part of a resync: the status is being sent whole
            if left > 1 {
                mirror.rebuild = Some((left - 1, reason));
            } else {
                mirror.rebuild = None;
                self.rebuilt(state, status.locate, reason);
            }
            return;
        }
        if status.exchange_ns != 0 {
            mirror.last_exchange_ns = status.exchange_ns;
        }
        self.send_status(state, status.locate, change_kind(&status.change));
    }

    /// Sends every status watcher of `locate` its whole status, for a change of `kind`.
    fn send_status(&self, state: &mut State, locate: u16, kind: pb::StatusChange) {
        if state
            .streams
            .get(&locate)
            .is_none_or(|w| w.status.is_empty())
        {
            return;
        }
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
        self.push_each(state, locate, Stream::Status, |seq| {
            Update::Status(Box::new(pb::TradingStatus {
                seq,
                ..message.clone()
            }))
        });
    }

    /// Queues `make(seq)` for each subscriber of `stream` holding `locate` (not closed, not
    /// lagging, and whose client is reading), numbered with its next seq; subscribers whose
    /// queue overflows lag.
    fn push_each(
        &self,
        state: &mut State,
        locate: u16,
        stream: Stream,
        make: impl Fn(u64) -> Update,
    ) {
        // the list is lent out of the map while it is walked (no copy per event)
        let ids = state
            .streams
            .get_mut(&locate)
            .and_then(|w| w.of(stream))
            .map(std::mem::take)
            .unwrap_or_default();
        let mut slow = Vec::new();
        let mut now = None;
        let mut clock = Clock::default();
        let policy = self.policy();
        for id in &ids {
            let Some(sub) = state.subscribers.get_mut(id) else {
                continue;
            };
            if sub.closed {
                continue;
            }
            if sub.lagging.is_some() {
                let now = *now.get_or_insert_with(Instant::now);
                sub.stalled_lagging(&self.stats, now, policy.stall);
                continue;
            }
            if clock.blocked_too_long(&sub.queue, policy.blocked) {
                slow.push(*id);
                continue;
            }
            let Some(held) = sub.held.get_mut(&locate) else {
                continue;
            };
            if held.awaiting {
                // its snapshot has not been sent: nothing before it
                continue;
            }
            match sub.queue.push(update(make(held.seq + 1))) {
                Pushed::Queued => held.seq += 1,
                Pushed::Full => slow.push(*id),
                Pushed::Closed => {}
            }
        }
        if let Some(list) = state.streams.get_mut(&locate).and_then(|w| w.of(stream)) {
            *list = ids;
        }
        let now = now.unwrap_or_else(Instant::now);
        for id in slow {
            self.too_slow(state, id, now);
        }
    }

    /// A resync of `locate` from the data plane is complete (`reason`): the order book is live
    /// again if the resync carried it, and the order, trade and status watchers hear of what
    /// they may have lost.
    pub(super) fn streams_rebuilt(&self, state: &mut State, locate: u16, reason: UpstreamReason) {
        let lost = match reason {
            // nothing was held back: the book was resent because it was (re)published or its
            // orders were asked for
            UpstreamReason::Added | UpstreamReason::Orders => None,
            UpstreamReason::Requested => Some((
                ResyncReason::Requested,
                "resent on request; updates held back meanwhile were not sent",
            )),
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
        let Some(mirror) = state.mirrors.get_mut(&locate) else {
            return;
        };
        if let Some(orders) = mirror.orders.as_mut() {
            orders.live = std::mem::take(&mut orders.arriving);
        }
        let status_changed = mirror
            .status_before
            .take()
            .is_none_or(|before| before != mirror.status);
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
                    // its SLOW_CONSUMER resync said it all; it catches up from the state then
                    continue;
                }
                let Some(held) = sub.held.get_mut(&locate) else {
                    continue;
                };
                // (a Resync to send, the state to send after it)
                let (resync, send) = match stream {
                    // the order book: to whoever waits for it, and again after a loss
                    Stream::Orders if held.awaiting => (None, true),
                    Stream::Orders => (lost, lost.is_some()),
                    // trades are lost only to a full ring (they are sent while a resync is
                    // owed), and have no state
                    Stream::Trades => match lost {
                        Some(lost) if lost.0 == ResyncReason::RingOverflow => (Some(lost), false),
                        _ => continue,
                    },
                    // statuses too; the status the resync carried is sent if it changed
                    Stream::Status => match lost {
                        Some(lost) if lost.0 == ResyncReason::RingOverflow => (Some(lost), true),
                        _ => (None, status_changed),
                    },
                    Stream::Levels => continue,
                };
                if let Some((why, detail)) = resync {
                    sub.queue.force(update(Update::Resync(pb::Resync {
                        symbol: mirror.symbol.clone(),
                        reason: why as i32,
                        detail: detail.to_owned(),
                    })));
                    if stream == Stream::Orders {
                        held.awaiting = true;
                    }
                }
                if !send {
                    continue;
                }
                let first = first_updates(stream, mirror, held, stale, &state.market);
                if stream == Stream::Orders && !first.is_empty() {
                    let slot = snapshot_slot(resync.map(|(why, _)| why));
                    self.stats.snapshots[slot].fetch_add(1, Ordering::Relaxed);
                }
                for u in first {
                    sub.queue.force(u);
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
                if held.awaiting {
                    // its snapshot comes when the book arrives, marked stale then
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

    /// What the data plane must be told about `symbol` now, if anything: its order and trade
    /// streams as its subscribers need them, and whether to send its order book (a book the
    /// hub made since it last asked). `None` when nothing changed since the last
    /// [`Hub::streams_sent`] (or the symbol is unknown). The flag says the book must be sent
    /// whole (a new one since the last command).
    pub fn streams_to_send(&self, symbol: &str) -> Option<(Wanted, bool)> {
        let state = self.lock();
        let locate = *state.by_name.get(symbol)?;
        let (orders, trades) = state.streams.get(&locate).map_or((false, false), |w| {
            (!w.orders.is_empty(), !w.trades.is_empty())
        });
        let book = state.mirrors.get(&locate).and_then(|m| m.orders.as_ref());
        let wanted = Wanted {
            orders,
            trades,
            epoch: book.map_or(0, |b| b.epoch),
        };
        let last = state.sent.get(&locate).copied().unwrap_or_default();
        let resend = wanted.orders && wanted.epoch != last.epoch;
        (wanted != last).then_some((wanted, resend))
    }

    /// The data plane took `wanted` for `symbol`.
    pub fn streams_sent(&self, symbol: &str, wanted: Wanted) {
        let mut state = self.lock();
        if let Some(&locate) = state.by_name.get(symbol) {
            state.sent.insert(locate, wanted);
        }
    }
}

/// What a symbol needs from the data plane ([`Hub::streams_to_send`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Its order events.
    pub orders: bool,
    /// Its trades.
    pub trades: bool,
    /// The epoch of the order book the hub keeps for it (0: none): a new one is sent whole.
    pub epoch: u32,
}

/// A queue closed because the book has more orders than the data plane's ring can resend.
pub(super) fn close_omitted(queue: &Queue, symbol: &str) {
    queue.close(Status::resource_exhausted(format!(
        "the book of {symbol} has more orders than the data plane's event ring holds, so its \
         orders cannot be sent; raise event_ring in the server's config"
    )));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use dataplane::feed::itch::Side;
    use dataplane::runtime::event::{LevelUpdate, OrderAction, StatusChange, TradeKind};
    use dataplane::symbol::Symbol;

    use super::*;
    use crate::hub::{Mode, Policy};
    use crate::stream_contract::StreamChecker;

    fn policy(queue: usize) -> Policy {
        Policy {
            queue,
            max_resyncs: 3,
            window: Duration::from_secs(1),
            stall: Duration::from_secs(5),
            blocked: Duration::from_secs(5),
        }
    }

    /// Plays the data plane's side for locate 7 (AAPL): its events, numbered.
    struct Plane {
        seq: u64,
    }

    impl Plane {
        fn next(&mut self) -> u64 {
            self.seq += 1;
            self.seq
        }

        fn added(&mut self, hub: &Hub) {
            let seq = self.next();
            hub.apply(
                0,
                &[Event::SymbolAdded {
                    locate: 7,
                    symbol: Symbol::from_itch(*b"AAPL    "),
                    seq,
                    price_exponent: -4,
                }],
            );
            self.resync(hub, UpstreamReason::Added, &[], None);
        }

        /// A resync of the book made of `orders` (reference, side, price, shares), one level
        /// per order, carrying the orders when `with` gives the epoch of the request.
        fn resync(
            &mut self,
            hub: &Hub,
            reason: UpstreamReason,
            orders: &[(u64, Side, i64, u32)],
            with: Option<u32>,
        ) {
            let mut events = vec![Event::Resync {
                locate: 7,
                seq: self.next(),
                reason,
                levels: orders.len() as u32,
                orders: with.map(|_| orders.len() as u32),
                orders_omitted: false,
                epoch: with.unwrap_or(0),
                statuses: 0,
                incomplete: false,
                ingest_ns: 0,
            }];
            for &(_, side, price, shares) in orders {
                events.push(Event::Level(LevelUpdate {
                    locate: 7,
                    side,
                    price,
                    shares: u64::from(shares),
                    orders: 1,
                    seq: self.next(),
                    exchange_ns: 0,
                    ingest_ns: 0,
                }));
            }
            if with.is_some() {
                for &(reference, side, price, shares) in orders {
                    events.push(Event::Order(self.order(
                        OrderAction::Add,
                        reference,
                        side,
                        price,
                        shares,
                    )));
                }
            }
            hub.apply(0, &events);
        }

        fn order(
            &mut self,
            action: OrderAction,
            reference: u64,
            side: Side,
            price: i64,
            shares: u32,
        ) -> OrderUpdate {
            OrderUpdate {
                locate: 7,
                action,
                side,
                shares,
                seq: self.next(),
                reference,
                other: 0,
                price,
                exchange_ns: 1,
                ingest_ns: 1,
            }
        }
    }

    fn taken(queue: &Queue) -> Vec<Update> {
        let mut out = Vec::new();
        let _ = queue.take(usize::MAX, &mut out);
        out.into_iter().filter_map(|u| u.update).collect()
    }

    fn check(checker: &mut StreamChecker, updates: &[Update]) {
        for u in updates {
            let found = checker.apply(u);
            assert!(found.is_empty(), "{found:?} at {u:?}");
        }
    }

    const BOOK: [(u64, Side, i64, u32); 2] = [(1, Side::Buy, 100, 10), (2, Side::Sell, 101, 5)];

    #[test]
    fn an_orders_subscriber_gets_the_book_once_it_arrives_then_every_change() {
        let hub = Hub::new(1, policy(1024));
        let mut plane = Plane { seq: 0 };
        plane.added(&hub);
        let aapl = ["AAPL".to_owned()];
        let (_, queue) = hub
            .subscribe(&aapl, 0, Mode::EveryChange, Stream::Orders)
            .unwrap();
        assert!(taken(&queue).is_empty(), "nothing before the book comes");
        let (wanted, resend) = hub.streams_to_send("AAPL").unwrap();
        assert!(wanted.orders && resend && !wanted.trades);
        hub.streams_sent("AAPL", wanted);
        assert!(hub.streams_to_send("AAPL").is_none(), "told once");
        // an older resync (a request the hub no longer waits for) does not make it live
        plane.resync(&hub, UpstreamReason::Orders, &BOOK, Some(wanted.epoch + 7));
        assert!(taken(&queue).is_empty(), "not from a stale request");
        // the data plane answers with the book and its orders
        plane.resync(&hub, UpstreamReason::Orders, &BOOK, Some(wanted.epoch));
        let mut checker = StreamChecker::new(&aapl);
        let first = taken(&queue);
        assert!(matches!(first[..], [Update::Orders(_)]), "{first:?}");
        check(&mut checker, &first);
        let execute = plane.order(OrderAction::Execute, 1, Side::Buy, 100, 4);
        let add = plane.order(OrderAction::Add, 3, Side::Buy, 100, 7);
        hub.apply(0, &[Event::Order(execute), Event::Order(add)]);
        let events = taken(&queue);
        assert_eq!(events.len(), 2);
        check(&mut checker, &events);
        let held: Vec<_> = checker.held("AAPL").unwrap().orders.orders().collect();
        assert_eq!(
            held,
            [
                (Side::Buy, 100, 1, 6),
                (Side::Buy, 100, 3, 7),
                (Side::Sell, 101, 2, 5)
            ]
        );
        // a second subscriber gets the live book at once
        let (_, second) = hub
            .subscribe(&aapl, 0, Mode::EveryChange, Stream::Orders)
            .unwrap();
        let mut other = StreamChecker::new(&aapl);
        check(&mut other, &taken(&second));
        assert_eq!(
            other.held("AAPL").unwrap().orders,
            checker.held("AAPL").unwrap().orders
        );
        assert_eq!(hub.stats.upstream_seq_errors.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_overflow_resyncs_every_stream_its_own_way() {
        let hub = Hub::new(1, policy(1024));
        let mut plane = Plane { seq: 0 };
        plane.added(&hub);
        let aapl = ["AAPL".to_owned()];
        let (_, orders) = hub
            .subscribe(&aapl, 0, Mode::EveryChange, Stream::Orders)
            .unwrap();
        let (_, trades) = hub
            .subscribe(&aapl, 0, Mode::EveryChange, Stream::Trades)
            .unwrap();
        let (_, status) = hub
            .subscribe(&aapl, 0, Mode::EveryChange, Stream::Status)
            .unwrap();
        plane.resync(&hub, UpstreamReason::Orders, &BOOK, Some(1));
        let trade = TradeUpdate {
            locate: 7,
            kind: TradeKind::Execution,
            resting_side: Some(Side::Buy),
            printable: true,
            cross_type: 0,
            shares: 3,
            seq: plane.next(),
            price: 100,
            match_number: 9,
            exchange_ns: 1,
            ingest_ns: 1,
        };
        let halt = StatusUpdate {
            locate: 7,
            seq: plane.next(),
            exchange_ns: 2,
            change: StatusChange::Trading {
                state: b'H',
                reason: *b"LUDP",
            },
        };
        hub.apply(0, &[Event::Trade(trade), Event::Status(halt)]);
        let (mut o, mut t, mut s) = (
            StreamChecker::new(&aapl),
            StreamChecker::new(&aapl),
            StreamChecker::new(&aapl),
        );
        check(&mut o, &taken(&orders));
        check(&mut t, &taken(&trades));
        let statuses = taken(&status);
        check(&mut s, &statuses);
        let Some(Update::Status(last)) = statuses.last() else {
            panic!("{statuses:?}");
        };
        assert_eq!(last.state, pb::TradingState::Halted as i32);
        assert_eq!(last.change, pb::StatusChange::TradingState as i32);
        // the ring overflowed: the book comes again, changed
        let changed = [(1, Side::Buy, 100, 2)];
        plane.resync(&hub, UpstreamReason::RingFull, &changed, Some(1));
        let got = taken(&orders);
        assert!(
            matches!(got[..], [Update::Resync(_), Update::Orders(_)]),
            "{got:?}"
        );
        check(&mut o, &got);
        assert_eq!(o.held("AAPL").unwrap().orders.len(), 1);
        let got = taken(&trades);
        assert!(
            matches!(got[..], [Update::Resync(_)]),
            "trades may be lost: {got:?}"
        );
        check(&mut t, &got);
        let got = taken(&status);
        assert!(
            matches!(got[..], [Update::Resync(_), Update::Status(_)]),
            "{got:?}"
        );
        check(&mut s, &got);
        // a new day loses no trade and no status: only the order book is sent again
        plane.resync(&hub, UpstreamReason::NewDay, &[], Some(1));
        assert!(taken(&trades).is_empty() && taken(&status).is_empty());
        check(&mut o, &taken(&orders));
        assert!(o.held("AAPL").unwrap().orders.is_empty());
    }

    #[test]
    fn a_slow_orders_subscriber_lags_then_gets_the_book_as_it_is() {
        let hub = Hub::new(1, policy(4));
        let mut plane = Plane { seq: 0 };
        plane.added(&hub);
        let aapl = ["AAPL".to_owned()];
        let (id, queue) = hub
            .subscribe(&aapl, 0, Mode::EveryChange, Stream::Orders)
            .unwrap();
        plane.resync(&hub, UpstreamReason::Orders, &BOOK, Some(1));
        let mut checker = StreamChecker::new(&aapl);
        check(&mut checker, &taken(&queue));
        // it stops reading while orders keep coming
        for reference in 10..30 {
            let add = plane.order(OrderAction::Add, reference, Side::Sell, 102, 1);
            hub.apply(0, &[Event::Order(add)]);
        }
        assert!(queue.is_lagging());
        let mut out = Vec::new();
        let _ = queue.take(usize::MAX, &mut out);
        let mut updates: Vec<Update> = out.into_iter().filter_map(|u| u.update).collect();
        hub.catch_up(id);
        updates.extend(taken(&queue));
        assert!(
            matches!(updates[..], [Update::Resync(_), Update::Orders(_)]),
            "{updates:?}"
        );
        check(&mut checker, &updates);
        assert_eq!(checker.held("AAPL").unwrap().orders.len(), 22);
        let cancel = plane.order(OrderAction::Cancel, 2, Side::Sell, 101, 5);
        hub.apply(0, &[Event::Order(cancel)]);
        check(&mut checker, &taken(&queue));
    }

    #[test]
    fn a_book_too_big_for_the_ring_closes_its_orders_subscribers_with_the_fix() {
        let hub = Hub::new(1, policy(64));
        let mut plane = Plane { seq: 0 };
        plane.added(&hub);
        let aapl = ["AAPL".to_owned()];
        let (_, queue) = hub
            .subscribe(&aapl, 0, Mode::EveryChange, Stream::Orders)
            .unwrap();
        hub.apply(
            0,
            &[Event::Resync {
                locate: 7,
                seq: plane.next(),
                reason: UpstreamReason::Orders,
                levels: 0,
                orders: Some(0),
                orders_omitted: true,
                epoch: 1,
                statuses: 0,
                incomplete: false,
                ingest_ns: 0,
            }],
        );
        let mut out = Vec::new();
        let status = queue.take(usize::MAX, &mut out).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("event_ring"), "{status:?}");
    }
}
