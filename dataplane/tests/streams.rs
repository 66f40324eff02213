//! The order, trade and status streams end to end, differentially: a real data plane over a
//! generated ITCH day (a gated [`MemorySource`], so the streams are turned on at exact points
//! of it), its events drained as the feed plays and checked three ways:
//!
//! - an L3 model built from nothing but the events (a resync's order adds, then the order
//!   events) must accept every event (no unknown reference, wrong side or price, over-take,
//!   wrong delete size), agree with the level events after each order event, and end with
//!   every queue of [`ReferenceBooks`] fed the same messages;
//! - every order, trade and status event of a symbol must be, in order, the one computed
//!   independently from the raw messages (parsed with [`parse`], orders tracked by the test);
//! - each symbol's sequence is contiguous across all event kinds, no resync but the expected
//!   ones came (never a ring-full one), and a resync's orders are the reference's queues at that
//!   point in priority order (when a stream is turned on mid-day, and again for every order
//!   book at the end of the day).
//!
//! The generated stream is spiced with messages the generator makes rarely or not at all (Q,
//! B, Y, J, K, V, W, H with other states) and every other C execution is made non-printable.
//! `Command::Position` is checked against the reference's queues, and two tests pin down that
//! a symbol's status changes must reach the consumer even while its book is owed as a resync.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::book::BooksConfig;
use dataplane::book::reference::ReferenceBooks;
use dataplane::feed::generator::{Generator, GeneratorConfig, Profile};
use dataplane::feed::itch::{Message, Side, parse};
use dataplane::ring::Consumer;
use dataplane::runtime::command::{Applied, Command, OrderPosition};
use dataplane::runtime::event::{
    Event, OrderAction, OrderUpdate, ResyncReason, StatusChange, StatusUpdate, TradeKind,
    TradeUpdate,
};
use dataplane::runtime::{DataPlane, ShardConfig};
use dataplane::source::FeedSource;
use dataplane::source::memory::{Gate, MemorySource, Scripted};
use dataplane::symbol::Symbol;
use dataplane::topology::Topology;

const WAIT: Duration = Duration::from_secs(60);

/// Messages released at a time: the events of one release (about three a message at most)
/// always fit in the ring, however slowly the test drains.
const CHUNK: usize = 50_000;

/// One extra message (Q, B, Y, J, K, H, V or W) after every this many body messages.
const EXTRA_EVERY: usize = 1_500;

/// The event ring: holds a few releases and any one book's resync with its orders.
const EVENT_RING: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The day

/// A generated day: start of day, then the body.
struct Day {
    messages: Vec<Vec<u8>>,
    /// Locate `i + 1` is `symbols[i]`.
    symbols: Vec<Symbol>,
    /// Index of the first message after the start of day (after the market-open S `Q`).
    opening: usize,
}

fn timestamp_of(m: &[u8]) -> u64 {
    let mut ts = [0u8; 8];
    ts[2..].copy_from_slice(&m[5..11]);
    u64::from_be_bytes(ts)
}

/// A message of `kind` and `len` bytes with its header filled in (tracking 0).
fn framed(kind: u8, len: usize, locate: u16, timestamp: u64) -> Vec<u8> {
    let mut m = vec![0u8; len];
    m[0] = kind;
    m[1..3].copy_from_slice(&locate.to_be_bytes());
    m[5..11].copy_from_slice(&timestamp.to_be_bytes()[2..]);
    m
}

fn put(m: &mut [u8], at: usize, bytes: &[u8]) {
    m[at..at + bytes.len()].copy_from_slice(bytes);
}

/// The `n`th extra message, for `locate` (`symbol`), stamped `timestamp`: kinds the generator
/// never sends, laid out by the ITCH 5.0 spec.
fn extra(n: usize, locate: u16, symbol: Symbol, timestamp: u64) -> Vec<u8> {
    let stock = symbol.to_itch();
    let k = n as u32;
    match n % 9 {
        0 => {
            let mut m = framed(b'Q', 40, locate, timestamp);
            put(&mut m, 11, &(u64::from(k) * 1_000 + 7).to_be_bytes());
            put(&mut m, 19, &stock);
            put(&mut m, 27, &(1_000_000 + k * 100).to_be_bytes());
            put(&mut m, 31, &((1u64 << 40) + n as u64).to_be_bytes());
            m[39] = [b'O', b'C', b'H', b'I'][n / 9 % 4];
            m
        }
        1 => {
            let mut m = framed(b'B', 19, locate, timestamp);
            put(&mut m, 11, &(n as u64 / 2 + 1).to_be_bytes());
            m
        }
        2 => {
            let mut m = framed(b'Y', 20, locate, timestamp);
            put(&mut m, 11, &stock);
            m[19] = [b'0', b'1', b'2'][n / 9 % 3];
            m
        }
        3 => {
            let mut m = framed(b'J', 35, locate, timestamp);
            put(&mut m, 11, &stock);
            put(&mut m, 19, &(500_000 + k).to_be_bytes());
            put(&mut m, 23, &(550_000 + k).to_be_bytes());
            put(&mut m, 27, &(450_000 + k).to_be_bytes());
            put(&mut m, 31, &(k % 5).to_be_bytes());
            m
        }
        4 => {
            let mut m = framed(b'K', 28, locate, timestamp);
            put(&mut m, 11, &stock);
            put(&mut m, 19, &(34_200 + k).to_be_bytes());
            m[23] = [b'A', b'C'][n % 2];
            put(&mut m, 24, &(200_000 + k).to_be_bytes());
            m
        }
        5 | 6 => {
            // a pause then a resume, with reasons
            let mut m = framed(b'H', 25, locate, timestamp);
            put(&mut m, 11, &stock);
            let (state, reason) = if n % 9 == 5 {
                (b'P', *b"LUDP")
            } else {
                (b'T', *b"    ")
            };
            m[19] = state;
            put(&mut m, 21, &reason);
            m
        }
        7 => {
            let mut m = framed(b'V', 35, 0, timestamp);
            put(&mut m, 11, &(u64::from(k) * 100_000_000).to_be_bytes());
            put(&mut m, 19, &(u64::from(k) * 90_000_000).to_be_bytes());
            put(&mut m, 27, &(u64::from(k) * 80_000_000).to_be_bytes());
            m
        }
        _ => {
            let mut m = framed(b'W', 12, 0, timestamp);
            m[11] = [b'1', b'2', b'3'][n / 9 % 3];
            m
        }
    }
}

/// `body` generated messages of `profile` over `symbols` symbols, with an extra message after
/// every [`EXTRA_EVERY`] of the body and every other C made non-printable.
fn day(profile: Profile, symbols: u16, seed: u64, body: usize) -> Day {
    let mut generator = Generator::with_profile(GeneratorConfig { symbols, seed }, profile);
    let names: Vec<Symbol> = generator
        .symbol_names()
        .map(|n| Symbol::parse(n).unwrap())
        .collect();
    let generated = generator.messages(body);
    let opening = 1 + generated
        .iter()
        .position(|m| m[0] == b'S' && m[11] == b'Q')
        .expect("the start of day ends with the market-open event");
    let mut messages = Vec::with_capacity(generated.len() + generated.len() / EXTRA_EVERY + 1);
    let (mut executions_at_price, mut extras) = (0usize, 0usize);
    for (i, mut m) in generated.into_iter().enumerate() {
        if m[0] == b'C' {
            executions_at_price += 1;
            if executions_at_price % 2 == 0 {
                m[31] = b'N'; // not printable
            }
        }
        let ts = timestamp_of(&m);
        messages.push(m);
        if i >= opening && (i - opening) % EXTRA_EVERY == EXTRA_EVERY - 1 {
            // a locate that walks over all of them, the busiest more often
            let locate = if extras % 3 == 0 {
                1
            } else {
                (extras * 7 % usize::from(symbols)) as u16 + 1
            };
            messages.push(extra(extras, locate, names[usize::from(locate) - 1], ts));
            extras += 1;
        }
    }
    Day {
        messages,
        symbols: names,
        opening,
    }
}

