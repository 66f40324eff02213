//! [`Books`]: every L3 book of a shard, with the orders, order index and levels they share.
//!
//! One book per stock locate (an array index, no hashing). Orders live in the shard's
//! [`Pool`]; ITCH order references map to pool slots through the order index (see
//! benches/order_index.rs for the choice); levels come from the shard's [`LevelStore`]. Orders at
//! a price form a FIFO list through the pool (`prev`/`next` slot indices, `head`/`tail` in the
//! level), so queue position is kept.
//!
//! [`Books::apply`] takes one parsed ITCH message and emits one [`L2Change`] per changed level.
//! It never allocates, never panics on any message sequence, and never silently drops data:
//! unknown references, duplicate adds, over-executions and every capacity limit are counted in
//! [`BookStats`], and a book that lost an order to a capacity limit is marked incomplete.

use super::change::L2Change;
use super::ladder::Ladder;
use super::level::{Level, NIL};
use super::level_store::LevelStore;
use super::order_index::{IndexError, OrderIndex, RefIndex};
use super::stats::BookStats;
use crate::arena::{Arena, ArenaError, Region};
use crate::feed::itch::{Message, Side};
use crate::pool::{Pool, PoolError, Slot};

/// How much a shard's books may hold; everything is reserved up front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BooksConfig {
    /// Live orders across all books.
    pub max_orders: usize,
    /// Price levels across all books and sides (68 bytes each: the level and its sort key).
    pub max_levels: usize,
    /// Price levels on one side of one book (NASDAQ's deepest book peaks near 2,400).
    pub max_levels_per_side: u32,
    /// Books: stock locates `0..max_symbols` are accepted (at most 65,536).
    pub max_symbols: usize,
}

impl Default for BooksConfig {
    /// Sized for a full NASDAQ day (1.65 M live orders at peak, 8,371 symbols) with headroom:
    /// about 250 MiB.
    fn default() -> Self {
        Self {
            max_orders: 2 << 20,
            max_levels: 1 << 20,
            max_levels_per_side: 1 << 13,
            max_symbols: 1 << 14,
        }
    }
}

impl BooksConfig {
    /// Bytes of arena that [`Books::new`] carves for this config: the books, the order pool
    /// and the levels with their keys, each region starting on a line of its own. The order
    /// index stays on the heap.
    pub fn arena_bytes(&self) -> usize {
        fn region<T>(len: usize) -> usize {
            len.saturating_mul(size_of::<T>())
                .saturating_add(crate::arena::CACHE_LINE)
        }
        region::<Book>(self.max_symbols)
            .saturating_add(region::<Slot<Order>>(self.max_orders))
            .saturating_add(region::<Level>(self.max_levels))
            .saturating_add(region::<u32>(self.max_levels))
    }
}

/// Errors of building the books.
#[derive(Debug, thiserror::Error)]
pub enum BooksError {
    /// The order pool could not be built.
    #[error("order pool: {0}")]
    Pool(#[from] PoolError),
    /// The arena had no room.
    #[error(transparent)]
    Arena(#[from] ArenaError),
    /// More books were asked for than stock locates exist.
    #[error("max_symbols {0} is above 65536 (stock locates are 16-bit): lower it")]
    TooManySymbols(usize),
}

/// A resting order: 28 bytes with 4-byte alignment, so a pool slot (with its generation) is 32
/// bytes and two share a cache line without straddling one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// ITCH order reference number, as two halves to keep the alignment at 4.
    reference: [u32; 2],
    /// Limit price in ticks.
    pub price: u32,
    /// Shares still open.
    pub shares: u32,
    /// Pool slot of the order ahead of this one at its price, or `NIL`.
    pub prev: u32,
    /// Pool slot of the order behind this one at its price, or `NIL`.
    pub next: u32,
    /// The book's stock locate.
    pub locate: u16,
    /// Buy or sell.
    pub side: Side,
}

/// One symbol's book.
#[derive(Clone, Copy, Debug)]
pub struct Book {
    symbol: [u8; 8],
    bids: Ladder,
    asks: Ladder,
    trading_state: u8,
    listed: bool,
    crossed: bool,
    incomplete: bool,
}

// Two pool slots to a cache line, neither straddling one (arena carves are line-aligned).
const _: () = assert!(size_of::<Slot<Order>>() == 32);

impl Order {
    /// ITCH order reference number.
    #[inline(always)]
    pub const fn reference(&self) -> u64 {
        ((self.reference[0] as u64) << 32) | self.reference[1] as u64
    }
}

impl Book {
    const fn new() -> Self {
        Self {
            symbol: *b"        ",
            bids: Ladder::new(Side::Buy),
            asks: Ladder::new(Side::Sell),
            trading_state: 0,
            listed: false,
            crossed: false,
            incomplete: false,
        }
    }

