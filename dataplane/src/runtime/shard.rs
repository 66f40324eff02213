//! One shard: a thread pinned to a core that polls its feed, keeps the books of the stock
//! locates it owns, and publishes their changes.
//!
//! The loop, one iteration:
//! 1. flush what is owed to the event ring: shard-wide events (stale, fresh), then a resync
//!    for each dirty symbol that now fits;
//! 2. take up to [`COMMANDS_PER_ITERATION`] commands and ack each;
//! 3. poll the feed for up to `batch` events and apply them to the books, publishing one
//!    [`Event::Level`] per level change of a published symbol;
//! 4. update the stats; idle if there was nothing to do.
//!
//! A full event ring never blocks the loop: the symbol whose update did not fit is marked
//! dirty (its later updates are not sent either) and counted; once there is room for its whole
//! book, it is sent as a resync. After startup the loop allocates nothing and makes no syscall
//! of its own: the feed's receive and the idle strategy's yield or park are the only ones.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::command::{Ack, Applied, Command, CommandError, OrderPosition};
use super::event::{
    Event, LevelUpdate, OrderAction, OrderUpdate, ResyncReason, STATUS_KINDS, StatusChange,
    StatusUpdate, TradeKind, TradeUpdate,
};
use super::held::{DECODED, Held, Slot};
use super::idle::{IdleStrategy, Idler};
use super::staged::Staged;
use super::stats::{Counter, ShardStats};
use crate::arena::{Arena, Region};
use crate::book::change::{L2Change, OrderChange};
use crate::book::{Books, BooksConfig, ChangeSink, Op};
use crate::clock::now_ns;
use crate::feed::itch;
use crate::ring::{Consumer, Producer};
use crate::source::{FeedEvent, FeedSource, Polled, Rejection};
use crate::symbol::Symbol;

/// Commands taken per loop iteration, so a burst of them cannot starve the feed.
pub const COMMANDS_PER_ITERATION: usize = 8;

/// Which symbols a shard publishes (it always keeps the books of all it owns).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Publish {
    /// Every symbol the shard owns, from its stock directory message on.
    #[default]
    All,
    /// Only these (space-padded) symbols at first; more can be added at run time.
    Only(Vec<Symbol>),
}

/// Everything one shard needs to know.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// This shard's number, `0..shards`.
    pub id: u16,
    /// How many shards split the symbols.
    pub shards: u16,
    /// The core to pin the thread to (as core_affinity numbers them); `None` leaves it
    /// unpinned (tests on machines without a free core).
    pub core: Option<usize>,
    /// Book capacities, reserved at startup in the shard's NUMA arena.
    pub books: BooksConfig,
    /// Events the ring to the control plane holds. At least
    /// `2 * books.max_levels_per_side + 2`, so any one book's resync fits.
    pub event_ring: usize,
    /// Feed events taken per poll.
    pub batch: usize,
    /// What the loop does when there is no work.
    pub idle: IdleStrategy,
    /// Which owned symbols are published.
    pub publish: Publish,
    /// Called on the shard thread after startup, just before the loop (to set a scheduling
    /// policy, or to mark the thread in a test).
    pub on_start: Option<fn()>,
}

impl ShardConfig {
    /// Shard `id` of `shards` as tests and examples run it: unpinned, yielding when idle
    /// ([`IdleStrategy::for_tests`]), publishing every symbol, with books for 65,536 orders
    /// and 256 symbols and a 16 K-event ring. Change fields with struct update syntax. With the
    /// `test-support` feature.
    #[cfg(any(test, feature = "test-support"))]
    pub fn for_tests(id: u16, shards: u16) -> Self {
        Self {
            id,
            shards,
            core: None,
            books: BooksConfig {
                max_orders: 1 << 16,
                max_levels: 1 << 14,
                max_levels_per_side: 512,
                max_symbols: 256,
            },
            event_ring: 1 << 14,
            batch: 64,
            idle: IdleStrategy::for_tests(),
            publish: Publish::All,
            on_start: None,
        }
    }

    /// The smallest event ring that holds any one book's resync.
    pub fn min_event_ring(&self) -> usize {
        2 * self.books.max_levels_per_side as usize + 2
    }
}

/// Bytes the shard's arena needs: the books, the per-symbol state and statuses.
pub(super) fn arena_bytes(config: &ShardConfig) -> usize {
    let per_symbol = size_of::<SymbolState>() + size_of::<Statuses>();
    config.books.arena_bytes().saturating_add(
        config
            .books
            .max_symbols
            .saturating_mul(per_symbol)
            .saturating_add(2 * crate::arena::CACHE_LINE),
    )
}

/// A symbol's status: the last change of each kind the feed sent today.
type Statuses = [Option<StatusChange>; STATUS_KINDS];

/// Market-wide status changes owed to the ring at most; more are dropped (counted as a full
/// ring): the feed sends a handful a day.
const OWED_MARKET: usize = 16;

