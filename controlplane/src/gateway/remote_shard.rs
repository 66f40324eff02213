//! A shard of a gateway: one partition's books as NATS brings them, answering the control
//! plane's commands and sending it events exactly as a data-plane shard does
//! (`dataplane::runtime::event` is the contract), so the hub, the book service and every
//! subscriber above it run unchanged.
//!
//! Each symbol has four [`Replica`]s (levels, orders, status, trades), fed by the intake in
//! subject order. A live update becomes the event a shard would have sent; any discontinuity
//! (a Resync on a subject, a seq gap, a checksum that does not add up) makes the symbol owe a
//! resync, sent — the whole book, its orders when asked for, its status — once its replicas
//! are whole again; subscribers see a Resync and a fresh snapshot, never a wrong book.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use dataplane::feed::itch::Side;
use dataplane::runtime::External;
use dataplane::runtime::command::{Ack, Applied, Command, CommandError, OrderPosition};
use dataplane::runtime::event::{
    Event, LevelUpdate, OrderAction, OrderUpdate, ResyncReason, StatusChange, StatusUpdate,
    TradeKind, TradeUpdate,
};
use dataplane::runtime::idle::{IdleStrategy, Idler};
use dataplane::symbol::Symbol;
use tokio::sync::mpsc::{Receiver, UnboundedSender};

use super::replica::{Content, Replica, Step, order_update};
use crate::hub::Stream;
use crate::orders::OrderBook;
use crate::pb::{self, book_update::Update};

/// How the remote shard idles when nothing comes: it is not pinned, so it sleeps soon.
const IDLE: IdleStrategy = IdleStrategy::Backoff {
    spins: 0,
    yields: 256,
    park: Duration::from_micros(100),
};

/// How long a symbol waits for a snapshot it asked for before asking again.
const ASK_AGAIN: Duration = Duration::from_secs(2);

/// What the intake hands the shard.
#[derive(Debug)]
pub enum Inbound {
    /// The next update of a symbol's subject.
    Update {
        /// Its stream.
        stream: Stream,
        /// Its symbol.
        symbol: String,
        /// The update.
        update: Update,
    },
    /// A snapshot from the partition's bucket.
    Stored {
        /// Its stream.
        stream: Stream,
        /// Its symbol.
        symbol: String,
        /// The snapshot.
        update: Update,
    },
    /// No instance of the partition has beaten for a while: nothing says the books are
    /// current, so they are flagged stale.
    PublisherSilent,
    /// An instance beats again: the books are sent again, no longer stale.
    PublisherHeard,
}

/// What the shard asks of the intake: a fresh snapshot of a symbol's stream (from the bucket
/// and, failing that, from the publisher).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// The stream.
    pub stream: Stream,
    /// The symbol.
    pub symbol: String,
}

/// One symbol of the partition.
#[derive(Debug)]
struct Sym {
    locate: u16,
    symbol: Symbol,
    levels: Replica,
    orders: Replica,
    status: Replica,
    trades: Replica,
    /// The hub publishes it.
    published: bool,
    /// Removed by a command: not published again until added.
    withdrawn: bool,
    /// Its event seq, as a shard numbers a symbol's events.
    seq: u64,
    /// A resync is due, for this reason.
    owed: Option<ResyncReason>,
    orders_on: bool,
    trades_on: bool,
    epoch: u32,
    /// When it last asked for the snapshots its resync waits for.
    asked: Option<Instant>,
}

impl Sym {
    fn new(locate: u16, symbol: Symbol) -> Self {
        Self {
            locate,
            symbol,
            levels: Replica::new(Content::Levels {
                bids: Default::default(),
                asks: Default::default(),
            }),
            orders: Replica::new(Content::Orders(Box::default())),
            status: Replica::new(Content::Status(None)),
            trades: Replica::new(Content::Trades),
            published: false,
            withdrawn: false,
            seq: 0,
            owed: Some(ResyncReason::Added),
            orders_on: false,
            trades_on: false,
            epoch: 0,
            asked: None,
        }
    }