    #[inline(always)]
    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }
}

/// A read-only view of one book.
#[derive(Clone, Copy, Debug)]
pub struct BookView<'s> {
    locate: u16,
    book: &'s Book,
    levels: &'s LevelStore<'s>,
    orders: &'s Pool<'s, Order>,
}

impl<'s> BookView<'s> {
    /// The book's stock locate.
    pub fn locate(&self) -> u16 {
        self.locate
    }

    /// The symbol from the stock directory (R) message, padding trimmed; empty if none came.
    pub fn symbol(&self) -> &'s str {
        crate::feed::itch::alpha_str(&self.book.symbol).unwrap_or("")
    }

    /// Bid levels, best (highest) first.
    pub fn bids(&self) -> impl Iterator<Item = &'s Level> + use<'s> {
        self.book.bids.iter_best_first(self.levels)
    }

    /// Ask levels, best (lowest) first.
    pub fn asks(&self) -> impl Iterator<Item = &'s Level> + use<'s> {
        self.book.asks.iter_best_first(self.levels)
    }

    /// The levels of `side`, best first.
    pub fn side(&self, side: Side) -> impl Iterator<Item = &'s Level> + use<'s> {
        match side {
            Side::Buy => self.book.bids,
            Side::Sell => self.book.asks,
        }
        .iter_best_first(self.levels)
    }

    /// The orders resting at `price` on `side`, oldest (first to fill) first.
    pub fn queue(&self, side: Side, price: u32) -> impl Iterator<Item = &'s Order> + use<'s> {
        let ladder = match side {
            Side::Buy => self.book.bids,
            Side::Sell => self.book.asks,
        };
        let head = ladder
            .find(self.levels, price)
            .ok()
            .map_or(NIL, |i| ladder.levels(self.levels)[i].head);
        let orders = self.orders;
        std::iter::successors(orders.get_at(head), move |o| orders.get_at(o.next))
    }

    /// The best bid level.
    pub fn best_bid(&self) -> Option<&'s Level> {
        self.book.bids.best(self.levels)
    }

    /// The best ask level.
    pub fn best_ask(&self) -> Option<&'s Level> {
        self.book.asks.best(self.levels)
    }

    /// The trading state byte of the last H message (`T` trading, `H` halted, `P` paused,
    /// `Q` quotation only), or 0 if none came.
    pub fn trading_state(&self) -> u8 {
        self.book.trading_state
    }

    /// True when best bid ≥ best ask. Flagged, not asserted: feeds do cross briefly.
    pub fn crossed(&self) -> bool {
        self.book.crossed
    }

    /// True when an order of this book was dropped for a capacity limit: its levels are known
    /// to be wrong. Serve it as such, never as a correct book.
    pub fn incomplete(&self) -> bool {
        self.book.incomplete
    }

    /// True once a stock directory (R) message named this locate.
    pub fn listed(&self) -> bool {
        self.book.listed
    }
}

/// All books of a shard. `I` is the order-reference index; the default is the one the
/// benches chose (see [`OrderIndex`]), the other is there to be compared with it.
pub struct Books<'a, I: RefIndex = OrderIndex> {
    books: Region<'a, Book>,
    orders: Pool<'a, Order>,
    index: I,
    levels: LevelStore<'a>,
    max_levels_per_side: u32,
    stats: BookStats,
}

impl<'a, I: RefIndex> Books<'a, I> {
    /// Empty books sized by `config`, carved from `arena` when given (the order index is on
    /// the heap).
    ///
    /// # Errors
    /// A capacity the structures cannot hold, or an arena too small for them.
    pub fn new(config: BooksConfig, arena: Option<&'a Arena>) -> Result<Self, BooksError> {
        if config.max_symbols > 1 << 16 {
            return Err(BooksError::TooManySymbols(config.max_symbols));
        }
        let orders = match arena {
            Some(arena) => Pool::in_arena(arena, config.max_orders)?,
            None => Pool::try_with_capacity(config.max_orders)?,
        };
        Ok(Self {
            books: Region::new(arena, config.max_symbols, |_| Book::new())?,
            orders,
            index: I::with_capacity(config.max_orders),
            levels: LevelStore::new(arena, config.max_levels)?,
            max_levels_per_side: config.max_levels_per_side,
            stats: BookStats::default(),
        })
    }