/// Per-locate state, kept by the shard beside the books.
#[derive(Clone, Copy, Debug)]
struct SymbolState {
    /// Sequence number of the symbol's last event.
    seq: u64,
    /// This shard owns the locate: it keeps its book, whether or not it is published (so a
    /// symbol added later is served complete at once).
    owned: bool,
    /// The book's changes are published.
    active: bool,
    /// Updates were not sent: a resync is owed.
    dirty: bool,
    /// Why the owed resync is owed.
    reason: ResyncReason,
    /// Its order changes are published (and its resyncs carry its orders).
    orders: bool,
    /// Its trades are published.
    trades: bool,
    /// A resync carrying its orders is owed (its order stream was turned on), though no update
    /// was held back: its updates still flow until then.
    orders_owed: bool,
    /// The epoch of the command that turned its order stream on.
    epoch: u32,
}

impl SymbolState {
    /// Owes a resync for `reason` and queues `locate` in `queue`, unless one is owed already
    /// (an Added resync stays Added: the consumer needs to know it is the first book).
    fn mark_dirty(&mut self, queue: &mut VecDeque<u16>, locate: u16, reason: ResyncReason) {
        if !self.dirty {
            self.reason = reason;
            self.dirty = true;
            queue.push_back(locate);
        }
    }

    const fn new(owned: bool) -> Self {
        Self {
            seq: 0,
            owned,
            active: false,
            dirty: false,
            reason: ResyncReason::RingFull,
            orders: false,
            trades: false,
            orders_owed: false,
            epoch: 0,
        }
    }

    /// Owes a resync with its orders (reason `Orders` unless a resync is owed already),
    /// without holding back its updates meanwhile.
    fn owe_orders(&mut self, queue: &mut VecDeque<u16>, locate: u16) {
        if !self.dirty && !self.orders_owed {
            queue.push_back(locate);
        }
        self.orders_owed = true;
    }
}

/// The ends of the rings a shard holds.
pub struct ShardRings {
    /// Events to the control plane.
    pub events: Producer<Event>,
    /// Commands from the control plane.
    pub commands: Consumer<Command>,
    /// Acks to the control plane.
    pub acks: Producer<Ack>,
}

/// The state of a running shard, owned by its thread.
pub(super) struct Shard<'a> {
    id: u16,
    shards: u16,
    books: Books<'a>,
    symbols: Region<'a, SymbolState>,
    /// Each symbol's status, by locate: what its resyncs carry.
    statuses: Region<'a, Statuses>,
    dirty: VecDeque<u16>,
    rings: ShardRings,
    stats: Arc<ShardStats>,
    idler: Idler,
    batch: usize,
    /// Which symbols are published from their stock directory message on.
    publish: Publishing,
    /// Messages were lost since the day started.
    stale: bool,
    /// Shard-wide events owed to the ring, sent before anything else.
    owed_stale: Option<(u64, u64)>,
    owed_fresh: bool,
    /// Events pushed in this loop iteration, added to the stats once at its end.
    published: u64,
    /// No order has been applied since the books were last emptied for a new day (a restart
    /// and the start-of-messages event that follows it are one new day, not two).
    day_clean: bool,
    /// Level events of this poll, published together at its end; empty between polls.
    staged: Staged,
    /// Market-wide status changes owed to the ring, oldest first. Only shard 0 sends them.
    owed_market: VecDeque<(StatusChange, u64)>,
}

impl<'a> Shard<'a> {
    /// A shard with its books carved from `arena` (which the calling, pinned thread should
    /// have created, so the memory is first-touched on its node).
    pub(super) fn new(
        config: &ShardConfig,
        arena: &'a Arena,
        rings: ShardRings,
        stats: Arc<ShardStats>,
    ) -> Result<Self, crate::book::BooksError> {
        let books = Books::new(config.books, Some(arena))?;
        let shards = config.shards.max(1);
        let symbols = Region::new(Some(arena), config.books.max_symbols, |locate| {
            SymbolState::new(locate % shards as usize == config.id as usize)
        })?;
        let statuses = Region::new(Some(arena), config.books.max_symbols, |_| {
            [None; STATUS_KINDS]
        })?;
        let publish = Publishing::new(&config.publish, config.books.max_symbols);
        Ok(Self {
            id: config.id,
            shards,
            books,
            symbols,
            statuses,
            dirty: VecDeque::with_capacity(config.books.max_symbols),
            rings,
            stats,
            idler: Idler::new(config.idle),
            batch: config.batch.max(1),
            publish,
            stale: false,
            owed_stale: None,
            owed_fresh: false,
            published: 0,
            day_clean: false,
            staged: Staged::new(),
            owed_market: VecDeque::with_capacity(OWED_MARKET),
        })
    }