/// Which streams each symbol gets, and from which message on.
struct Plan {
    symbols: u16,
    opening: usize,
    midpoint: usize,
}

impl Plan {
    /// `(orders, trades, from)`: the streams turned on for `locate` when the feed had given
    /// `from` messages. The first 80 % have both (odd locates from the opening, even ones from
    /// the midpoint: their order books come in full), the next 10 % none, the last 10 % trades
    /// only.
    fn streams(&self, locate: u16) -> Option<(bool, bool, usize)> {
        let n = u32::from(self.symbols);
        let l = u32::from(locate);
        if l == 0 || l > n {
            None
        } else if l <= n * 8 / 10 {
            let from = if l % 2 == 1 {
                self.opening
            } else {
                self.midpoint
            };
            Some((true, true, from))
        } else if l <= n * 9 / 10 {
            None
        } else {
            Some((false, true, self.opening))
        }
    }

    fn orders_from(&self, locate: u16) -> Option<usize> {
        self.streams(locate).filter(|s| s.0).map(|s| s.2)
    }

    fn trades_from(&self, locate: u16) -> Option<usize> {
        self.streams(locate).filter(|s| s.1).map(|s| s.2)
    }

    fn locates(&self) -> impl Iterator<Item = u16> {
        1..=self.symbols
    }
}

// ---------------------------------------------------------------------------------------------
// What the raw messages say

/// One order, trade or status event as it must come (seq and ingest time zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Order(OrderUpdate),
    Trade(TradeUpdate),
    Status(StatusUpdate),
}

/// An order of a resync: (reference, side, price, shares).
type Resting = (u64, Side, i64, u32);

struct Expected {
    /// Per locate, its order, trade and status events in order, each with the index of the
    /// message that makes it.
    events: HashMap<u16, Vec<(usize, Expect)>>,
    /// Per locate with an order stream, the orders its resync must carry, in priority order
    /// (the reference's queues when its stream was turned on).
    resync_orders: HashMap<u16, Vec<Resting>>,
    /// Market-wide changes (V, W) in order.
    market: Vec<(StatusChange, u64)>,
    /// The reference fed the whole day.
    reference: ReferenceBooks,
    /// Most orders resting at once.
    peak_orders: usize,
}

/// The reference's orders of `locate` in resync order: bids best first, then asks best first,
/// each price first to fill first.
fn reference_orders(reference: &ReferenceBooks, locate: u16) -> Vec<Resting> {
    let mut all = Vec::new();
    for side in [Side::Buy, Side::Sell] {
        for (price, _, _) in reference.levels(locate, side) {
            for (r, shares) in reference.queue(locate, side, price) {
                all.push((r, side, price, shares));
            }
        }
    }
    all
}

#[allow(clippy::too_many_arguments)]
fn order_event(
    locate: u16,
    action: OrderAction,
    side: Side,
    shares: u32,
    reference: u64,
    other: u64,
    price: i64,
    exchange_ns: u64,
) -> Expect {
    Expect::Order(OrderUpdate {
        locate,
        action,
        side,
        shares,
        seq: 0,
        reference,
        other,
        price,
        exchange_ns,
        ingest_ns: 0,
    })
}

#[allow(clippy::too_many_arguments)]
fn trade_event(
    locate: u16,
    kind: TradeKind,
    resting_side: Option<Side>,
    printable: bool,
    cross_type: u8,
    shares: u32,
    price: i64,
    match_number: u64,
    exchange_ns: u64,
) -> Expect {
    Expect::Trade(TradeUpdate {
        locate,
        kind,
        resting_side,
        printable,
        cross_type,
        shares,
        seq: 0,
        price,
        match_number,
        exchange_ns,
        ingest_ns: 0,
    })
}

/// The status change of a symbol status message, straight from its fields.
fn status_change(message: &Message<'_>) -> Option<StatusChange> {
    Some(match message {
        Message::TradingAction(m) => StatusChange::Trading {
            state: m.trading_state(),
            reason: *m.reason(),
        },
        Message::RegShoRestriction(m) => StatusChange::RegSho {
            action: m.reg_sho_action(),
        },
        Message::LuldAuctionCollar(m) => StatusChange::Luld {
            reference: m.reference_price(),
            upper: m.upper_collar_price(),
            lower: m.lower_collar_price(),
            extension: m.extension(),
        },
        Message::IpoQuotingPeriod(m) => StatusChange::Ipo {
            release_time: m.release_time(),
            qualifier: m.release_qualifier(),
            price: m.ipo_price(),
        },
        Message::Noii(m) => StatusChange::Imbalance {
            paired: m.paired_shares(),
            imbalance: m.imbalance_shares(),
            far: m.far_price(),
            near: m.near_price(),
            reference: m.current_reference_price(),
            direction: m.imbalance_direction(),
            cross_type: m.cross_type(),
            variation: m.price_variation_indicator(),
        },
        _ => return None,
    })
}