    /// Applies one message, calling `out` once for each price level it changed.
    #[inline]
    pub fn apply(&mut self, message: &Message<'_>, out: &mut impl FnMut(L2Change)) {
        self.stats.messages += 1;
        match message {
            Message::AddOrder(m) => {
                let h = m.header();
                self.add(
                    h.stock_locate,
                    m.order_ref(),
                    m.side(),
                    m.shares(),
                    m.price(),
                    h.timestamp,
                    out,
                );
            }
            // E and C reduce alike: the resting order keeps its own price, a C's execution
            // price is for the tape. X takes shares off the same way.
            Message::OrderExecuted(m) => {
                self.stats.executions += 1;
                self.reduce(
                    m.order_ref(),
                    m.executed_shares(),
                    m.header().timestamp,
                    out,
                );
            }
            Message::OrderExecutedWithPrice(m) => {
                self.stats.executions += 1;
                self.reduce(
                    m.order_ref(),
                    m.executed_shares(),
                    m.header().timestamp,
                    out,
                );
            }
            Message::OrderCancel(m) => {
                self.stats.cancels += 1;
                self.reduce(
                    m.order_ref(),
                    m.cancelled_shares(),
                    m.header().timestamp,
                    out,
                );
            }
            Message::OrderDelete(m) => {
                self.stats.deletes += 1;
                match self.index.get(m.order_ref()) {
                    Some(slot) => self.remove_order(slot, m.header().timestamp, out),
                    None => self.stats.unknown_refs += 1,
                }
            }
            Message::OrderReplace(m) => {
                self.stats.replaces += 1;
                self.replace(
                    m.original_order_ref(),
                    m.new_order_ref(),
                    m.shares(),
                    m.price(),
                    m.header().timestamp,
                    out,
                );
            }
            Message::StockDirectory(m) => {
                let locate = m.header().stock_locate;
                match self.books.get_mut(locate as usize) {
                    Some(book) => {
                        book.symbol = *m.stock();
                        book.listed = true;
                    }
                    None => self.stats.symbols_full += 1,
                }
            }
            Message::TradingAction(m) => {
                match self.books.get_mut(m.header().stock_locate as usize) {
                    Some(book) => book.trading_state = m.trading_state(),
                    None => self.stats.symbols_full += 1,
                }
            }
            _ => self.stats.skipped += 1,
        }
    }