    /// Runs the loop until `stop` is set.
    pub(super) fn run(&mut self, source: &mut dyn FeedSource, stop: &AtomicBool) {
        let mut ended = false;
        // Messages held back while their records load: empty between polls except after one
        // that filled its batch (see below). Kept apart from `self` so a held message is
        // handled where it lies, by reference. (A message carried into the next poll keeps its
        // own ingest time in its events; the loop's ingest-to-publish sample starts at that
        // poll, so it under-reports such a message by one poll.)
        let mut held = Held::new();
        // a grouped source's poll ends a group: all of it is applied before it is published,
        // and its level events are staged whole until then
        let grouped = source.grouped();
        if grouped {
            self.staged = Staged::for_groups();
        }
        while !stop.load(Ordering::Relaxed) {
            let started = now_ns();
            let mut work = self.flush(started);
            if !held.is_empty() && self.rings.commands.peek().is_some() {
                // a command comes after every message taken before it
                self.drain_held(&mut held);
                self.publish_staged();
            }
            work |= self.take_commands();
            if !ended {
                let batch = self.batch;
                let polled = {
                    let mut sink = |event: FeedEvent<'_>| self.on_feed(&mut held, event, started);
                    source.poll(started, batch, &mut sink)
                };
                // A full batch says the source has more waiting: the next poll follows at
                // once, so the held messages stay in the pipeline (draining it at every poll
                // left the last `DEPTH` messages of each batch without their later prefetch
                // steps). Otherwise they are handled now, before the loop idles.
                if grouped || !matches!(polled, Polled::Events(n) if n >= batch) {
                    self.drain_held(&mut held);
                }
                self.publish_staged();
                match polled {
                    Polled::Events(n) => work |= n > 0,
                    Polled::Idle => {}
                    Polled::Ended => ended = true,
                }
            }
            if work {
                self.stats.publish_book(self.books.stats());
                if let Some(feed) = source.feed_stats() {
                    self.stats.publish_feed(&feed);
                }
                self.stats.set_occupancy(
                    self.books.live_orders() as u64,
                    self.books.live_levels() as u64,
                );
                let done = now_ns();
                if self.published > 0 {
                    self.stats.add(Counter::EventsPublished, self.published);
                    self.published = 0;
                    self.stats
                        .record_ingest_to_publish(done.saturating_sub(started));
                }
                self.stats.record_loop(true, done.saturating_sub(started));
                self.idler.reset();
            } else {
                // a source counts while idle too (a request sent, an answer refused)
                if let Some(feed) = source.feed_stats() {
                    self.stats.publish_feed(&feed);
                }
                self.stats.record_loop(false, 0);
                self.idler.idle();
            }
        }
    }

    /// Sends what is owed: shard-wide events, then resyncs that fit (stamped `now_ns`). True if
    /// it sent any.
    fn flush(&mut self, now_ns: u64) -> bool {
        debug_assert!(
            self.staged.is_empty(),
            "every poll publishes what it staged"
        );
        let mut sent = false;
        if let Some((first, count)) = self.owed_stale {
            if self
                .rings
                .events
                .push(Event::Stale { first, count })
                .is_err()
            {
                return sent;
            }
            self.owed_stale = None;
            self.published += 1;
            sent = true;
        }
        if self.owed_fresh {
            if self.rings.events.push(Event::Fresh).is_err() {
                return sent;
            }
            self.owed_fresh = false;
            self.published += 1;
            sent = true;
        }
        while let Some(&(change, exchange_ns)) = self.owed_market.front() {
            let market = Event::Market {
                change,
                exchange_ns,
            };
            if self.rings.events.push(market).is_err() {
                return sent;
            }
            self.owed_market.pop_front();
            self.published += 1;
            sent = true;
        }
        while let Some(&locate) = self.dirty.front() {
            let Some(symbol) = self.symbols.get(locate as usize).copied() else {
                self.dirty.pop_front();
                continue;
            };
            if !symbol.active || !(symbol.dirty || symbol.orders_owed) {
                self.dirty.pop_front();
                if let Some(s) = self.symbols.get_mut(locate as usize) {
                    s.dirty = false;
                    s.orders_owed = false;
                }
                continue;
            }
            let levels = self.books.level_count(locate);
            let orders = match self.books.view(locate) {
                Some(book) if symbol.orders => book.order_count() as usize,
                _ => 0,
            };
            let statuses = self
                .statuses
                .get(locate as usize)
                .map_or(0, |s| s.iter().flatten().count());
            // a book whose orders would take more than half the ring goes without them (said
            // in the resync): waiting for a nearly empty ring would hold up every other resync
            let omitted = levels + orders + statuses + 1 > self.rings.events.capacity() / 2;
            let orders = if omitted { 0 } else { orders };
            if self.rings.events.slots() < levels + orders + statuses + 1 {
                break;
            }
            self.dirty.pop_front();
            let reason = if symbol.dirty {
                symbol.reason
            } else {
                ResyncReason::Orders
            };
            self.send_book(locate, reason, (levels, orders, omitted), now_ns);
            sent = true;
        }
        sent
    }