/// Everything the streams must carry, from the raw messages and the plan alone.
fn expect(day: &Day, plan: &Plan) -> Expected {
    let mut reference = ReferenceBooks::new();
    let mut events: HashMap<u16, Vec<(usize, Expect)>> = HashMap::new();
    let mut resync_orders = HashMap::new();
    let mut market = Vec::new();
    // reference → (locate, side, price, shares left), tracked here from the messages
    let mut live: HashMap<u64, (u16, Side, i64, u32)> = HashMap::new();
    let mut listed_at: HashMap<u16, usize> = HashMap::new();
    let mut peak_orders = 0;
    for (i, bytes) in day.messages.iter().enumerate() {
        if i == plan.opening || i == plan.midpoint {
            for locate in plan.locates() {
                if plan.orders_from(locate) == Some(i) {
                    resync_orders.insert(locate, reference_orders(&reference, locate));
                }
            }
        }
        let message = parse(bytes).unwrap_or_else(|e| panic!("message {i}: {e}"));
        reference.apply(&message);
        let ts = message.header().timestamp;
        let orders_on = |locate: u16| plan.orders_from(locate).is_some_and(|f| i >= f);
        let trades_on = |locate: u16| plan.trades_from(locate).is_some_and(|f| i >= f);
        let mut out: Vec<(u16, Expect)> = Vec::new();
        match &message {
            Message::AddOrder(m) => {
                let locate = m.header().stock_locate;
                let (side, price) = (m.side(), i64::from(m.price()));
                assert!(
                    live.insert(m.order_ref(), (locate, side, price, m.shares()))
                        .is_none()
                );
                if orders_on(locate) {
                    let a = order_event(
                        locate,
                        OrderAction::Add,
                        side,
                        m.shares(),
                        m.order_ref(),
                        0,
                        price,
                        ts,
                    );
                    out.push((locate, a));
                }
            }
            Message::OrderExecuted(_)
            | Message::OrderExecutedWithPrice(_)
            | Message::OrderCancel(_) => {
                let (reference, shares, execution) = match &message {
                    Message::OrderExecuted(m) => (
                        m.order_ref(),
                        m.executed_shares(),
                        Some((m.match_number(), None, true)),
                    ),
                    Message::OrderExecutedWithPrice(m) => (
                        m.order_ref(),
                        m.executed_shares(),
                        Some((
                            m.match_number(),
                            Some(i64::from(m.execution_price())),
                            m.is_printable(),
                        )),
                    ),
                    Message::OrderCancel(m) => (m.order_ref(), m.cancelled_shares(), None),
                    _ => unreachable!(),
                };
                let order = live
                    .get_mut(&reference)
                    .expect("the generator names live orders");
                let (locate, side, price) = (order.0, order.1, order.2);
                let taken = shares.min(order.3);
                assert!(taken > 0, "message {i}: the generator takes some shares");
                order.3 -= taken;
                if order.3 == 0 {
                    live.remove(&reference);
                }
                match execution {
                    Some((match_number, at, printable)) => {
                        if orders_on(locate) {
                            let e = order_event(
                                locate,
                                OrderAction::Execute,
                                side,
                                taken,
                                reference,
                                match_number,
                                price,
                                ts,
                            );
                            out.push((locate, e));
                        }
                        if trades_on(locate) {
                            let t = trade_event(
                                locate,
                                TradeKind::Execution,
                                Some(side),
                                printable,
                                0,
                                taken,
                                at.unwrap_or(price),
                                match_number,
                                ts,
                            );
                            out.push((locate, t));
                        }
                    }
                    None => {
                        if orders_on(locate) {
                            let c = order_event(
                                locate,
                                OrderAction::Cancel,
                                side,
                                taken,
                                reference,
                                0,
                                price,
                                ts,
                            );
                            out.push((locate, c));
                        }
                    }
                }
            }
            Message::OrderDelete(m) => {
                let (locate, side, price, had) = live
                    .remove(&m.order_ref())
                    .expect("the generator deletes live orders");
                if orders_on(locate) {
                    let d = order_event(
                        locate,
                        OrderAction::Delete,
                        side,
                        had,
                        m.order_ref(),
                        0,
                        price,
                        ts,
                    );
                    out.push((locate, d));
                }
            }
            Message::OrderReplace(m) => {
                let (locate, side, _, _) = live
                    .remove(&m.original_order_ref())
                    .expect("the generator replaces live orders");
                let price = i64::from(m.price());
                assert!(
                    live.insert(m.new_order_ref(), (locate, side, price, m.shares()))
                        .is_none()
                );
                if orders_on(locate) {
                    let u = order_event(
                        locate,
                        OrderAction::Replace,
                        side,
                        m.shares(),
                        m.original_order_ref(),
                        m.new_order_ref(),
                        price,
                        ts,
                    );
                    out.push((locate, u));
                }
            }
            Message::Trade(m) => {
                let locate = m.header().stock_locate;
                if trades_on(locate) {
                    let p = trade_event(
                        locate,
                        TradeKind::Trade,
                        None,
                        true,
                        0,
                        m.shares(),
                        i64::from(m.price()),
                        m.match_number(),
                        ts,
                    );
                    out.push((locate, p));
                }
            }
            Message::CrossTrade(m) => {
                let locate = m.header().stock_locate;
                if trades_on(locate) {
                    let q = trade_event(
                        locate,
                        TradeKind::Cross,
                        None,
                        true,
                        m.cross_type(),
                        u32::try_from(m.shares()).unwrap_or(u32::MAX),
                        i64::from(m.cross_price()),
                        m.match_number(),
                        ts,
                    );
                    out.push((locate, q));
                }
            }
            Message::BrokenTrade(m) => {
                let locate = m.header().stock_locate;
                if trades_on(locate) {
                    let b = trade_event(
                        locate,
                        TradeKind::Broken,
                        None,
                        false,
                        0,
                        0,
                        0,
                        m.match_number(),
                        ts,
                    );
                    out.push((locate, b));
                }
            }
            Message::StockDirectory(m) => {
                listed_at.insert(m.header().stock_locate, i);
            }
            Message::MwcbDeclineLevel(m) => market.push((
                StatusChange::MwcbLevels {
                    levels: [m.level1(), m.level2(), m.level3()],
                },
                ts,
            )),
            Message::MwcbStatus(m) => market.push((
                StatusChange::MwcbBreach {
                    level: m.breached_level(),
                },
                ts,
            )),
            other => {
                if let Some(change) = status_change(other) {
                    // every listed symbol is published from its directory message on
                    let locate = other.header().stock_locate;
                    if listed_at.get(&locate).is_some_and(|&at| i > at) {
                        let s = Expect::Status(StatusUpdate {
                            locate,
                            seq: 0,
                            exchange_ns: ts,
                            change,
                        });
                        out.push((locate, s));
                    }
                }
            }
        }
        for (locate, e) in out {
            events.entry(locate).or_default().push((i, e));
        }
        peak_orders = peak_orders.max(live.len());
    }
    assert_eq!(
        live.len(),
        reference.live_orders(),
        "the test's own tracking"
    );
    Expected {
        events,
        resync_orders,
        market,
        reference,
        peak_orders,
    }
}

// ---------------------------------------------------------------------------------------------
// The consumer: L2 and L3 from events alone

/// Price → (shares, orders), bids then asks.
type Sides = [BTreeMap<i64, (u64, u32)>; 2];

fn best_first(map: &BTreeMap<i64, (u64, u32)>, side: Side) -> Vec<(i64, u64, u32)> {
    let flat = |(p, (s, o)): (&i64, &(u64, u32))| (*p, *s, *o);
    match side {
        Side::Buy => map.iter().rev().map(flat).collect(),
        Side::Sell => map.iter().map(flat).collect(),
    }
}

/// One symbol's order book as the order events built it.
#[derive(Default)]
struct L3 {
    /// reference → (side, price, shares)
    orders: HashMap<u64, (Side, i64, u32)>,
    /// Per side, price → references, first to fill first.
    queues: [BTreeMap<i64, Vec<u64>>; 2],
}

impl L3 {
    fn add(&mut self, reference: u64, side: Side, price: i64, shares: u32) -> Result<(), String> {
        if shares == 0 {
            return Err("an order of no shares joined".into());
        }
        if let Some(old) = self.orders.insert(reference, (side, price, shares)) {
            return Err(format!(
                "reference {reference} joined but rests already: {old:?}"
            ));
        }
        self.queues[side as usize]
            .entry(price)
            .or_default()
            .push(reference);
        Ok(())
    }

    /// The order `reference` on `side`: (price, shares).
    fn held(&self, reference: u64, side: Side) -> Result<(i64, u32), String> {
        match self.orders.get(&reference) {
            None => Err(format!("unknown reference {reference}")),
            Some(&(s, _, _)) if s != side => Err(format!(
                "reference {reference} rests on {s:?}, not {side:?}"
            )),
            Some(&(_, price, shares)) => Ok((price, shares)),
        }
    }

    fn unlink(&mut self, reference: u64) {
        let Some((side, price, _)) = self.orders.remove(&reference) else {
            return;
        };
        let queues = &mut self.queues[side as usize];
        if let Some(queue) = queues.get_mut(&price) {
            queue.retain(|&r| r != reference);
            if queue.is_empty() {
                queues.remove(&price);
            }
        }
    }