    /// Adds an order and emits its level. Returns false if it was not added.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn add(
        &mut self,
        locate: u16,
        reference: u64,
        side: Side,
        shares: u32,
        price: u32,
        timestamp: u64,
        out: &mut impl FnMut(L2Change),
    ) -> bool {
        let Some(book) = self.books.get_mut(locate as usize) else {
            self.stats.symbols_full += 1;
            return false;
        };
        if shares == 0 {
            // An order for nothing is dead on arrival: nothing rests.
            self.stats.skipped += 1;
            return false;
        }
        let order = Order {
            reference: [(reference >> 32) as u32, reference as u32],
            price,
            shares,
            prev: NIL,
            next: NIL,
            locate,
            side,
        };
        let Ok(handle) = self.orders.alloc(order) else {
            self.stats.orders_full += 1;
            book.incomplete = true;
            return false;
        };
        let slot = handle.index();
        match self.index.insert(reference, slot) {
            Ok(()) => {}
            Err(IndexError::Duplicate) => {
                self.stats.duplicate_refs += 1;
                let _ = self.orders.free(handle);
                return false;
            }
            Err(_) => {
                self.stats.orders_full += 1;
                book.incomplete = true;
                let _ = self.orders.free(handle);
                return false;
            }
        }
        let was_crossed = book.crossed;
        let ladder = book.ladder_mut(side);
        let Ok(at) = ladder.level_for(&mut self.levels, price, self.max_levels_per_side) else {
            self.stats.levels_full += 1;
            book.incomplete = true;
            self.index.remove(reference);
            let _ = self.orders.free(handle);
            return false;
        };
        // Only an order that is now the best of its side can cross the book.
        let at_best = at + 1 == ladder.len();
        let level = &mut ladder.levels_mut(&mut self.levels)[at];
        let tail = level.tail;
        level.tail = slot;
        if tail == NIL {
            level.head = slot;
        }
        level.orders += 1;
        level.shares += u64::from(shares);
        let change = L2Change {
            locate,
            side,
            price,
            shares: level.shares,
            orders: level.orders,
            timestamp,
        };
        if let Some(prev) = self.orders.get_at_mut(tail) {
            prev.next = slot;
        }
        if let Some(order) = self.orders.get_at_mut(slot) {
            order.prev = tail;
        }
        self.stats.adds += 1;
        self.emit(change, out);
        if at_best || was_crossed {
            self.update_crossed(locate);
        }
        true
    }

    /// Takes `shares` off the order in `reference`, removing it when none are left.
    #[inline]
    fn reduce(
        &mut self,
        reference: u64,
        shares: u32,
        timestamp: u64,
        out: &mut impl FnMut(L2Change),
    ) {
        let Some(slot) = self.index.get(reference) else {
            self.stats.unknown_refs += 1;
            return;
        };
        let Some(order) = self.orders.get_at_mut(slot) else {
            self.stats.unknown_refs += 1;
            return;
        };
        if shares >= order.shares {
            if shares > order.shares {
                self.stats.overfills += 1;
            }
            self.remove_order(slot, timestamp, out);
            return;
        }
        order.shares -= shares;
        let (locate, side, price) = (order.locate, order.side, order.price);
        let Some(book) = self.books.get_mut(locate as usize) else {
            return;
        };
        let ladder = book.ladder_mut(side);
        if let Ok(at) = ladder.find(&self.levels, price) {
            let level = &mut ladder.levels_mut(&mut self.levels)[at];
            level.shares -= u64::from(shares);
            let change = L2Change {
                locate,
                side,
                price,
                shares: level.shares,
                orders: level.orders,
                timestamp,
            };
            self.emit(change, out);
        }
    }

    /// Removes the order in pool `slot` entirely and emits its level.
    #[inline]
    fn remove_order(&mut self, slot: u32, timestamp: u64, out: &mut impl FnMut(L2Change)) {
        if let Some(change) = self.unlink(slot, timestamp) {
            self.emit(change, out);
            self.uncross(change.locate);
        }
    }

    /// Removes the order in pool `slot` and returns its level's new state, without emitting.
    fn unlink(&mut self, slot: u32, timestamp: u64) -> Option<L2Change> {
        let handle = self.orders.handle_at(slot)?;
        let order = self.orders.free(handle).ok()?;
        self.index.remove(order.reference());
        if let Some(prev) = self.orders.get_at_mut(order.prev) {
            prev.next = order.next;
        }
        if let Some(next) = self.orders.get_at_mut(order.next) {
            next.prev = order.prev;
        }
        let book = self.books.get_mut(order.locate as usize)?;
        let ladder = book.ladder_mut(order.side);
        let at = ladder.find(&self.levels, order.price).ok()?;
        let level = &mut ladder.levels_mut(&mut self.levels)[at];
        if level.head == slot {
            level.head = order.next;
        }
        if level.tail == slot {
            level.tail = order.prev;
        }
        level.orders -= 1;
        level.shares -= u64::from(order.shares);
        let change = L2Change {
            locate: order.locate,
            side: order.side,
            price: order.price,
            shares: level.shares,
            orders: level.orders,
            timestamp,
        };
        if level.orders == 0 {
            ladder.remove(&mut self.levels, at);
        }
        Some(change)
    }

    /// U: the old order leaves (priority lost), a new one joins the back of its new price,
    /// same side and book. When both are at one price, one change carries the final state.
    fn replace(
        &mut self,
        original: u64,
        new: u64,
        shares: u32,
        price: u32,
        timestamp: u64,
        out: &mut impl FnMut(L2Change),
    ) {
        let Some(slot) = self.index.get(original) else {
            self.stats.unknown_refs += 1;
            return;
        };
        let Some(old) = self.unlink(slot, timestamp) else {
            self.stats.unknown_refs += 1;
            return;
        };
        if old.price != price {
            self.emit(old, out);
        }
        let added = self.add(old.locate, new, old.side, shares, price, timestamp, out);
        if !added && old.price == price {
            self.emit(old, out);
        }
        self.uncross(old.locate);
    }

    #[inline(always)]
    fn emit(&mut self, change: L2Change, out: &mut impl FnMut(L2Change)) {
        self.stats.changes += 1;
        out(change);
    }

    /// A removal can only uncross a book: re-check only books that are crossed.
    #[inline]
    fn uncross(&mut self, locate: u16) {
        if self
            .books
            .get(locate as usize)
            .is_some_and(|book| book.crossed)
        {
            self.update_crossed(locate);
        }
    }

    #[inline]
    fn update_crossed(&mut self, locate: u16) {
        let Some(book) = self.books.get_mut(locate as usize) else {
            return;
        };
        let crossed = match (book.bids.best(&self.levels), book.asks.best(&self.levels)) {
            (Some(bid), Some(ask)) => bid.price >= ask.price,
            _ => false,
        };
        if crossed && !book.crossed {
            self.stats.crossed += 1;
        }
        book.crossed = crossed;
    }

    /// Empties the book of `locate`: its orders go back to the pool (and leave the index),
    /// its levels back to the store. The symbol name and trading state stay. Returns how many
    /// orders were freed. Takes time in proportion to the book's orders and levels.
    pub fn clear_book(&mut self, locate: u16) -> usize {
        let Some(book) = self.books.get_mut(locate as usize) else {
            return 0;
        };
        let mut freed = 0;
        for ladder in [&mut book.bids, &mut book.asks] {
            for level in ladder.levels(&self.levels) {
                let mut slot = level.head;
                while let Some(handle) = self.orders.handle_at(slot) {
                    let Ok(order) = self.orders.free(handle) else {
                        break;
                    };
                    self.index.remove(order.reference());
                    freed += 1;
                    slot = order.next;
                }
            }
            ladder.clear(&mut self.levels);
        }
        book.crossed = false;
        book.incomplete = false;
        freed
    }

    /// Empties every book (a new trading day): all orders and levels are returned. Symbol
    /// names, trading states and the counters stay.
    pub fn clear_all(&mut self) {
        for locate in 0..self.books.len() {
            // locates are below 65,536 (checked in `new`)
            self.clear_book(locate as u16);
        }
    }

    /// Marks the book of `locate` incomplete: it is known to miss orders (it was not tracked
    /// for a while), until [`Books::clear_book`] or [`Books::clear_all`].
    pub fn mark_incomplete(&mut self, locate: u16) {
        if let Some(book) = self.books.get_mut(locate as usize) {
            book.incomplete = true;
        }
    }

    /// Price levels of `locate` on both sides (0 for a locate beyond capacity).
    pub fn level_count(&self, locate: u16) -> usize {
        self.books
            .get(locate as usize)
            .map_or(0, |b| b.bids.len() + b.asks.len())
    }

    /// The book of `locate`, if the locate is within capacity.
    pub fn book(&self, locate: u16) -> Option<BookView<'_>> {
        Some(BookView {
            locate,
            book: self.books.get(locate as usize)?,
            levels: &self.levels,
            orders: &self.orders,
        })
    }

    /// Every book a stock directory message listed, by locate.
    pub fn listed(&self) -> impl Iterator<Item = BookView<'_>> {
        self.books
            .iter()
            .enumerate()
            .filter(|(_, b)| b.listed)
            .map(|(i, book)| BookView {
                locate: i as u16,
                book,
                levels: &self.levels,
                orders: &self.orders,
            })
    }

    /// The locate of `symbol` (as listed by a stock directory message), searched linearly.
    pub fn locate_of(&self, symbol: &str) -> Option<u16> {
        self.listed()
            .find(|b| b.symbol() == symbol)
            .map(|b| b.locate())
    }

    /// The counters.
    pub fn stats(&self) -> &BookStats {
        &self.stats
    }

    /// Orders resting across all books.
    pub fn live_orders(&self) -> usize {
        self.orders.len()
    }

    /// Levels lent to ladders across all books (block granularity).
    pub fn levels_reserved(&self) -> u64 {
        self.levels.lent()
    }
}