    /// Pushes a resync of `locate`: its `levels` levels then its `orders` orders (counts
    /// taken just before; `omitted` if the orders were left out), published with one store;
    /// the caller checked there is room.
    fn send_book(
        &mut self,
        locate: u16,
        reason: ResyncReason,
        (levels, orders, omitted): (usize, usize, bool),
        ingest_ns: u64,
    ) {
        let (Some(symbol), Some(book), Some(statuses)) = (
            self.symbols.get_mut(locate as usize),
            self.books.book(locate),
            self.statuses.get(locate as usize),
        ) else {
            return;
        };
        let base = symbol.seq;
        let header = Event::Resync {
            locate,
            seq: base + 1,
            reason,
            levels: levels as u32,
            orders: symbol.orders.then_some(orders as u32),
            orders_omitted: omitted,
            epoch: if symbol.orders { symbol.epoch } else { 0 },
            statuses: statuses.iter().flatten().count() as u8,
            incomplete: book.incomplete(),
            ingest_ns,
        };
        let updates = [itch::Side::Buy, itch::Side::Sell]
            .into_iter()
            .flat_map(|side| book.side(side).map(move |level| (side, level)))
            .map(|(side, level)| {
                Event::Level(LevelUpdate {
                    locate,
                    side,
                    price: level.price,
                    shares: level.shares,
                    orders: level.orders,
                    seq: 0,
                    exchange_ns: 0,
                    ingest_ns,
                })
            });
        let resting = book.orders().take(orders).map(|order| {
            Event::Order(OrderUpdate {
                locate,
                action: OrderAction::Add,
                side: order.side,
                shares: order.shares,
                seq: 0,
                reference: order.reference,
                other: 0,
                price: order.price,
                exchange_ns: 0,
                ingest_ns,
            })
        });
        let status = statuses.iter().flatten().map(|&change| {
            Event::Status(StatusUpdate {
                locate,
                seq: 0,
                exchange_ns: 0,
                change,
            })
        });
        let numbered =
            updates
                .chain(resting)
                .chain(status)
                .zip(base + 2..)
                .map(|(mut event, seq)| {
                    match &mut event {
                        Event::Level(l) => l.seq = seq,
                        Event::Order(o) => o.seq = seq,
                        Event::Status(s) => s.seq = seq,
                        _ => {}
                    }
                    event
                });
        let pushed = self
            .rings
            .events
            .push_iter(std::iter::once(header).chain(numbered)) as u64;
        symbol.seq = base + pushed;
        symbol.dirty = false;
        symbol.orders_owed = false;
        self.published += pushed;
        self.stats.add(Counter::Resyncs, 1);
    }

    /// Takes and acks up to [`COMMANDS_PER_ITERATION`] commands. True if it took any.
    fn take_commands(&mut self) -> bool {
        let mut took = false;
        for _ in 0..COMMANDS_PER_ITERATION {
            // Most iterations have no command: look at our own copy of the command ring's tail
            // first, so the idle path does not read the other rings' shared indices.
            if self.rings.commands.peek().is_none() {
                break;
            }
            // Room for the ack and for the event the command may send, before taking it.
            if self.owed_stale.is_some()
                || self.owed_fresh
                || self.rings.acks.slots() == 0
                || self.rings.events.slots() == 0
            {
                break;
            }
            let Some(command) = self.rings.commands.pop() else {
                break;
            };
            took = true;
            self.stats.add(Counter::Commands, 1);
            let outcome = self.execute(command);
            let ack = Ack {
                id: command.id(),
                shard: self.id,
                outcome,
            };
            // cannot fail: the ack ring had a free slot and only this thread pushes to it
            let _ = self.rings.acks.push(ack);
        }
        took
    }

    /// Executes `command`; an add or remove that this shard applied or that another shard owns
    /// is remembered as the operator's decision, so it outlives restarts and new days (when
    /// the feed lists the symbol again, perhaps at another locate, on another shard).
    fn execute(&mut self, command: Command) -> Result<Applied, CommandError> {
        let outcome = self.apply_command(command);
        let decision = match command {
            Command::AddSymbol { symbol, .. } => Some((symbol, true)),
            Command::RemoveSymbol { symbol, .. } => Some((symbol, false)),
            Command::Resync { .. }
            | Command::SetStreams { .. }
            | Command::Position { .. }
            | Command::SetIdle { .. } => None,
        };
        if let (Some((symbol, publish)), Ok(_)) = (decision, &outcome) {
            self.publish.decide(symbol, publish);
        }
        outcome
    }

