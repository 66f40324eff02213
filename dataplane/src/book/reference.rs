//! [`ReferenceBooks`]: the plain, obviously correct book that the fast one is checked against.
//!
//! A `HashMap` of orders, a `BTreeMap` of price → (shares, orders) per side and a `Vec` of
//! references per level in time priority, kept from first principles on every message; no
//! capacity limits, no cleverness. The differential tests
//! compare [`super::Books`] with it on long generated streams, and the book bench uses it as the
//! "plain BTreeMap book" peer.

use std::collections::{BTreeMap, HashMap};

use crate::feed::itch::{Message, Side};

#[derive(Clone, Copy, Debug)]
struct RefOrder {
    locate: u16,
    side: Side,
    price: i64,
    shares: u32,
}

/// One side: price → (aggregate shares, order count).
type SideMap = BTreeMap<i64, (u64, u32)>;

/// Every book, the simple way.
#[derive(Debug, Default)]
pub struct ReferenceBooks {
    orders: HashMap<u64, RefOrder>,
    books: HashMap<u16, (SideMap, SideMap)>,
    /// Each level's references, first to fill first.
    queues: HashMap<(u16, Side, i64), Vec<u64>>,
    symbols: HashMap<u16, String>,
}

impl ReferenceBooks {
    /// Empty books.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one message.
    pub fn apply(&mut self, message: &Message<'_>) {
        match message {
            Message::AddOrder(m) => self.add(
                m.order_ref(),
                m.header().stock_locate,
                m.side(),
                i64::from(m.price()),
                m.shares(),
            ),
            Message::OrderExecuted(m) => self.reduce(m.order_ref(), m.executed_shares()),
            Message::OrderExecutedWithPrice(m) => self.reduce(m.order_ref(), m.executed_shares()),
            Message::OrderCancel(m) => self.reduce(m.order_ref(), m.cancelled_shares()),
            Message::OrderDelete(m) => self.reduce(m.order_ref(), u32::MAX),
            Message::OrderReplace(m) => {
                if let Some(old) = self.orders.get(&m.original_order_ref()).copied() {
                    self.reduce(m.original_order_ref(), u32::MAX);
                    self.add(
                        m.new_order_ref(),
                        old.locate,
                        old.side,
                        i64::from(m.price()),
                        m.shares(),
                    );
                }
            }
            Message::StockDirectory(m) => {
                let name = String::from_utf8_lossy(m.stock()).trim_end().to_owned();
                self.symbols.insert(m.header().stock_locate, name);
            }
            _ => {}
        }
    }

    fn add(&mut self, reference: u64, locate: u16, side: Side, price: i64, shares: u32) {
        if shares == 0 || self.orders.contains_key(&reference) {
            return;
        }
        self.orders.insert(
            reference,
            RefOrder {
                locate,
                side,
                price,
                shares,
            },
        );
        let level = self.side_mut(locate, side).entry(price).or_insert((0, 0));
        level.0 += u64::from(shares);
        level.1 += 1;
        self.queues
            .entry((locate, side, price))
            .or_default()
            .push(reference);
    }

    fn reduce(&mut self, reference: u64, shares: u32) {
        let Some(order) = self.orders.get_mut(&reference) else {
            return;
        };
        let taken = shares.min(order.shares);
        order.shares -= taken;
        let order = *order;
        if order.shares == 0 {
            self.orders.remove(&reference);
            let key = (order.locate, order.side, order.price);
            if let Some(queue) = self.queues.get_mut(&key) {
                queue.retain(|&r| r != reference);
                if queue.is_empty() {
                    self.queues.remove(&key);
                }
            }
        }
        let side = self.side_mut(order.locate, order.side);
        if let Some(level) = side.get_mut(&order.price) {
            level.0 -= u64::from(taken);
            if order.shares == 0 {
                level.1 -= 1;
            }
            if level.1 == 0 {
                side.remove(&order.price);
            }
        }
    }

    fn side_mut(&mut self, locate: u16, side: Side) -> &mut SideMap {
        let book = self.books.entry(locate).or_default();
        match side {
            Side::Buy => &mut book.0,
            Side::Sell => &mut book.1,
        }
    }

    /// The levels of one side as `(price, shares, orders)`, best first.
    pub fn levels(&self, locate: u16, side: Side) -> Vec<(i64, u64, u32)> {
        let Some((bids, asks)) = self.books.get(&locate) else {
            return Vec::new();
        };
        let flat = |(p, (s, o)): (&i64, &(u64, u32))| (*p, *s, *o);
        match side {
            Side::Buy => bids.iter().rev().map(flat).collect(),
            Side::Sell => asks.iter().map(flat).collect(),
        }
    }

    /// Empties the book of `locate`, as [`super::Books::clear_book`] does.
    pub fn clear_book(&mut self, locate: u16) {
        self.orders.retain(|_, o| o.locate != locate);
        self.books.remove(&locate);
        self.queues.retain(|&(l, _, _), _| l != locate);
    }

    /// The orders resting at one level as `(reference, shares)`, first to fill first.
    pub fn queue(&self, locate: u16, side: Side, price: i64) -> Vec<(u64, u32)> {
        self.queues
            .get(&(locate, side, price))
            .map(|queue| {
                queue
                    .iter()
                    .filter_map(|r| self.orders.get(r).map(|o| (*r, o.shares)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Locates that have (or had) orders or a directory entry.
    pub fn locates(&self) -> Vec<u16> {
        let mut all: Vec<u16> = self
            .books
            .keys()
            .chain(self.symbols.keys())
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The symbol a directory message gave `locate`.
    pub fn symbol(&self, locate: u16) -> Option<&str> {
        self.symbols.get(&locate).map(String::as_str)
    }

    /// Orders resting across all books.
    pub fn live_orders(&self) -> usize {
        self.orders.len()
    }
}