impl<I: RefIndex> std::fmt::Debug for Books<'_, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Books")
            .field("symbols", &self.books.len())
            .field("orders", &self.orders)
            .field("levels", &self.levels)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::itch::encode::{self, EncHeader};
    use crate::feed::itch::parse;

    const AAPL: u16 = 1;
    const MSFT: u16 = 2;

    fn h(locate: u16) -> EncHeader {
        EncHeader {
            stock_locate: locate,
            tracking: 0,
            timestamp: 42,
        }
    }

    /// Books with two listed symbols, and a way to feed them encoded messages.
    struct Fixture {
        books: Books<'static>,
        changes: Vec<L2Change>,
    }

    impl Fixture {
        fn new() -> Self {
            let config = BooksConfig {
                max_orders: 64,
                max_levels: 64,
                max_levels_per_side: 40,
                max_symbols: 8,
            };
            let mut f = Self {
                books: Books::new(config, None).unwrap(),
                changes: Vec::new(),
            };
            f.send(&encode::stock_directory(h(AAPL), encode::stock("AAPL")));
            f.send(&encode::stock_directory(h(MSFT), encode::stock("MSFT")));
            f
        }

        fn send(&mut self, bytes: &[u8]) -> Vec<L2Change> {
            let message = parse(bytes).unwrap();
            let mut out = Vec::new();
            self.books.apply(&message, &mut |c| out.push(c));
            self.changes.extend(&out);
            out
        }

        fn add(
            &mut self,
            locate: u16,
            r: u64,
            side: Side,
            shares: u32,
            price: u32,
        ) -> Vec<L2Change> {
            let stock = encode::stock(if locate == AAPL { "AAPL" } else { "MSFT" });
            self.send(&encode::add_order(
                h(locate),
                r,
                side,
                shares,
                stock,
                price,
                None,
            ))
        }

        fn levels(&self, locate: u16, side: Side) -> Vec<(u32, u64, u32)> {
            let book = self.books.book(locate).unwrap();
            book.side(side)
                .map(|l| (l.price, l.shares, l.orders))
                .collect()
        }

        fn queue(&self, locate: u16, side: Side, price: u32) -> Vec<u64> {
            let book = self.books.book(locate).unwrap();
            book.queue(side, price).map(|o| o.reference()).collect()
        }
    }

    fn change(locate: u16, side: Side, price: u32, shares: u64, orders: u32) -> L2Change {
        L2Change {
            locate,
            side,
            price,
            shares,
            orders,
            timestamp: 42,
        }
    }

    #[test]
    fn adds_aggregate_per_level_and_keep_time_priority() {
        let mut f = Fixture::new();
        assert_eq!(
            f.add(AAPL, 1, Side::Buy, 100, 1000),
            [change(AAPL, Side::Buy, 1000, 100, 1)]
        );
        f.add(AAPL, 2, Side::Buy, 50, 1000);
        f.add(AAPL, 3, Side::Buy, 10, 990);
        f.add(AAPL, 4, Side::Sell, 70, 1010);
        f.add(MSFT, 5, Side::Sell, 5, 2000);
        assert_eq!(f.levels(AAPL, Side::Buy), [(1000, 150, 2), (990, 10, 1)]);
        assert_eq!(f.levels(AAPL, Side::Sell), [(1010, 70, 1)]);
        assert_eq!(f.levels(MSFT, Side::Sell), [(2000, 5, 1)]);
        assert_eq!(f.queue(AAPL, Side::Buy, 1000), [1, 2]);
        let aapl = f.books.book(AAPL).unwrap();
        assert_eq!(aapl.symbol(), "AAPL");
        assert_eq!(aapl.best_bid().map(|l| l.price), Some(1000));
        assert_eq!(aapl.best_ask().map(|l| l.price), Some(1010));
        assert_eq!(f.books.locate_of("MSFT"), Some(MSFT));
        assert_eq!(f.books.live_orders(), 5);
    }

    #[test]
    fn clearing_a_book_returns_its_orders_and_levels_and_spares_the_others() {
        let mut f = Fixture::new();
        f.add(AAPL, 1, Side::Buy, 100, 1000);
        f.add(AAPL, 2, Side::Buy, 50, 1000);
        f.add(AAPL, 3, Side::Sell, 10, 1010);
        f.add(MSFT, 4, Side::Sell, 5, 2000);
        f.books.mark_incomplete(AAPL);
        assert_eq!(f.books.level_count(AAPL), 2);
        let lent = f.books.levels_reserved();
        assert_eq!(f.books.clear_book(AAPL), 3);
        assert_eq!(f.books.live_orders(), 1);
        assert_eq!(f.books.level_count(AAPL), 0);
        assert!(f.books.levels_reserved() < lent);
        let aapl = f.books.book(AAPL).unwrap();
        assert!(aapl.best_bid().is_none() && aapl.best_ask().is_none());
        assert!(!aapl.incomplete());
        assert_eq!(aapl.symbol(), "AAPL", "the name stays");
        // the cleared orders left the index: their references are unknown now
        f.send(&encode::order_delete(h(AAPL), 2));
        assert_eq!(f.books.stats().unknown_refs, 1);
        // a reference can be used again, and the other book is intact
        f.add(AAPL, 1, Side::Buy, 7, 999);
        assert_eq!(f.levels(AAPL, Side::Buy), [(999, 7, 1)]);
        assert_eq!(f.levels(MSFT, Side::Sell), [(2000, 5, 1)]);
        f.books.clear_all();
        assert_eq!(f.books.live_orders(), 0);
        assert_eq!(f.books.levels_reserved(), 0);
        assert_eq!(f.books.locate_of("MSFT"), Some(MSFT));
    }

    #[test]
    fn executions_cancels_and_deletes_reduce_then_remove() {
        let mut f = Fixture::new();
        f.add(AAPL, 1, Side::Sell, 100, 1000);
        f.add(AAPL, 2, Side::Sell, 100, 1000);
        assert_eq!(
            f.send(&encode::order_executed(h(AAPL), 1, 30, 9)),
            [change(AAPL, Side::Sell, 1000, 170, 2)]
        );
        // C: the resting order keeps its own price whatever the execution price
        assert_eq!(
            f.send(&encode::order_executed_with_price(
                h(AAPL),
                1,
                20,
                10,
                true,
                1234
            )),
            [change(AAPL, Side::Sell, 1000, 150, 2)]
        );
        assert_eq!(
            f.send(&encode::order_cancel(h(AAPL), 2, 60)),
            [change(AAPL, Side::Sell, 1000, 90, 2)]
        );
        // executing the rest removes order 1; its queue successor moves up
        assert_eq!(
            f.send(&encode::order_executed(h(AAPL), 1, 50, 11)),
            [change(AAPL, Side::Sell, 1000, 40, 1)]
        );
        assert_eq!(f.queue(AAPL, Side::Sell, 1000), [2]);
        assert_eq!(
            f.send(&encode::order_delete(h(AAPL), 2)),
            [change(AAPL, Side::Sell, 1000, 0, 0)]
        );
        assert!(f.levels(AAPL, Side::Sell).is_empty());
        assert_eq!(f.books.live_orders(), 0);
        let s = f.books.stats();
        assert_eq!(
            (s.executions, s.cancels, s.deletes, s.overfills),
            (3, 1, 1, 0)
        );
    }

    #[test]
    fn replace_loses_priority_keeps_side_and_book() {
        let mut f = Fixture::new();
        f.add(AAPL, 1, Side::Buy, 100, 1000);
        f.add(AAPL, 2, Side::Buy, 100, 1000);
        // same price: one change with the final state, order 3 now at the back
        assert_eq!(
            f.send(&encode::order_replace(h(AAPL), 1, 3, 40, 1000)),
            [change(AAPL, Side::Buy, 1000, 140, 2)]
        );
        assert_eq!(f.queue(AAPL, Side::Buy, 1000), [2, 3]);
        // new price: the old level first, then the new one
        assert_eq!(
            f.send(&encode::order_replace(h(AAPL), 2, 4, 10, 1005)),
            [
                change(AAPL, Side::Buy, 1000, 40, 1),
                change(AAPL, Side::Buy, 1005, 10, 1)
            ]
        );
        assert_eq!(f.levels(AAPL, Side::Buy), [(1005, 10, 1), (1000, 40, 1)]);
        // the replaced reference is gone, the new one works
        f.send(&encode::order_delete(h(AAPL), 2));
        assert_eq!(f.books.stats().unknown_refs, 1);
        f.send(&encode::order_delete(h(AAPL), 4));
        assert_eq!(f.levels(AAPL, Side::Buy), [(1000, 40, 1)]);
    }

    #[test]
    fn bad_references_are_counted_not_fatal() {
        let mut f = Fixture::new();
        f.add(AAPL, 1, Side::Buy, 100, 1000);
        assert!(
            f.send(&encode::order_executed(h(AAPL), 99, 1, 1))
                .is_empty()
        );
        assert!(f.send(&encode::order_cancel(h(AAPL), 99, 1)).is_empty());
        assert!(f.send(&encode::order_delete(h(AAPL), 99)).is_empty());
        assert!(
            f.send(&encode::order_replace(h(AAPL), 99, 100, 1, 1))
                .is_empty()
        );
        assert!(
            f.add(AAPL, 1, Side::Sell, 5, 5).is_empty(),
            "duplicate reference ignored"
        );
        // executing more than rests removes the order and counts it
        f.send(&encode::order_executed(h(AAPL), 1, 500, 2));
        let s = *f.books.stats();
        assert_eq!((s.unknown_refs, s.duplicate_refs, s.overfills), (4, 1, 1));
        assert!(f.levels(AAPL, Side::Buy).is_empty());
    }

    #[test]
    fn a_crossed_book_is_flagged_and_cleared() {
        let mut f = Fixture::new();
        f.add(AAPL, 1, Side::Sell, 100, 1000);
        f.add(AAPL, 2, Side::Buy, 100, 1001);
        assert!(f.books.book(AAPL).unwrap().crossed());
        f.send(&encode::order_delete(h(AAPL), 1));
        assert!(!f.books.book(AAPL).unwrap().crossed());
        assert_eq!(f.books.stats().crossed, 1);
    }

    #[test]
    fn capacity_limits_are_counted_and_flag_the_book() {
        let mut f = Fixture::new();
        // 64 levels: 8 per block; each side of a book grows 8 -> 16 -> 32 -> 64
        for i in 0..40 {
            f.add(AAPL, i, Side::Buy, 1, 1000 + i as u32);
        }
        assert_eq!(
            f.books.stats().levels_full,
            8,
            "32 levels fit, then no block of 64"
        );
        assert!(f.books.book(AAPL).unwrap().incomplete());
        assert!(!f.books.book(MSFT).unwrap().incomplete());
        for i in 100..200 {
            f.add(MSFT, i, Side::Sell, 1, 5000);
        }
        assert!(f.books.stats().orders_full > 0);
        assert!(f.books.book(MSFT).unwrap().incomplete());
        assert_eq!(f.levels(MSFT, Side::Sell).len(), 1);
        // a locate beyond max_symbols
        f.add(9, 1000, Side::Buy, 1, 1);
        assert_eq!(f.books.stats().symbols_full, 1);
        assert_eq!(f.books.live_orders(), 64);
    }

    #[test]
    fn the_per_side_level_limit_is_counted() {
        let config = BooksConfig {
            max_levels_per_side: 10,
            ..BooksConfig::default()
        };
        let mut books: Books<'_> = Books::new(config, None).unwrap();
        let stock = encode::stock("MSFT");
        for i in 0..20u32 {
            let add = encode::add_order(h(MSFT), u64::from(i), Side::Buy, 1, stock, 100 + i, None);
            books.apply(&parse(&add).unwrap(), &mut |_| {});
        }
        assert_eq!(books.stats().levels_full, 10);
        assert_eq!(books.book(MSFT).unwrap().bids().count(), 10);
        assert!(books.book(MSFT).unwrap().incomplete());
        // an existing level still takes orders
        let add = encode::add_order(h(MSFT), 99, Side::Buy, 5, stock, 100, None);
        books.apply(&parse(&add).unwrap(), &mut |_| {});
        assert_eq!(
            books.book(MSFT).unwrap().bids().last().map(|l| l.shares),
            Some(6)
        );
    }

    #[test]
    fn trading_state_and_skipped_messages() {
        let mut f = Fixture::new();
        f.send(&encode::trading_action(
            h(AAPL),
            encode::stock("AAPL"),
            b'H',
            *b"    ",
        ));
        assert_eq!(f.books.book(AAPL).unwrap().trading_state(), b'H');
        let trade = encode::trade(h(AAPL), 0, Side::Buy, 1, encode::stock("AAPL"), 1, 1);
        assert!(f.send(&trade).is_empty());
        assert_eq!(f.books.stats().skipped, 1);
    }
}