    fn take(&mut self, reference: u64, shares: u32) {
        if let Some(order) = self.orders.get_mut(&reference) {
            order.2 -= shares;
            if order.2 == 0 {
                self.unlink(reference);
            }
        }
    }

    /// (shares, orders) at a level, `None` if no order rests there.
    fn level(&self, side: Side, price: i64) -> Option<(u64, u32)> {
        let queue = self.queues[side as usize].get(&price)?;
        let shares = queue.iter().map(|r| u64::from(self.orders[r].2)).sum();
        Some((shares, queue.len() as u32))
    }

    fn levels(&self, side: Side) -> Vec<(i64, u64, u32)> {
        let map: BTreeMap<i64, (u64, u32)> = self.queues[side as usize]
            .keys()
            .map(|&p| (p, self.level(side, p).unwrap_or_default()))
            .collect();
        best_first(&map, side)
    }

    fn queue(&self, side: Side, price: i64) -> Vec<(u64, u32)> {
        self.queues[side as usize]
            .get(&price)
            .map(|q| q.iter().map(|r| (*r, self.orders[r].2)).collect())
            .unwrap_or_default()
    }
}

/// A resync being received: what is still to come, and its orders so far.
struct Resyncing {
    levels: u32,
    orders: u32,
    /// The statuses still to come, which must be the symbol's last of each kind.
    statuses: u8,
    adds: Vec<Resting>,
}

#[derive(Debug, Default)]
struct Counts {
    events: u64,
    levels: u64,
    orders: u64,
    resync_orders: u64,
    trades: u64,
    statuses: u64,
    /// Most events found waiting in the ring at one drain.
    backlog: usize,
}

/// Everything a consumer learns from the event ring, checked as it comes.
struct Observer<'d> {
    day: &'d Day,
    expected: &'d Expected,
    seq: HashMap<u16, u64>,
    l2: HashMap<u16, Sides>,
    l3: HashMap<u16, L3>,
    resyncing: HashMap<u16, Resyncing>,
    resyncs: HashMap<u16, Vec<(ResyncReason, Option<u32>)>>,
    added: Vec<u16>,
    /// Per locate, how many of its expected events came.
    cursor: HashMap<u16, usize>,
    /// Per locate, the orders its next resync with orders must carry.
    resync_want: HashMap<u16, Vec<Resting>>,
    market: Vec<(StatusChange, u64)>,
    /// The last status of each (locate, kind) seen.
    last_status: HashMap<(u16, usize), StatusChange>,
    counts: Counts,
}

impl<'d> Observer<'d> {
    fn new(day: &'d Day, expected: &'d Expected) -> Self {
        Self {
            day,
            expected,
            seq: HashMap::new(),
            l2: HashMap::new(),
            l3: HashMap::new(),
            resyncing: HashMap::new(),
            resyncs: HashMap::new(),
            added: Vec::new(),
            cursor: HashMap::new(),
            resync_want: expected.resync_orders.clone(),
            market: Vec::new(),
            last_status: HashMap::new(),
            counts: Counts::default(),
        }
    }