    fn apply_command(&mut self, command: Command) -> Result<Applied, CommandError> {
        match command {
            Command::AddSymbol { symbol, .. } => {
                let Some(locate) = self.owned_locate(symbol)? else {
                    return Ok(Applied::NotOwned);
                };
                let Some(state) = self.symbols.get_mut(locate as usize) else {
                    return Err(CommandError::UnknownSymbol(symbol));
                };
                if state.active {
                    return Err(CommandError::AlreadyActive(symbol));
                }
                self.activate(locate, symbol);
                Ok(Applied::Added { locate })
            }
            Command::RemoveSymbol { symbol, .. } => {
                let Some(locate) = self.owned_locate(symbol)? else {
                    return Ok(Applied::NotOwned);
                };
                let Some(state) = self.symbols.get_mut(locate as usize) else {
                    return Err(CommandError::UnknownSymbol(symbol));
                };
                if !state.active {
                    return Err(CommandError::NotActive(symbol));
                }
                // the book stays maintained, so adding it again serves it complete at once
                state.active = false;
                state.dirty = false;
                state.orders = false;
                state.trades = false;
                state.orders_owed = false;
                state.seq += 1;
                let seq = state.seq;
                let orders = self.books.view(locate).map_or(0, |book| book.order_count());
                self.push_event(Event::SymbolRemoved {
                    locate,
                    symbol,
                    seq,
                });
                Ok(Applied::Removed { locate, orders })
            }
            Command::Resync { symbol, .. } => {
                let Some(locate) = self.owned_locate(symbol)? else {
                    return Ok(Applied::NotOwned);
                };
                if !self.symbols.get(locate as usize).is_some_and(|s| s.active) {
                    return Err(CommandError::NotActive(symbol));
                }
                self.mark_dirty(locate, ResyncReason::Requested);
                Ok(Applied::Resynced { locate })
            }
            Command::SetStreams {
                symbol,
                orders,
                trades,
                resend,
                epoch,
                ..
            } => {
                let Some(locate) = self.owned_locate(symbol)? else {
                    return Ok(Applied::NotOwned);
                };
                let Some(state) = self.symbols.get_mut(locate as usize) else {
                    return Err(CommandError::UnknownSymbol(symbol));
                };
                if !state.active {
                    return Err(CommandError::NotActive(symbol));
                }
                let turned_on = orders && !state.orders;
                state.orders = orders;
                state.trades = trades;
                if turned_on || (orders && resend) {
                    // the control plane builds its order book from this resync
                    state.epoch = epoch;
                    state.owe_orders(&mut self.dirty, locate);
                }
                Ok(Applied::Streams { locate })
            }
            Command::Position {
                symbol, reference, ..
            } => {
                let Some(locate) = self.owned_locate(symbol)? else {
                    return Ok(Applied::NotOwned);
                };
                let found = self
                    .books
                    .position(reference)
                    .filter(|p| p.order.locate == locate)
                    .map(|p| {
                        let (side, price) = (p.order.side, p.order.price);
                        let level = self.books.view(locate).and_then(|b| b.level(side, price));
                        OrderPosition {
                            side,
                            price,
                            shares: p.order.shares,
                            orders_ahead: p.orders_ahead,
                            shares_ahead: p.shares_ahead,
                            level_orders: level.map_or(0, |l| l.orders),
                            level_shares: level.map_or(0, |l| l.shares),
                        }
                    });
                Ok(Applied::Position { locate, found })
            }
            Command::SetIdle { strategy, .. } => {
                self.idler.set_strategy(strategy);
                Ok(Applied::Configured)
            }
        }
    }

    /// The locate of `symbol`: `Some` if this shard owns it, `None` if another does.
    fn owned_locate(&self, symbol: Symbol) -> Result<Option<u16>, CommandError> {
        let locate = self
            .books
            .locate_of(symbol.as_str())
            .ok_or(CommandError::UnknownSymbol(symbol))?;
        Ok(self
            .symbols
            .get(locate as usize)
            .is_some_and(|s| s.owned)
            .then_some(locate))
    }

    /// Starts publishing `locate`: the added event, then its book as a resync.
    fn activate(&mut self, locate: u16, symbol: Symbol) {
        let Some(state) = self.symbols.get_mut(locate as usize) else {
            return;
        };
        state.active = true;
        state.seq += 1;
        let seq = state.seq;
        let price_exponent = self
            .books
            .view(locate)
            .map_or(crate::feed::itch::PRICE_EXPONENT, |book| {
                book.price_exponent()
            });
        self.push_event(Event::SymbolAdded {
            locate,
            symbol,
            seq,
            price_exponent,
        });
        // its first book carries its status so far
        self.mark_dirty(locate, ResyncReason::Added);
    }

    /// Publishes the staged level events; before any other push, so events keep their order.
    fn publish_staged(&mut self) {
        self.staged.publish(&mut self.rings.events);
        self.published += self.staged.take_published();
    }

    /// Pushes an event the caller made room for (or counts it as ring-full).
    fn push_event(&mut self, event: Event) {
        self.publish_staged();
        if self.rings.events.push(event).is_ok() {
            self.published += 1;
        } else if let Some(locate) = event.locate() {
            self.stats.add(Counter::RingFull, 1);
            self.mark_dirty(locate, ResyncReason::RingFull);
        }
    }