    /// The streams whose replicas a resync waits for and that are not whole.
    fn missing(&self) -> Vec<Stream> {
        let mut out = Vec::new();
        if !self.levels.is_live() {
            out.push(Stream::Levels);
        }
        if !self.status.is_live() {
            out.push(Stream::Status);
        }
        if self.orders_on && !self.orders.is_live() {
            out.push(Stream::Orders);
        }
        out
    }

    fn replica(&mut self, stream: Stream) -> &mut Replica {
        match stream {
            Stream::Levels => &mut self.levels,
            Stream::Orders => &mut self.orders,
            Stream::Status => &mut self.status,
            Stream::Trades => &mut self.trades,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Its replicas a resync needs are whole.
    fn ready(&self) -> bool {
        self.levels.is_live() && self.status.is_live() && (!self.orders_on || self.orders.is_live())
    }

    fn book(&self) -> Option<&OrderBook> {
        match &self.orders.content {
            Content::Orders(book) => Some(book),
            _ => None,
        }
    }
}

/// The shard's state.
pub struct RemoteShard {
    ext: External,
    inbound: Receiver<Inbound>,
    wants: UnboundedSender<Want>,
    symbols: HashMap<String, Sym>,
    by_locate: HashMap<u16, String>,
    /// Hands out locates: shared by every remote shard of the gateway, as the hub keys its
    /// books by locate across shards.
    locates: Arc<AtomicU16>,
    /// The market-wide status last sent.
    market: (Option<[u64; 3]>, u32),
    /// A symbol's snapshot said the feed lost messages, or the publisher fell silent: the
    /// shard is stale.
    stale: bool,
    /// The partition's publisher is silent ([`Inbound::PublisherSilent`]).
    publisher_silent: bool,
}

impl RemoteShard {
    /// A shard over `ext`'s rings, fed by `inbound`, asking for snapshots on `wants`, taking
    /// its symbols' locates from `locates` (one counter for all the gateway's shards,
    /// starting at 1).
    pub fn new(
        ext: External,
        inbound: Receiver<Inbound>,
        wants: UnboundedSender<Want>,
        locates: Arc<AtomicU16>,
    ) -> Self {
        Self {
            ext,
            inbound,
            wants,
            symbols: HashMap::new(),
            by_locate: HashMap::new(),
            locates,
            market: (None, 0),
            stale: false,
            publisher_silent: false,
        }
    }

    /// Runs until the data plane stops.
    pub fn run(mut self) {
        let mut idler = Idler::new(IDLE);
        while !self.ext.stop.load(Ordering::Relaxed) {
            let mut busy = false;
            while let Some(command) = self.ext.commands.pop() {
                busy = true;
                let ack = self.command(command);
                // the control plane reads acks as fast as it sends commands; a full ring
                // means it stopped waiting, and the ack is not needed
                let _ = self.ext.acks.push(ack);
            }
            for _ in 0..1024 {
                match self.inbound.try_recv() {
                    Ok(inbound) => {
                        busy = true;
                        // counted as messages of no ITCH type: the stats' total is what came
                        self.ext.stats.count_message(0);
                        self.take(inbound);
                    }
                    Err(_) => break,
                }
            }
            busy |= self.announce_silence();
            busy |= self.pay_resyncs();
            if busy {
                idler.reset();
            } else {
                idler.idle();
            }
        }
    }

    fn sym(&mut self, name: &str) -> Option<&mut Sym> {
        if !self.symbols.contains_key(name) {
            let symbol = Symbol::parse(name)?;
            // 0 is no symbol's; past u16::MAX symbols a gateway holds no more
            let locate = self
                .locates
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_add(1))
                .ok()?;
            self.by_locate.insert(locate, name.to_owned());
            self.symbols
                .insert(name.to_owned(), Sym::new(locate, symbol));
        }
        self.symbols.get_mut(name)
    }

    /// Flags every book stale while the publisher is silent (once; again if the ring was
    /// full); true if it did.
    fn announce_silence(&mut self) -> bool {
        if !self.publisher_silent || self.stale {
            return false;
        }
        if !self.push_all(&[Event::Stale { first: 0, count: 0 }]) {
            return false;
        }
        self.stale = true;
        true
    }

    /// The publisher is heard again: the books are no longer stale for its silence (unless
    /// a snapshot says the feed itself lost messages), and every symbol is sent again.
    fn publisher_heard(&mut self) {
        if !self.publisher_silent {
            return;
        }
        self.publisher_silent = false;
        let feed_stale = self.symbols.values().any(|s| s.levels.stale);
        if self.stale && !feed_stale && self.push_all(&[Event::Fresh]) {
            self.stale = false;
        }
        for sym in self.symbols.values_mut() {
            if sym.published && !sym.withdrawn {
                sym.owed.get_or_insert(ResyncReason::Requested);
            }
        }
    }

    fn take(&mut self, inbound: Inbound) {
        let (stream, symbol, update, stored) = match inbound {
            Inbound::PublisherSilent => {
                self.publisher_silent = true;
                self.announce_silence();
                return;
            }
            Inbound::PublisherHeard => return self.publisher_heard(),
            Inbound::Update {
                stream,
                symbol,
                update,
            } => (stream, symbol, update, false),
            Inbound::Stored {
                stream,
                symbol,
                update,
            } => (stream, symbol, update, true),
        };
        let Some(sym) = self.sym(&symbol) else {
            tracing::warn!(symbol, "a symbol name the gateway cannot hold; ignored");
            return;
        };
        let replica = sym.replica(stream);
        let step = if stored {
            replica.restore(update)
        } else {
            replica.apply(update)
        };
        match step {
            Step::Nothing => {}
            Step::Whole => {
                if sym.owed.is_none() {
                    // a subject started over (a new publisher, or a Resync upstream)
                    sym.owed = Some(reason_of(sym.replica(stream).reason));
                }
            }
            Step::Lost(why) => {
                tracing::info!(symbol, stream = ?stream, why, "a subject broke off; resyncing");
                crate::nats::counters::add(
                    crate::nats::counters::Counter::SubjectBreaks,
                    stream,
                    1,
                );
                sym.owed.get_or_insert(ResyncReason::RingFull);
                if stream != Stream::Trades {
                    let _ = self.wants.send(Want { stream, symbol });
                }
            }
            Step::Applied(update) => self.pass_on(&symbol, update),
            Step::Removed => self.removed(&symbol),
        }
    }

    /// A live update of a symbol that owes nothing: the event a shard would send.
    fn pass_on(&mut self, name: &str, update: Update) {
        let mut market = Vec::new();
        let Some(sym) = self.symbols.get_mut(name) else {
            return;
        };
        if !sym.published || sym.owed.is_some() {
            return;
        }
        let locate = sym.locate;
        // the server's clock is this process's: what a client reads as ingest is when the
        // update reached the gateway (exchange_ns is the feed's, passed on as it came)
        let arrived = dataplane::clock::now_ns();
        let events: Vec<Event> = match update {
            Update::Delta(d) => {
                let Some(level) = d.level else { return };
                let t = d.timestamps.unwrap_or_default();
                vec![Event::Level(LevelUpdate {
                    locate,
                    side: if d.side == pb::Side::Ask as i32 {
                        Side::Sell
                    } else {
                        Side::Buy
                    },
                    price: level.price,
                    shares: level.shares,
                    orders: level.orders,
                    seq: sym.next_seq(),
                    exchange_ns: t.exchange_ns,
                    ingest_ns: arrived,
                })]
            }
            Update::Order(e) if sym.orders_on => match order_update(&e) {
                Ok(u) => vec![Event::Order(OrderUpdate {
                    locate,
                    seq: sym.next_seq(),
                    ingest_ns: arrived,
                    ..u
                })],
                Err(_) => return,
            },
            Update::Trade(t) if sym.trades_on => vec![Event::Trade(TradeUpdate {
                ingest_ns: arrived,
                ..trade(locate, sym.next_seq(), &t)
            })],
            Update::Status(s) => {
                market.push(s.mwcb);
                status_changes(&s, pb::StatusChange::try_from(s.change).ok())
                    .into_iter()
                    .map(|change| {
                        Event::Status(StatusUpdate {
                            locate,
                            seq: sym.next_seq(),
                            exchange_ns: s.timestamps.unwrap_or_default().exchange_ns,
                            change,
                        })
                    })
                    .collect()
            }
            _ => return,
        };
        if !self.push_all(&events) {
            // the hub is behind: what it missed comes as a resync
            if let Some(sym) = self.symbols.get_mut(name) {
                sym.seq -= events.len() as u64;
                sym.owed = Some(ResyncReason::RingFull);
            }
        }
        for mwcb in market.into_iter().flatten() {
            self.market_changed(&mwcb);
        }
    }

    fn market_changed(&mut self, mwcb: &pb::Mwcb) {
        let levels = [mwcb.level1, mwcb.level2, mwcb.level3];
        let mut events = Vec::new();
        if self.market.0 != Some(levels) {
            events.push(Event::Market {
                change: StatusChange::MwcbLevels { levels },
                exchange_ns: 0,
            });
        }
        if mwcb.breached != self.market.1 && mwcb.breached > 0 {
            events.push(Event::Market {
                change: StatusChange::MwcbBreach {
                    level: b'0' + u8::try_from(mwcb.breached.min(3)).unwrap_or(0),
                },
                exchange_ns: 0,
            });
        }
        if !events.is_empty() && self.push_all(&events) {
            self.market = (Some(levels), mwcb.breached);
        }
    }

    fn removed(&mut self, name: &str) {
        let Some(sym) = self.symbols.remove(name) else {
            return;
        };
        self.by_locate.remove(&sym.locate);
        let mut sym = sym;
        if sym.published {
            let event = Event::SymbolRemoved {
                locate: sym.locate,
                symbol: sym.symbol,
                seq: sym.next_seq(),
            };
            // the hub must hear it: wait for room (it drains its ring continuously)
            while self.ext.events.push(event).is_err() {
                if self.ext.stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::yield_now();
            }
        }
    }

    /// Pushes all of `events` or none (a resync goes whole).
    fn push_all(&mut self, events: &[Event]) -> bool {
        if self.ext.events.slots() < events.len() {
            return false;
        }
        for &event in events {
            if self.ext.events.push(event).is_err() {
                return false;
            }
        }
        true
    }

    /// Sends the resyncs owed by symbols now whole, and asks again for what the others wait
    /// for; true if any went.
    fn pay_resyncs(&mut self) -> bool {
        let now = Instant::now();
        for (name, sym) in &mut self.symbols {
            if sym.owed.is_none()
                || sym.withdrawn
                || sym.asked.is_some_and(|at| now - at < ASK_AGAIN)
            {
                continue;
            }
            let missing = sym.missing();
            if missing.is_empty() {
                continue;
            }
            // the first ask waits a round: the subject's own snapshot may be on its way
            if sym.asked.is_some() {
                for stream in missing {
                    let _ = self.wants.send(Want {
                        stream,
                        symbol: name.clone(),
                    });
                }
            }
            sym.asked = Some(now);
        }
        let due: Vec<String> = self
            .symbols
            .iter()
            .filter(|(_, s)| s.owed.is_some() && !s.withdrawn && s.ready())
            .map(|(n, _)| n.clone())
            .collect();
        let mut sent = false;
        for name in due {
            sent |= self.resync(&name);
        }
        sent
    }

    /// The symbol's whole state as a shard sends it: SymbolAdded first if new to the hub,
    /// then a Resync with its levels, its orders if on, its status.
    fn resync(&mut self, name: &str) -> bool {
        let stale_now = self.symbols.get(name).is_some_and(|s| s.levels.stale);
        let Some(sym) = self.symbols.get_mut(name) else {
            return false;
        };
        let Some(mut reason) = sym.owed else {
            return false;
        };
        let mut events = Vec::new();
        let seq_before = sym.seq;
        if !sym.published {
            reason = ResyncReason::Added;
            events.push(Event::SymbolAdded {
                locate: sym.locate,
                symbol: sym.symbol,
                seq: sym.next_seq(),
                price_exponent: sym.levels.price_exponent,
            });
        }
        let locate = sym.locate;
        let now = dataplane::clock::now_ns();
        let mut levels = Vec::new();
        if let Content::Levels { bids, asks } = &sym.levels.content {
            for (side, book) in [(Side::Buy, bids), (Side::Sell, asks)] {
                for (&price, &(shares, orders)) in book {
                    levels.push((side, price, shares, orders));
                }
            }
        }
        let orders: Vec<(Side, i64, u64, u64)> = if sym.orders_on {
            sym.book().map(|b| b.orders().collect()).unwrap_or_default()
        } else {
            Vec::new()
        };
        let statuses = match &sym.status.content {
            Content::Status(Some(s)) => status_changes(s, None),
            _ => Vec::new(),
        };
        events.push(Event::Resync {
            locate,
            seq: sym.next_seq(),
            reason,
            levels: u32::try_from(levels.len()).unwrap_or(u32::MAX),
            orders: sym
                .orders_on
                .then(|| u32::try_from(orders.len()).unwrap_or(u32::MAX)),
            orders_omitted: false,
            epoch: if sym.orders_on { sym.epoch } else { 0 },
            statuses: u8::try_from(statuses.len()).unwrap_or(u8::MAX),
            incomplete: sym.levels.incomplete,
            ingest_ns: now,
        });
        for (side, price, shares, orders) in levels {
            events.push(Event::Level(LevelUpdate {
                locate,
                side,
                price,
                shares,
                orders,
                seq: sym.next_seq(),
                exchange_ns: 0,
                ingest_ns: now,
            }));
        }
        for (side, price, reference, shares) in orders {
            events.push(Event::Order(OrderUpdate {
                locate,
                action: OrderAction::Add,
                side,
                shares: u32::try_from(shares).unwrap_or(u32::MAX),
                seq: sym.next_seq(),
                reference,
                other: 0,
                price,
                exchange_ns: 0,
                ingest_ns: now,
            }));
        }
        for change in statuses {
            events.push(Event::Status(StatusUpdate {
                locate,
                seq: sym.next_seq(),
                exchange_ns: 0,
                change,
            }));
        }
        let was_published = sym.published;
        // the hub learns of staleness before the book it concerns
        let stale_event = (stale_now && !self.stale).then_some(Event::Stale { first: 0, count: 0 });
        let fresh_event = (reason == ResyncReason::NewDay && self.stale).then_some(Event::Fresh);
        let all: Vec<Event> = stale_event
            .into_iter()
            .chain(fresh_event)
            .chain(events)
            .collect();
        if all.len() > self.ext.events.capacity() / 2 {
            tracing::warn!(
                symbol = name,
                events = all.len(),
                "a book too large for the event ring"
            );
        }
        if !self.push_all(&all) {
            if let Some(sym) = self.symbols.get_mut(name) {
                sym.seq = seq_before;
            }
            return false;
        }
        if stale_event.is_some() {
            self.stale = true;
        }
        if fresh_event.is_some() {
            self.stale = false;
        }
        if let Some(sym) = self.symbols.get_mut(name) {
            sym.owed = None;
            sym.asked = None;
            sym.published = true;
            if !was_published {
                tracing::debug!(symbol = name, "published from NATS");
            }
        }
        true
    }

    fn command(&mut self, command: Command) -> Ack {
        let id = command.id();
        let outcome = self.answer(command);
        Ack {
            id,
            shard: self.ext.id,
            outcome,
        }
    }

    fn answer(&mut self, command: Command) -> Result<Applied, CommandError> {
        match command {
            Command::SetIdle { .. } => Ok(Applied::Configured),
            Command::AddSymbol { symbol, .. } => {
                let sym = self
                    .symbols
                    .get_mut(symbol.as_str())
                    .ok_or(CommandError::UnknownSymbol(symbol))?;
                if sym.published || !sym.withdrawn {
                    return Err(CommandError::AlreadyActive(symbol));
                }
                sym.withdrawn = false;
                sym.owed = Some(ResyncReason::Added);
                Ok(Applied::Added { locate: sym.locate })
            }
            Command::RemoveSymbol { symbol, .. } => {
                let sym = self.published(symbol)?;
                let event = Event::SymbolRemoved {
                    locate: sym.locate,
                    symbol,
                    seq: sym.seq + 1,
                };
                let (locate, orders) = (sym.locate, sym.book().map_or(0, OrderBook::len));
                if self.ext.events.push(event).is_err() {
                    return Err(CommandError::NotActive(symbol));
                }
                if let Some(sym) = self.symbols.get_mut(symbol.as_str()) {
                    sym.seq += 1;
                    sym.published = false;
                    sym.withdrawn = true;
                    sym.orders_on = false;
                    sym.trades_on = false;
                    sym.owed = Some(ResyncReason::Added);
                }
                Ok(Applied::Removed {
                    locate,
                    orders: u32::try_from(orders).unwrap_or(u32::MAX),
                })
            }
            Command::Resync { symbol, .. } => {
                let sym = self.published(symbol)?;
                sym.owed.get_or_insert(ResyncReason::Requested);
                Ok(Applied::Resynced { locate: sym.locate })
            }
            Command::SetStreams {
                symbol,
                orders,
                trades,
                resend,
                epoch,
                ..
            } => {
                let sym = self.published(symbol)?;
                sym.trades_on = trades;
                if orders && (!sym.orders_on || resend) {
                    sym.orders_on = true;
                    sym.epoch = epoch;
                    sym.owed.get_or_insert(ResyncReason::Orders);
                } else if !orders {
                    sym.orders_on = false;
                    sym.epoch = 0;
                }
                Ok(Applied::Streams { locate: sym.locate })
            }
            Command::Position {
                symbol, reference, ..
            } => {
                let sym = self.published(symbol)?;
                let found = sym.book().and_then(|b| position(b, reference));
                Ok(Applied::Position {
                    locate: sym.locate,
                    found,
                })
            }
        }
    }

    /// The symbol if this shard publishes it; another shard's symbol is unknown here (so its
    /// owner's answer wins when the data plane combines the shards' answers).
    fn published(&mut self, symbol: Symbol) -> Result<&mut Sym, CommandError> {
        let sym = self
            .symbols
            .get_mut(symbol.as_str())
            .ok_or(CommandError::UnknownSymbol(symbol))?;
        if sym.published {
            Ok(sym)
        } else {
            Err(CommandError::NotActive(symbol))
        }
    }
}

/// The data plane's reason for a resync of a subject that started over for `reason`.
fn reason_of(reason: Option<pb::ResyncReason>) -> ResyncReason {
    match reason {
        Some(pb::ResyncReason::NewDay) => ResyncReason::NewDay,
        Some(pb::ResyncReason::Cleared) => ResyncReason::Cleared,
        Some(pb::ResyncReason::Requested) => ResyncReason::Requested,
        _ => ResyncReason::RingFull,
    }
}

/// Where `reference` stands in `book`.
fn position(book: &OrderBook, reference: u64) -> Option<OrderPosition> {
    let (side, price, shares) = book.get(reference)?;
    let mut pos = OrderPosition {
        side,
        price,
        shares: u32::try_from(shares).unwrap_or(u32::MAX),
        orders_ahead: 0,
        shares_ahead: 0,
        level_orders: 0,
        level_shares: 0,
    };
    let mut ahead = true;
    for (s, p, r, sh) in book.orders().filter(|o| o.0 == side && o.1 == price) {
        let _ = (s, p);
        pos.level_orders += 1;
        pos.level_shares += sh;
        if r == reference {
            ahead = false;
        } else if ahead {
            pos.orders_ahead += 1;
            pos.shares_ahead += sh;
        }
    }
    Some(pos)
}

fn trade(locate: u16, seq: u64, t: &pb::Trade) -> TradeUpdate {
    let ts = t.timestamps.unwrap_or_default();
    TradeUpdate {
        locate,
        kind: match pb::TradeKind::try_from(t.kind) {
            Ok(pb::TradeKind::Trade) => TradeKind::Trade,
            Ok(pb::TradeKind::Cross) => TradeKind::Cross,
            Ok(pb::TradeKind::Broken) => TradeKind::Broken,
            _ => TradeKind::Execution,
        },
        resting_side: match pb::Side::try_from(t.resting_side) {
            Ok(pb::Side::Bid) => Some(Side::Buy),
            Ok(pb::Side::Ask) => Some(Side::Sell),
            _ => None,
        },
        printable: t.printable,
        cross_type: u8::try_from(t.cross_type).unwrap_or(0),
        shares: u32::try_from(t.shares).unwrap_or(u32::MAX),
        seq,
        price: t.price,
        match_number: t.match_number,
        exchange_ns: ts.exchange_ns,
        ingest_ns: ts.ingest_ns,
    }
}

/// The data plane's status changes a status message stands for: the one its `change` names,
/// or (`None`, a whole status) every part it holds. Market-wide parts are not among them.
fn status_changes(s: &pb::TradingStatus, change: Option<pb::StatusChange>) -> Vec<StatusChange> {
    use pb::StatusChange as K;
    let all = matches!(change, None | Some(K::Snapshot | K::Unspecified));
    let wants = |k: K| all || change == Some(k);
    let mut out = Vec::new();
    let state = match pb::TradingState::try_from(s.state) {
        Ok(pb::TradingState::Trading) => Some(b'T'),
        Ok(pb::TradingState::Halted) => Some(b'H'),
        Ok(pb::TradingState::Paused) => Some(b'P'),
        Ok(pb::TradingState::QuotationOnly) => Some(b'Q'),
        _ => None,
    };
    if wants(K::TradingState)
        && let Some(state) = state
    {
        let mut reason = [b' '; 4];
        for (r, b) in reason.iter_mut().zip(s.reason.bytes()) {
            *r = b;
        }
        out.push(StatusChange::Trading { state, reason });
    }
    if wants(K::RegSho) && (s.short_sale_restricted || !all) {
        out.push(StatusChange::RegSho {
            action: if s.short_sale_restricted { b'1' } else { b'0' },
        });
    }
    let ticks = |p: i64| u32::try_from(p).unwrap_or(0);
    if wants(K::LuldCollar)
        && let Some(l) = s.luld
    {
        out.push(StatusChange::Luld {
            reference: ticks(l.reference_price),
            upper: ticks(l.upper_price),
            lower: ticks(l.lower_price),
            extension: l.extension,
        });
    }
    if wants(K::Ipo)
        && let Some(i) = s.ipo
    {
        out.push(StatusChange::Ipo {
            release_time: i.release_time_s,
            qualifier: u8::try_from(i.qualifier).unwrap_or(0),
            price: ticks(i.price),
        });
    }
    if wants(K::Imbalance)
        && let Some(i) = s.imbalance
    {
        out.push(StatusChange::Imbalance {
            paired: i.paired_shares,
            imbalance: i.imbalance_shares,
            far: ticks(i.far_price),
            near: ticks(i.near_price),
            reference: ticks(i.reference_price),
            direction: u8::try_from(i.direction).unwrap_or(0),
            cross_type: u8::try_from(i.cross_type).unwrap_or(0),
            variation: u8::try_from(i.price_variation).unwrap_or(0),
        });
    }
    out
}