    /// The last messages of `locate` up to message `index`, parsed, for a failure report.
    fn context(&self, locate: u16, index: usize) -> String {
        let mut lines: Vec<String> = self.day.messages[..=index.min(self.day.messages.len() - 1)]
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(i, m)| {
                let parsed = parse(m).ok()?;
                (parsed.header().stock_locate == locate).then(|| format!("  #{i}: {parsed:?}"))
            })
            .take(10)
            .collect();
        lines.reverse();
        format!(
            "the last messages of locate {locate} up to #{index}:\n{}",
            lines.join("\n")
        )
    }

    fn drain(&mut self, events: &mut Consumer<Event>) -> usize {
        self.counts.backlog = self.counts.backlog.max(events.len());
        let mut n = 0;
        while let Some(event) = events.pop() {
            self.apply(event);
            n += 1;
        }
        n
    }

    fn apply(&mut self, event: Event) {
        self.counts.events += 1;
        if let Some((locate, seq)) = event.symbol_seq() {
            let last = self.seq.entry(locate).or_insert(0);
            assert_eq!(
                seq,
                *last + 1,
                "locate {locate}: sequence jumped: {event:?}"
            );
            *last = seq;
            if self.resyncing.contains_key(&locate) {
                return self.resync_part(locate, event);
            }
        }
        match event {
            Event::Level(l) => {
                self.counts.levels += 1;
                let side = &mut self.l2.entry(l.locate).or_default()[l.side as usize];
                if l.shares == 0 {
                    assert_eq!(l.orders, 0, "{l:?}");
                    side.remove(&l.price);
                } else {
                    assert!(l.orders > 0, "{l:?}");
                    side.insert(l.price, (l.shares, l.orders));
                }
            }
            Event::Resync {
                locate,
                reason,
                levels,
                orders,
                orders_omitted,
                incomplete,
                statuses,
                ..
            } => {
                assert_ne!(
                    reason,
                    ResyncReason::RingFull,
                    "locate {locate}: the event ring overflowed (enlarge EVENT_RING)"
                );
                assert!(
                    !orders_omitted,
                    "locate {locate}: orders left out of its resync"
                );
                assert!(!incomplete, "locate {locate}: book incomplete");
                self.resyncs
                    .entry(locate)
                    .or_default()
                    .push((reason, orders));
                self.l2.insert(locate, Default::default());
                match orders {
                    Some(_) => self.l3.insert(locate, L3::default()),
                    None => self.l3.remove(&locate),
                };
                self.resyncing.insert(
                    locate,
                    Resyncing {
                        levels,
                        orders: orders.unwrap_or(0),
                        statuses,
                        adds: Vec::new(),
                    },
                );
                self.resync_done(locate);
            }
            Event::SymbolAdded { locate, symbol, .. } => {
                assert_eq!(self.day.symbols[usize::from(locate) - 1], symbol);
                self.added.push(locate);
            }
            Event::Order(o) => {
                self.counts.orders += 1;
                self.expected_next(
                    o.locate,
                    Expect::Order(OrderUpdate {
                        seq: 0,
                        ingest_ns: 0,
                        ..o
                    }),
                );
                self.order(o);
            }
            Event::Trade(t) => {
                self.counts.trades += 1;
                self.expected_next(
                    t.locate,
                    Expect::Trade(TradeUpdate {
                        seq: 0,
                        ingest_ns: 0,
                        ..t
                    }),
                );
            }
            Event::Status(s) => {
                self.counts.statuses += 1;
                if let Some(kind) = s.change.kind() {
                    self.last_status.insert((s.locate, kind), s.change);
                }
                self.expected_next(s.locate, Expect::Status(StatusUpdate { seq: 0, ..s }));
            }
            Event::Market {
                change,
                exchange_ns,
            } => self.market.push((change, exchange_ns)),
            Event::SymbolRemoved { .. } | Event::Stale { .. } | Event::Fresh => {
                panic!("unexpected {event:?}")
            }
        }
    }

    /// `got` must be the next expected event of `locate`.
    fn expected_next(&mut self, locate: u16, got: Expect) {
        let at = self.cursor.entry(locate).or_insert(0);
        let want = self
            .expected
            .events
            .get(&locate)
            .and_then(|list| list.get(*at))
            .copied();
        let n = *at;
        *at += 1;
        match want {
            Some((_, want)) if want == got => {}
            Some((index, want)) => panic!(
                "locate {locate}: event {n} of its order/trade/status streams is\n  {got:?}\nbut \
                 message #{index} makes it\n  {want:?}\n{}",
                self.context(locate, index)
            ),
            None => panic!(
                "locate {locate}: event {n} of its order/trade/status streams should not exist: \
                 {got:?}\n{}",
                self.context(locate, self.day.messages.len() - 1)
            ),
        }
    }

    /// An order event outside a resync: it must fit the model, and the model must then agree
    /// with the level events at every price it touched.
    fn order(&mut self, o: OrderUpdate) {
        let Some(model) = self.l3.get_mut(&o.locate) else {
            panic!("an order event for a symbol whose order book was never sent: {o:?}");
        };
        let mut touched = vec![(o.side, o.price)];
        let checked = (|| -> Result<(), String> {
            match o.action {
                OrderAction::Add => {
                    if o.other != 0 {
                        return Err("an add with `other` set".into());
                    }
                    model.add(o.reference, o.side, o.price, o.shares)
                }
                OrderAction::Execute | OrderAction::Cancel => {
                    let (price, held) = model.held(o.reference, o.side)?;
                    if price != o.price {
                        return Err(format!("the order rests at {price}"));
                    }
                    if o.shares == 0 || o.shares > held {
                        return Err(format!("{} shares taken off an order of {held}", o.shares));
                    }
                    model.take(o.reference, o.shares);
                    Ok(())
                }
                OrderAction::Delete => {
                    let (price, held) = model.held(o.reference, o.side)?;
                    if (price, held) != (o.price, o.shares) {
                        return Err(format!("the order held {held} at {price}"));
                    }
                    model.unlink(o.reference);
                    Ok(())
                }
                OrderAction::Replace => {
                    let (price, _) = model.held(o.reference, o.side)?;
                    touched.push((o.side, price));
                    model.unlink(o.reference);
                    model.add(o.other, o.side, o.price, o.shares)
                }
            }
        })();
        if let Err(why) = checked {
            panic!(
                "locate {}: {o:?} contradicts the order book built from the events: {why}",
                o.locate
            );
        }
        let l2 = self.l2.get(&o.locate);
        for (side, price) in touched {
            assert_eq!(
                model.level(side, price),
                l2.and_then(|l2| l2[side as usize].get(&price).copied()),
                "locate {}: after {o:?} the order book and the level events disagree at {side:?} {price}",
                o.locate
            );
        }
    }

    /// One event of the resync `locate` is receiving.
    fn resync_part(&mut self, locate: u16, event: Event) {
        let Some(r) = self.resyncing.get_mut(&locate) else {
            return;
        };
        match event {
            Event::Level(l) if r.levels > 0 => {
                r.levels -= 1;
                assert!(
                    l.shares > 0 && l.orders > 0,
                    "an empty level in a resync: {l:?}"
                );
                let side = &mut self.l2.entry(locate).or_default()[l.side as usize];
                assert!(
                    side.insert(l.price, (l.shares, l.orders)).is_none(),
                    "{l:?} twice"
                );
            }
            Event::Order(o) if r.levels == 0 && r.orders > 0 => {
                r.orders -= 1;
                self.counts.resync_orders += 1;
                assert_eq!(
                    (o.action, o.other, o.exchange_ns),
                    (OrderAction::Add, 0, 0),
                    "a resync carries adds: {o:?}"
                );
                if let Some(&(_, side, price, _)) = r.adds.last() {
                    let in_order = match (side, o.side) {
                        (Side::Buy, Side::Buy) => o.price <= price,
                        (Side::Buy, Side::Sell) => true,
                        (Side::Sell, Side::Sell) => o.price >= price,
                        (Side::Sell, Side::Buy) => false,
                    };
                    assert!(
                        in_order,
                        "locate {locate}: resync orders out of priority order at {o:?}"
                    );
                }
                r.adds.push((o.reference, o.side, o.price, o.shares));
                let model = self
                    .l3
                    .get_mut(&locate)
                    .expect("a resync with orders made one");
                if let Err(why) = model.add(o.reference, o.side, o.price, o.shares) {
                    panic!("locate {locate}: resync order {o:?}: {why}");
                }
            }
            Event::Status(st) if r.levels == 0 && r.orders == 0 && r.statuses > 0 => {
                r.statuses -= 1;
                let kind = st.change.kind().expect("a symbol's own status");
                assert_eq!(
                    self.last_status.get(&(locate, kind)),
                    Some(&st.change),
                    "locate {locate}: a resync carries {st:?}, not the last status of its kind"
                );
            }
            other => {
                panic!("locate {locate}: {other:?} inside a resync (levels, orders, then statuses)")
            }
        }
        self.resync_done(locate);
    }

    /// Ends the resync of `locate` if all of it came: its levels and orders must agree, and its
    /// orders be the reference's at that point.
    fn resync_done(&mut self, locate: u16) {
        let Some(r) = self.resyncing.get(&locate) else {
            return;
        };
        if r.levels > 0 || r.orders > 0 || r.statuses > 0 {
            return;
        }
        let r = self.resyncing.remove(&locate).unwrap();
        if let Some(model) = self.l3.get(&locate) {
            let l2 = self.l2.get(&locate).cloned().unwrap_or_default();
            for side in [Side::Buy, Side::Sell] {
                assert_eq!(
                    model.levels(side),
                    best_first(&l2[side as usize], side),
                    "locate {locate}: a resync's orders do not add up to its levels ({side:?})"
                );
            }
            if let Some(want) = self.resync_want.get(&locate) {
                assert!(
                    r.adds == *want,
                    "locate {locate}: the resync's orders are not the reference's queues: \
                     {} orders, {} expected; first difference at {:?}",
                    r.adds.len(),
                    want.len(),
                    r.adds.iter().zip(want).position(|(a, b)| a != b)
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The data plane

struct Harness<'d> {
    plane: DataPlane,
    events: Consumer<Event>,
    gate: Gate,
    released: usize,
    seen: Observer<'d>,
}

impl<'d> Harness<'d> {
    fn start(config: ShardConfig, day: &'d Day, expected: &'d Expected) -> Self {
        let (source, gate) = MemorySource::new(
            day.messages
                .iter()
                .cloned()
                .map(Scripted::Message)
                .collect(),
        );
        let topology = Arc::new(Topology::fallback());
        let sources: Vec<Box<dyn FeedSource>> = vec![Box::new(source)];
        let mut plane = DataPlane::start(topology, vec![config], sources).unwrap();
        let events = plane.shards_mut()[0].take_events().unwrap();
        Harness {
            plane,
            events,
            gate,
            released: 0,
            seen: Observer::new(day, expected),
        }
    }

    fn processed(&self) -> u64 {
        self.plane.shards()[0].stats().snapshot().messages()
    }

    /// Lets the feed run to message `to`, a chunk at a time, draining all along.
    fn release(&mut self, to: usize) {
        while self.released < to {
            self.released = (self.released + CHUNK).min(to);
            self.gate.open_to(self.released);
            let deadline = Instant::now() + WAIT;
            while self.processed() < self.released as u64 {
                if self.seen.drain(&mut self.events) == 0 {
                    std::thread::sleep(Duration::from_micros(100));
                }
                assert!(
                    Instant::now() < deadline,
                    "the shard did not take the feed in time"
                );
            }
        }
    }

    /// Drains until the ring stays empty.
    fn settle(&mut self) {
        let deadline = Instant::now() + WAIT;
        let mut quiet = 0;
        while quiet < 20 {
            quiet = if self.seen.drain(&mut self.events) == 0 {
                quiet + 1
            } else {
                0
            };
            assert!(Instant::now() < deadline, "events did not settle");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn symbol(&self, locate: u16) -> Symbol {
        self.seen.day.symbols[usize::from(locate) - 1]
    }

    /// Turns on the streams the plan gives from message `at` (where the feed stands), and
    /// checks the order books came.
    fn set_streams(&mut self, plan: &Plan, at: usize) {
        let mut turned = Vec::new();
        for locate in plan.locates() {
            let Some((orders, trades, from)) = plan.streams(locate) else {
                continue;
            };
            if from != at {
                continue;
            }
            let symbol = self.symbol(locate);
            let applied = self
                .plane
                .execute(
                    |id| Command::SetStreams {
                        id,
                        symbol,
                        orders,
                        trades,
                        resend: false,
                        epoch: 1,
                    },
                    WAIT,
                )
                .unwrap();
            assert_eq!(applied, Applied::Streams { locate });
            turned.push((locate, orders));
        }
        self.settle();
        let expected = self.seen.expected;
        for (locate, orders) in turned {
            let last = self
                .seen
                .resyncs
                .get(&locate)
                .and_then(|r| r.last())
                .copied();
            if orders {
                let count = expected.resync_orders[&locate].len() as u32;
                assert_eq!(
                    last,
                    Some((ResyncReason::Orders, Some(count))),
                    "locate {locate}: its order book came"
                );
            } else {
                assert_eq!(last, Some((ResyncReason::Added, None)), "locate {locate}");
            }
        }
    }
}

/// The books for `day`: room for its peak of orders (and as many levels), deep sides.
fn config_for(expected: &Expected) -> ShardConfig {
    let room = (expected.peak_orders * 5 / 4)
        .next_power_of_two()
        .max(1 << 16);
    ShardConfig {
        books: BooksConfig {
            max_orders: room,
            max_levels: room,
            max_levels_per_side: 1 << 13,
            max_symbols: 256,
        },
        event_ring: EVENT_RING,
        ..ShardConfig::for_tests(0, 1)
    }
}

/// Plays `day` through a data plane with the streams of `plan`, checks everything and
/// returns the harness for more questions.
fn play<'d>(day: &'d Day, plan: &Plan, expected: &'d Expected) -> Harness<'d> {
    let mut h = Harness::start(config_for(expected), day, expected);
    h.release(plan.opening);
    h.settle();
    assert_eq!(
        h.seen.added,
        plan.locates().collect::<Vec<_>>(),
        "every listed symbol was published"
    );
    h.set_streams(plan, plan.opening);
    if plan.midpoint != plan.opening {
        h.release(plan.midpoint);
        h.settle();
        h.set_streams(plan, plan.midpoint);
    }
    h.release(day.messages.len());
    h.settle();
    check_end(&h, plan);
    resend_at_end(&mut h, plan);
    h
}

/// At the end of the day every order book is asked for again (`resend`): the shard's own
/// queues, not only the events, must be the reference's, in priority order (checked as each
/// resync completes).
fn resend_at_end(h: &mut Harness<'_>, plan: &Plan) {
    let expected = h.seen.expected;
    let mut asked = Vec::new();
    for locate in plan.locates() {
        if plan.orders_from(locate).is_none() {
            continue;
        }
        let want = reference_orders(&expected.reference, locate);
        h.seen.resync_want.insert(locate, want);
        let symbol = h.symbol(locate);
        let applied = h
            .plane
            .execute(
                |id| Command::SetStreams {
                    id,
                    symbol,
                    orders: true,
                    trades: true,
                    resend: true,
                    epoch: 1,
                },
                WAIT,
            )
            .unwrap();
        assert_eq!(applied, Applied::Streams { locate });
        asked.push(locate);
    }
    h.settle();
    assert!(h.seen.resyncing.is_empty(), "a resync was cut short");
    for locate in asked {
        let count = h.seen.resync_want[&locate].len() as u32;
        assert_eq!(
            h.seen.resyncs[&locate].last(),
            Some(&(ResyncReason::Orders, Some(count))),
            "locate {locate}: its order book was sent again"
        );
    }
}

/// Every check of the whole day once the feed is done.
fn check_end(h: &Harness<'_>, plan: &Plan) {
    let seen = &h.seen;
    let expected = seen.expected;
    let reference = &expected.reference;
    assert!(seen.resyncing.is_empty(), "a resync was cut short");
    for locate in plan.locates() {
        // nothing missing
        let want = expected.events.get(&locate).map_or(&[][..], Vec::as_slice);
        let got = seen.cursor.get(&locate).copied().unwrap_or(0);
        if got < want.len() {
            let (index, first) = want[got];
            panic!(
                "locate {locate}: {got} of its {} order/trade/status events came; the first \
                 missing is {first:?} of message #{index}\n{}",
                want.len(),
                seen.context(locate, index)
            );
        }
        // only the resyncs asked for
        let mut resyncs = vec![(ResyncReason::Added, None)];
        if plan.orders_from(locate).is_some() {
            let count = expected.resync_orders[&locate].len() as u32;
            resyncs.push((ResyncReason::Orders, Some(count)));
        }
        assert_eq!(seen.resyncs[&locate], resyncs, "locate {locate}: resyncs");
        // L2 from the level events
        let l2 = seen.l2.get(&locate).cloned().unwrap_or_default();
        for side in [Side::Buy, Side::Sell] {
            assert_eq!(
                best_first(&l2[side as usize], side),
                reference.levels(locate, side),
                "locate {locate} {side:?}: levels from the level events"
            );
        }
        // L3 from the order events
        match (plan.orders_from(locate), seen.l3.get(&locate)) {
            (None, None) => {}
            (None, Some(_)) => panic!("locate {locate}: an order book nobody asked for"),
            (Some(_), None) => panic!("locate {locate}: no order book"),
            (Some(_), Some(model)) => {
                for side in [Side::Buy, Side::Sell] {
                    let levels = reference.levels(locate, side);
                    assert_eq!(
                        model.levels(side),
                        levels,
                        "locate {locate} {side:?}: levels of the order book from the order events"
                    );
                    for (price, _, _) in levels {
                        assert_eq!(
                            model.queue(side, price),
                            reference.queue(locate, side, price),
                            "locate {locate} {side:?} {price}: queue from the order events"
                        );
                    }
                }
            }
        }
    }
    // market-wide changes: the shard sends the latest of each kind (V, W) when it can, so one
    // may stand for several of its kind; each kind's come in order, none unasked, the last
    // of each is there
    for levels in [true, false] {
        let of_kind = |list: &[(StatusChange, u64)]| -> Vec<(StatusChange, u64)> {
            list.iter()
                .filter(|(c, _)| matches!(c, StatusChange::MwcbLevels { .. }) == levels)
                .copied()
                .collect()
        };
        let (got, want) = (of_kind(&seen.market), of_kind(&expected.market));
        let mut rest = want.iter();
        for g in &got {
            assert!(
                rest.any(|w| w == g),
                "market-wide change {g:?} out of order or never sent by the feed"
            );
        }
        assert_eq!(got.last(), want.last(), "the last market-wide change");
    }
    let stats = h.plane.shards()[0].stats().snapshot();
    assert_eq!(stats.messages(), h.seen.day.messages.len() as u64);
    assert_eq!(stats.ring_full, 0, "the ring never overflowed");
    assert_eq!(
        (stats.unknown_refs, stats.duplicate_refs, stats.overfills),
        (0, 0, 0),
        "the generated day is clean"
    );
    assert_eq!(
        (stats.orders_full, stats.levels_full, stats.symbols_full),
        (0, 0, 0),
        "the books had room"
    );
    // (the counter leaves out the adds that carry a resync's order book)
    assert_eq!(
        stats.order_events, seen.counts.orders,
        "order events counted as published"
    );
}

/// The default-profile day, or the deep one, played and checked; prints what it covered.
fn differential(name: &str, profile: Profile, symbols: u16, seed: u64, body: usize) {
    let started = Instant::now();
    let day = day(profile, symbols, seed, body);
    let body_start = day.opening;
    let plan = Plan {
        symbols,
        opening: day.opening,
        midpoint: body_start + (day.messages.len() - body_start) * 3 / 10,
    };
    let expected = expect(&day, &plan);
    let prepared = started.elapsed();
    let h = play(&day, &plan, &expected);
    let c = &h.seen.counts;
    let kinds = |k: TradeKind| {
        expected
            .events
            .values()
            .flatten()
            .filter(|(_, e)| matches!(e, Expect::Trade(t) if t.kind == k))
            .count()
    };
    eprintln!(
        "{name}: {} messages ({} symbols), peak {} live orders; {} events: {} levels, {} order \
         events (+{} in resyncs), {} trades (execution {}, trade {}, cross {}, broken {}), {} \
         statuses, {} market; ring backlog peak {} of {EVENT_RING}; prepared in {prepared:?}, \
         all in {:?}",
        day.messages.len(),
        symbols,
        expected.peak_orders,
        c.events,
        c.levels,
        c.orders,
        c.resync_orders,
        c.trades,
        kinds(TradeKind::Execution),
        kinds(TradeKind::Trade),
        kinds(TradeKind::Cross),
        kinds(TradeKind::Broken),
        c.statuses,
        h.seen.market.len(),
        c.backlog,
        started.elapsed(),
    );
    assert!(
        c.resync_orders > 1_000,
        "the midpoint resyncs carried order books"
    );
    for kind in [
        TradeKind::Execution,
        TradeKind::Trade,
        TradeKind::Cross,
        TradeKind::Broken,
    ] {
        assert!(kinds(kind) > 0, "no {kind:?} trade was checked");
    }
}

#[test]
fn order_trade_and_status_streams_match_the_messages_on_a_default_day() {
    differential("touch", Profile::Touch, 100, 21, 1_000_000);
}

#[test]
fn order_trade_and_status_streams_match_the_messages_on_a_deep_day() {
    differential("deep", Profile::Deep, 100, 22, 1_000_000);
}

/// Where resting orders stand, as `Command::Position` says, against the reference's queues.
#[test]
fn positions_match_the_reference_queues() {
    // (100 symbols: see `no_status_is_lost_while_a_first_book_is_owed` for why not fewer)
    let symbols = 100;
    let day = day(Profile::Touch, symbols, 23, 200_000);
    let plan = Plan {
        symbols,
        opening: day.opening,
        midpoint: day.opening,
    };
    let expected = expect(&day, &plan);
    let mut h = play(&day, &plan, &expected);
    let reference = &expected.reference;
    let mut asked = 0;
    'locates: for locate in plan.locates() {
        for side in [Side::Buy, Side::Sell] {
            let levels = reference.levels(locate, side);
            // the best level, one in the middle and the deepest
            for &(price, level_shares, level_orders) in
                [levels.first(), levels.get(levels.len() / 2), levels.last()]
                    .into_iter()
                    .flatten()
            {
                let queue = reference.queue(locate, side, price);
                for at in [0, queue.len() / 2, queue.len() - 1] {
                    let (r, shares) = queue[at];
                    let symbol = h.symbol(locate);
                    let found = h
                        .plane
                        .execute(
                            |id| Command::Position {
                                id,
                                symbol,
                                reference: r,
                            },
                            WAIT,
                        )
                        .unwrap();
                    let want = OrderPosition {
                        side,
                        price,
                        shares,
                        orders_ahead: at as u32,
                        shares_ahead: queue[..at].iter().map(|&(_, s)| u64::from(s)).sum(),
                        level_orders,
                        level_shares,
                    };
                    assert_eq!(
                        found,
                        Applied::Position {
                            locate,
                            found: Some(want)
                        },
                        "order {r} of locate {locate}"
                    );
                    asked += 1;
                    if asked >= 60 {
                        break 'locates;
                    }
                }
            }
        }
    }
    assert!(asked >= 50, "{asked} orders asked about");
    // an order that never was, one that is gone, and one asked of the wrong symbol
    let gone = day
        .messages
        .iter()
        .find_map(|m| match parse(m) {
            Ok(Message::OrderDelete(d)) => Some(d.order_ref()),
            _ => None,
        })
        .unwrap();
    let other = reference_orders(reference, 2)[0].0;
    for (locate, r) in [(1, u64::MAX - 1), (1, gone), (1, other)] {
        let symbol = h.symbol(locate);
        let answer = h
            .plane
            .execute(
                |id| Command::Position {
                    id,
                    symbol,
                    reference: r,
                },
                WAIT,
            )
            .unwrap();
        assert_eq!(
            answer,
            Applied::Position {
                locate,
                found: None
            },
            "reference {r} of locate {locate}"
        );
    }
    h.settle();
}

/// Plays all of `h`'s day, the start of day in one release and then 500 messages at a time,
/// draining all along but while the feed plays messages `stall` (which starts at the
/// opening, or is empty). Returns each symbol's status events and the ring-full resyncs.
fn play_statuses(h: &mut Harness<'_>, stall: Range<usize>) -> Statuses {
    let mut got: HashMap<u16, Vec<Expect>> = HashMap::new();
    let mut state: HashMap<(u16, usize), StatusChange> = HashMap::new();
    let mut ring_full = 0;
    // per locate: (events of a resync still to skip, statuses it carries still to come)
    let mut carrying: HashMap<u16, (u32, u8)> = HashMap::new();
    let mut drain = |h: &mut Harness<'_>| {
        while let Some(event) = h.events.pop() {
            if let Some(locate) = event.locate()
                && let Some((skip, carried)) = carrying.get_mut(&locate)
            {
                if *skip > 0 {
                    *skip -= 1;
                    continue;
                }
                if let Event::Status(s) = event
                    && *carried > 0
                {
                    // a resync carries the symbol's status as it stands: the state, not news
                    *carried -= 1;
                    if let Some(kind) = s.change.kind() {
                        state.insert((locate, kind), s.change);
                    }
                    continue;
                }
            }
            match event {
                Event::Status(s) => {
                    if let Some(kind) = s.change.kind() {
                        state.insert((s.locate, kind), s.change);
                    }
                    got.entry(s.locate)
                        .or_default()
                        .push(Expect::Status(StatusUpdate { seq: 0, ..s }));
                }
                Event::Resync {
                    locate,
                    reason,
                    levels,
                    orders,
                    statuses,
                    ..
                } => {
                    if reason == ResyncReason::RingFull {
                        ring_full += 1;
                    }
                    carrying.insert(locate, (levels + orders.unwrap_or(0), statuses));
                }
                _ => {}
            }
        }
    };
    let (opening, total) = (h.seen.day.opening, h.seen.day.messages.len());
    let mut to = 0;
    while to < total {
        let stalled = !stall.is_empty() && to == stall.start;
        to = if to < opening {
            opening
        } else if stalled {
            stall.end
        } else {
            (to + 500).min(total)
        };
        h.gate.open_to(to);
        let deadline = Instant::now() + WAIT;
        while h.processed() < to as u64 {
            if !stalled {
                drain(h);
            }
            assert!(Instant::now() < deadline, "the shard did not take the feed");
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    for _ in 0..100 {
        drain(h);
        std::thread::sleep(Duration::from_millis(1));
    }
    Statuses {
        got,
        state,
        ring_full,
    }
}

/// What [`play_statuses`] saw.
struct Statuses {
    /// Each symbol's status events, in order (those a resync carried left out).
    got: HashMap<u16, Vec<Expect>>,
    /// The status of each (locate, kind) the consumer holds at the end.
    state: HashMap<(u16, usize), StatusChange>,
    /// Ring-full resyncs seen.
    ring_full: u32,
}

/// Fails unless the status the consumer holds at the end is, for every symbol and kind, the
/// last the feed sent.
fn assert_final_status(h: &Harness<'_>, plan: &Plan, state: &HashMap<(u16, usize), StatusChange>) {
    let mut checked = 0;
    for locate in plan.locates() {
        let mut last: HashMap<usize, StatusChange> = HashMap::new();
        for (_, want) in h
            .seen
            .expected
            .events
            .get(&locate)
            .map_or(&[][..], Vec::as_slice)
        {
            if let Expect::Status(s) = want
                && let Some(kind) = s.change.kind()
            {
                last.insert(kind, s.change);
            }
        }
        for (kind, change) in last {
            assert_eq!(
                state.get(&(locate, kind)),
                Some(&change),
                "locate {locate}: the status it ends with (kind {kind})"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "statuses were checked");
}

/// Fails, saying which, if some status change of `expected` never came in `got` (what came
/// must be in order, and nothing unasked).
fn assert_no_status_lost(
    h: &Harness<'_>,
    plan: &Plan,
    got: &HashMap<u16, Vec<Expect>>,
    stall: Range<usize>,
    ring_full: u32,
) {
    let expected = h.seen.expected;
    let mut lost = Vec::new();
    let mut total = 0;
    for locate in plan.locates() {
        let want = expected.events.get(&locate).map_or(&[][..], Vec::as_slice);
        let got = got.get(&locate).map_or(&[][..], Vec::as_slice);
        total += want.len();
        let mut next = 0;
        for g in got {
            let at = want[next..].iter().position(|(_, w)| w == g);
            let at = at.unwrap_or_else(|| panic!("locate {locate}: unexpected {g:?}"));
            lost.extend(want[next..next + at].iter().map(|&(i, w)| (i, locate, w)));
            next += at + 1;
        }
        lost.extend(want[next..].iter().map(|&(i, w)| (i, locate, w)));
    }
    lost.sort_by_key(|&(i, locate, _)| (i, locate));
    let Some(&(index, locate, first)) = lost.first() else {
        return;
    };
    let count = |f: &dyn Fn(&(usize, u16, Expect)) -> bool| lost.iter().filter(|l| f(l)).count();
    let halts = count(
        &|(_, _, e)| matches!(e, Expect::Status(s) if matches!(s.change, StatusChange::Trading { .. })),
    );
    let stalled = if stall.is_empty() {
        String::new()
    } else {
        format!(
            "; {} while the consumer was stalled, messages #{}..#{}, with {ring_full} ring-full \
             resyncs",
            count(&|(i, _, _)| stall.contains(i)),
            stall.start,
            stall.end
        )
    };
    let at_open = count(&|(i, _, _)| *i < h.seen.day.opening);
    panic!(
        "{} of {total} status changes never reached the consumer ({halts} of them trading \
         actions; {at_open} from the start of day, messages #0..#{}{stalled}); the first lost \
         is\n  {first:?}\nof message #{index}\n{}",
        lost.len(),
        h.seen.day.opening,
        h.seen.context(locate, index)
    );
}

/// Statuses are "always sent": also those that come while a symbol's book is owed to the
/// consumer as a resync. With 20 symbols the whole start of day (S, 20 R, S, 20 H, S, 43
/// messages) is one poll of the shard: each symbol is published at its R (its first book owed
/// as an `Added` resync, sent at the start of the next loop iteration) and its H (trading)
/// comes in the same poll, while the book is owed. Every H after a symbol's R must reach the
/// consumer as an `Event::Status`. (With 100 symbols, as the other tests have, an R and its H
/// are 101 messages apart, never in one poll of 64, and nothing is lost.)
#[test]
fn no_status_is_lost_while_a_first_book_is_owed() {
    let symbols = 20;
    let day = day(Profile::Touch, symbols, 24, 50_000);
    // no order or trade streams: only statuses are expected
    let plan = Plan {
        symbols,
        opening: usize::MAX,
        midpoint: usize::MAX,
    };
    let expected = expect(&day, &plan);
    let mut h = Harness::start(config_for(&expected), &day, &expected);
    let seen = play_statuses(&mut h, 0..0);
    assert_eq!(seen.ring_full, 0);
    assert_no_status_lost(&h, &plan, &seen.got, 0..0, seen.ring_full);
    assert_final_status(&h, &plan, &seen.state);
}

/// A consumer that falls behind: while the event ring is full a symbol's changes are lost
/// (statuses too) and it owes a `RingFull` resync, which carries its status as it stands.
/// Here the consumer stops draining while 20,000 body messages play (the ring holds 4,096
/// events), then drains all along again (the rest of the day released 500 messages at a time,
/// so the ring does not overflow again): the status events that came must be in order, and
/// the status it ends with must be, for every symbol and kind, the last the feed sent.
#[test]
fn after_a_ring_overflow_the_status_is_the_last_sent() {
    let symbols = 100;
    let day = day(Profile::Touch, symbols, 25, 80_000);
    let plan = Plan {
        symbols,
        opening: usize::MAX,
        midpoint: usize::MAX,
    };
    let expected = expect(&day, &plan);
    let mut config = config_for(&expected);
    config.books.max_levels_per_side = 1024;
    config.event_ring = 1 << 12;
    let mut h = Harness::start(config, &day, &expected);
    let stall = day.opening..day.opening + 20_000;
    let seen = play_statuses(&mut h, stall);
    let stats = h.plane.shards()[0].stats().snapshot();
    assert!(
        stats.ring_full > 0 && seen.ring_full > 0,
        "the ring overflowed"
    );
    assert_in_order(&h, &plan, &seen.got);
    assert_final_status(&h, &plan, &seen.state);
}

/// Fails if a status event of `got` was not sent by the feed, or came out of order.
fn assert_in_order(h: &Harness<'_>, plan: &Plan, got: &HashMap<u16, Vec<Expect>>) {
    for locate in plan.locates() {
        let want = h
            .seen
            .expected
            .events
            .get(&locate)
            .map_or(&[][..], Vec::as_slice);
        let mut next = 0;
        for g in got.get(&locate).map_or(&[][..], Vec::as_slice) {
            let at = want[next..].iter().position(|(_, w)| w == g);
            next += at.unwrap_or_else(|| panic!("locate {locate}: unexpected or late {g:?}")) + 1;
        }
    }
}