    fn mark_dirty(&mut self, locate: u16, reason: ResyncReason) {
        if let Some(state) = self.symbols.get_mut(locate as usize) {
            state.mark_dirty(&mut self.dirty, locate, reason);
        }
    }

    /// Handles the oldest held message if no slot is free, so the next can be held.
    #[inline(always)]
    fn make_room(&mut self, held: &mut Held) {
        if held.is_full() {
            if let Some(oldest) = held.front() {
                self.on_message(oldest);
            }
            held.pop_front();
        }
    }

    /// Handles the messages held back, oldest first.
    fn drain_held(&mut self, held: &mut Held) {
        while let Some(slot) = held.front() {
            self.on_message(slot);
            held.pop_front();
        }
    }

    /// One feed event. A message is held back a few messages while its records load
    /// ([`Held`]); anything else first lets every held message through.
    fn on_feed(&mut self, held: &mut Held, event: FeedEvent<'_>, ingest_ns: u64) {
        match event {
            FeedEvent::Message(bytes) => {
                self.make_room(held);
                // a shard reads the whole feed: no loads for the books it does not keep
                let owned = owned_in(&self.symbols);
                held.push(bytes, ingest_ns, &self.books, owned);
                return;
            }
            FeedEvent::Decoded { op, locate, action } => {
                if let Some(counter) = record_counter(action) {
                    self.stats.add(counter, 1);
                }
                self.make_room(held);
                let owned = owned_in(&self.symbols);
                held.push_decoded(op, locate, ingest_ns, &self.books, owned);
                return;
            }
            _ => {}
        }
        self.drain_held(held);
        match event {
            FeedEvent::Message(_) | FeedEvent::Decoded { .. } => {}
            FeedEvent::Gap { first, count } => {
                self.stats.add(Counter::Gaps, 1);
                self.stats.add(Counter::MessagesLost, count);
                self.stale = true;
                self.owed_fresh = false;
                self.owed_stale = Some(match self.owed_stale {
                    Some((f, c)) => (f, c.saturating_add(count)),
                    None => (first, count),
                });
            }
            FeedEvent::Duplicate { count } => self.stats.add(Counter::Duplicates, count),
            FeedEvent::Malformed { .. } => self.stats.add(Counter::Malformed, 1),
            FeedEvent::Heartbeat => self.stats.add(Counter::Heartbeats, 1),
            FeedEvent::EndOfSession => {}
            FeedEvent::Rejected(why) => self.stats.add(rejection_counter(why), 1),
            FeedEvent::Restart => {
                self.stats.add(Counter::Restarts, 1);
                self.new_day();
            }
        }
    }

    fn on_message(&mut self, slot: &Slot) {
        if slot.kind == 0 {
            self.stats.add(Counter::ParseErrors, 1);
            return;
        }
        if slot.kind != DECODED {
            self.stats.count_message(slot.kind);
        }
        // read in place, not copied (see `Held::front`)
        let Some(op) = &slot.op else {
            self.stats.add(Counter::ParseErrors, 1);
            return;
        };
        let (locate, ingest_ns) = (slot.locate, slot.ingest_ns);
        match op {
            Op::Directory { symbol, .. } => {
                let symbol = *symbol;
                self.books.apply_op(op, &mut |_| {});
                self.on_listed(locate, symbol);
                return;
            }
            Op::System { code: b'O' } => {
                // start of messages: a new day on a clean slate
                self.new_day();
                return;
            }
            Op::Status {
                change, timestamp, ..
            } if change.market_wide() => {
                if self.id == 0 {
                    if self.owed_market.len() == OWED_MARKET {
                        self.owed_market.pop_front();
                        self.stats.add(Counter::RingFull, 1);
                    }
                    self.owed_market.push_back((*change, *timestamp));
                }
                return;
            }
            _ => {}
        }
        if !self.symbols.get(locate as usize).is_some_and(|s| s.owned) {
            return;
        }
        self.day_clean = false;
        if let Op::Clear { .. } = op {
            // the feed rebuilds the book from here: it is sent whole by the next loop's flush,
            // after the poll's groups are published (a DBN source ends a poll only at a group's
            // end); its changes until then are not sent (the symbol is dirty)
            self.books.apply_op(op, &mut |_| {});
            self.mark_dirty(locate, ResyncReason::Cleared);
            return;
        }
        if let Op::Status { change, .. } = op
            && let (Some(kind), Some(statuses)) =
                (change.kind(), self.statuses.get_mut(locate as usize))
        {
            // what its next resync carries
            statuses[kind] = Some(*change);
        }
        let Self {
            books,
            symbols,
            dirty,
            rings,
            stats,
            owed_stale,
            owed_fresh,
            staged,
            ..
        } = self;
        let mut publish = LevelEvents {
            symbols,
            dirty,
            events: &mut rings.events,
            staged,
            stats,
            owed: owed_stale.is_some() || *owed_fresh,
            ingest_ns,
            execution: None,
        };
        match *op {
            Op::Trade {
                kind,
                resting_side,
                printable,
                cross_type,
                shares,
                price,
                match_number,
                timestamp,
                ..
            } => publish.trade(TradeUpdate {
                locate,
                kind,
                resting_side,
                printable,
                cross_type,
                shares,
                seq: 0,
                price,
                match_number,
                exchange_ns: timestamp,
                ingest_ns,
            }),
            Op::Status {
                change, timestamp, ..
            } => {
                books.apply_op(op, &mut |_| {});
                publish.status(locate, change, timestamp);
            }
            Op::ExecuteAt {
                price, printable, ..
            } => {
                publish.execution = Some((price, printable));
                books.apply_op(op, &mut publish);
            }
            _ => books.apply_op(op, &mut publish),
        }
    }

    /// A stock directory message named `locate`: decide who owns it and whether to publish.
    fn on_listed(&mut self, locate: u16, symbol: Symbol) {
        // a locate belongs to shard `locate % shards`
        let owner = locate % self.shards;
        let publish = self.publish.wants(&symbol);
        let Some(state) = self.symbols.get_mut(locate as usize) else {
            return;
        };
        let owned = owner == self.id;
        if state.owned && !owned {
            self.books.clear_book(locate);
        }
        state.owned = owned;
        if owned && publish && !state.active {
            self.activate(locate, symbol);
        }
    }

    /// A new day: every book is emptied (once: a restart and the start-of-messages event that
    /// follows it are one day) and every published symbol resent (empty).
    fn new_day(&mut self) {
        self.publish_staged();
        if !self.day_clean {
            self.books.clear_all();
            self.day_clean = true;
        }
        for locate in 0..self.symbols.len() {
            if let Some(statuses) = self.statuses.get_mut(locate) {
                // a new day starts with no status
                *statuses = [None; STATUS_KINDS];
            }
            let Some(state) = self.symbols.get_mut(locate) else {
                continue;
            };
            if state.active {
                // locates are below 65,536 (BooksConfig)
                self.mark_dirty(locate as u16, ResyncReason::NewDay);
            }
        }
        if self.stale {
            self.stale = false;
            self.owed_stale = None;
            self.owed_fresh = true;
        }
    }
}

/// Whether the books keep (track) the symbol of a stock locate.
#[inline(always)]
fn owned_in<'s>(symbols: &'s Region<'_, SymbolState>) -> impl Fn(u16) -> bool + 's {
    |locate| symbols.get(locate as usize).is_some_and(|s| s.owned)
}

/// Turns the books' changes into events, as they are made (see [`crate::book::ChangeSink`]:
/// always inlined, so a change never goes through memory): level events for every published
/// symbol, order and trade events for those whose streams are on.
struct LevelEvents<'s, 'a> {
    symbols: &'s mut Region<'a, SymbolState>,
    dirty: &'s mut VecDeque<u16>,
    events: &'s mut Producer<Event>,
    staged: &'s mut Staged,
    stats: &'s ShardStats,
    /// Shard-wide events are owed: every change resyncs its symbol instead.
    owed: bool,
    ingest_ns: u64,
    /// An ITCH C: the execution's price and printable flag, for the trade.
    execution: Option<(i64, bool)>,
}

impl LevelEvents<'_, '_> {
    /// Stages the event `make` builds with the next seq of `locate`, if the symbol is
    /// published and, unless `always`, has lost nothing since its last resync (a book change
    /// after a lost one is meaningless until the resync; a trade or a status is not); if the
    /// ring is full, resyncs it. True if it was staged.
    #[inline(always)]
    fn send(&mut self, locate: u16, always: bool, make: impl FnOnce(u64) -> Event) -> bool {
        let Some(state) = self.symbols.get_mut(locate as usize) else {
            return false;
        };
        if !state.active || (state.dirty && !always) {
            return false;
        }
        if !self.owed && self.staged.stage(self.events, make(state.seq + 1)) {
            state.seq += 1;
            true
        } else {
            self.stats.add(Counter::RingFull, 1);
            state.mark_dirty(self.dirty, locate, ResyncReason::RingFull);
            false
        }
    }

    /// The streams of `locate` that are on: (orders, trades).
    #[inline(always)]
    fn streams(&self, locate: u16) -> (bool, bool) {
        self.symbols
            .get(locate as usize)
            .map_or((false, false), |s| (s.orders, s.trades))
    }

    /// A trade not made by the books (ITCH P, Q, B; DBN T, F): sent if trades are on.
    fn trade(&mut self, trade: TradeUpdate) {
        let counter = match trade.kind {
            TradeKind::Execution => Counter::TradesFill,
            TradeKind::Trade => Counter::TradesTape,
            TradeKind::Cross => Counter::TradesCross,
            TradeKind::Broken => Counter::TradesBroken,
        };
        self.stats.add(counter, 1);
        if self.streams(trade.locate).1 {
            self.send(trade.locate, true, |seq| {
                Event::Trade(TradeUpdate { seq, ..trade })
            });
        }
    }

    /// A status change of `locate`: always sent.
    fn status(&mut self, locate: u16, change: StatusChange, exchange_ns: u64) {
        if let StatusChange::Trading { state: b'H', .. } = change {
            self.stats.add(Counter::Halts, 1);
        }
        self.send(locate, true, |seq| {
            Event::Status(StatusUpdate {
                locate,
                seq,
                exchange_ns,
                change,
            })
        });
    }
}

impl ChangeSink for LevelEvents<'_, '_> {
    #[inline(always)]
    fn change(&mut self, change: L2Change) {
        let Some(state) = self.symbols.get_mut(change.locate as usize) else {
            return;
        };
        if !state.active || state.dirty {
            return;
        }
        let update = LevelUpdate {
            locate: change.locate,
            side: change.side,
            price: change.price,
            shares: change.shares,
            orders: change.orders,
            seq: state.seq + 1,
            exchange_ns: change.timestamp,
            ingest_ns: self.ingest_ns,
        };
        if !self.owed && self.staged.stage(self.events, Event::Level(update)) {
            state.seq += 1;
        } else {
            self.stats.add(Counter::RingFull, 1);
            state.mark_dirty(self.dirty, change.locate, ResyncReason::RingFull);
        }
    }

    #[inline(always)]
    fn order(&mut self, change: OrderChange) {
        let executed = change.action == OrderAction::Execute;
        let (orders, trades) = self.streams(change.locate);
        if orders {
            let ingest_ns = self.ingest_ns;
            let sent = self.send(change.locate, false, |seq| {
                Event::Order(OrderUpdate {
                    locate: change.locate,
                    action: change.action,
                    side: change.side,
                    shares: change.shares,
                    seq,
                    reference: change.reference,
                    other: change.other,
                    price: change.price,
                    exchange_ns: change.timestamp,
                    ingest_ns,
                })
            });
            if sent {
                self.stats.add(Counter::OrderEvents, 1);
            }
        }
        if trades && executed {
            let (price, printable) = self.execution.unwrap_or((change.price, true));
            let trade = TradeUpdate {
                locate: change.locate,
                kind: TradeKind::Execution,
                resting_side: Some(change.side),
                printable,
                cross_type: 0,
                shares: change.shares,
                seq: 0,
                price,
                match_number: change.other,
                exchange_ns: change.timestamp,
                ingest_ns: self.ingest_ns,
            };
            self.send(change.locate, true, |seq| {
                Event::Trade(TradeUpdate { seq, ..trade })
            });
        }
    }
}

/// Which symbols a shard publishes when the feed lists them: what was configured, overridden
/// by every add or remove the operator made since startup. The overrides are kept by name, so
/// they hold across restarts and new days, whatever locate the symbol gets.
#[derive(Debug)]
struct Publishing {
    /// `None`: every symbol.
    configured: Option<HashSet<Symbol>>,
    /// The operator's last word per symbol: publish (added) or not (removed).
    decided: HashMap<Symbol, bool>,
}

impl Publishing {
    /// Reserves room for `symbols` decisions, so a command allocates only past that many.
    fn new(publish: &Publish, symbols: usize) -> Self {
        Self {
            configured: match publish {
                Publish::All => None,
                Publish::Only(list) => Some(list.iter().copied().collect()),
            },
            decided: HashMap::with_capacity(symbols),
        }
    }

    fn wants(&self, symbol: &Symbol) -> bool {
        match self.decided.get(symbol) {
            Some(&publish) => publish,
            None => self
                .configured
                .as_ref()
                .is_none_or(|set| set.contains(symbol)),
        }
    }

    fn decide(&mut self, symbol: Symbol, publish: bool) {
        self.decided.insert(symbol, publish);
    }
}

/// The counter of each [`Rejection`].
const fn rejection_counter(why: Rejection) -> Counter {
    match why {
        Rejection::ForeignSender => Counter::ForeignSender,
        Rejection::ForeignSession => Counter::ForeignSession,
        Rejection::ImplausibleSequence => Counter::ImplausibleSequence,
        Rejection::FramingLost => Counter::FramingLost,
        Rejection::UndefinedPrice => Counter::UndefinedPrice,
        Rejection::NoSide => Counter::NoSide,
        Rejection::UnsupportedRecord => Counter::UnsupportedRecord,
        Rejection::UnknownInstrument => Counter::UnknownInstrument,
    }
}

/// The counter of a DBN record's action byte; none for 0 (an op its source made itself).
const fn record_counter(action: u8) -> Option<Counter> {
    Some(match action {
        0 => return None,
        b'A' => Counter::RecordsAdd,
        b'C' => Counter::RecordsCancel,
        b'M' => Counter::RecordsModify,
        b'R' => Counter::RecordsClear,
        b'T' => Counter::RecordsTrade,
        b'F' => Counter::RecordsFill,
        b'N' => Counter::RecordsNone,
        _ => Counter::RecordsOther,
    })
}
