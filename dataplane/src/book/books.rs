//! [`Books`]: every L3 book of a shard, with the orders and levels they share.
//!
//! Four flat structures, each found from the message or from the record before it, so that a
//! message costs about one cache miss per record it touches and the caller can start those
//! misses early ([`Books::prefetch`] and its two later steps, driven by
//! [`super::lookahead`]):
//!
//! - [`OrderStore`]: each resting order inline at its reference (a direct-mapped window of the
//!   newest references over a hash table of older ones). No index probe, no pool slot, and no
//!   links between orders: cancelling an order touches that order, its level and its queue
//!   chunk's count, never another order.
//! - [`LevelTable`]: each price level by (stock locate, side, price) in one hash table.
//! - per book and side, a [`SideOrder`]: the best levels sorted (the touch and the crossed
//!   check are O(1)) over an unordered list of the rest (a level anywhere in a deep book is
//!   O(1) to create or empty).
//! - [`Queues`]: each level's orders in time priority, in chunks of six references; each order
//!   knows its slot there. So L3 stays L3: a level lists its orders first to fill first
//!   ([`BookView::queue`]) and an order's place in its queue is counted from its own slot
//!   ([`Books::position`]), each in time proportional to the queue, not to the book.
//!
//! Prices are `i64` inside (the records were laid out for it); ITCH's `u32` prices convert
//! exactly both ways.
//!
//! [`Books::apply`] takes one parsed ITCH message and emits one [`L2Change`] per changed level.
//! It never allocates, never panics on any message sequence, and never silently drops data:
//! unknown references, duplicate adds, over-executions and every capacity limit are counted in
//! [`BookStats`], and a book that lost an order to a capacity limit is marked incomplete.

use super::change::{ChangeSink, L2Change, OrderAction, OrderChange};
use super::level_table::{Level, LevelTable};
use super::op::{NewOrder, Op};
use super::order_store::{OrderStore, StoreError};
use super::price_lists::{MIN_BLOCK, PriceLists};
use super::queues::{NIL, Queues};
use super::side::SideOrder;
use super::stats::BookStats;
use crate::arena::{Arena, ArenaError, Region};
use crate::feed::itch::{Message, Side};
use crate::runtime::event::StatusChange;
use crate::symbol::Symbol;

pub use super::level_table::Level as BookLevel;
pub use super::order_store::Order;

/// How much a shard's books may hold; everything is reserved up front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BooksConfig {
    /// Live orders across all books (192 bytes each: 128 in the [`OrderStore`] and a 64-byte
    /// queue chunk in [`Queues`] that each may pin).
    pub max_orders: usize,
    /// Price levels across all books and sides (192 bytes each: the level table at most half
    /// full, the price lists, and the tail chunk of its queue).
    pub max_levels: usize,
    /// Price levels on one side of one book (NASDAQ's deepest book peaks near 2,400).
    pub max_levels_per_side: u32,
    /// Books: stock locates `0..max_symbols` are accepted (at most 65,536).
    pub max_symbols: usize,
}

impl Default for BooksConfig {
    /// Sized for a full NASDAQ day (1.65 M live orders at peak, 8,371 symbols) with headroom:
    /// about 600 MiB. (`pinbook gen --profile deep` at 5 M messages keeps 1.15 M levels: give
    /// it `max_levels` 2 M.)
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
    /// Bytes of arena that [`Books::new`] carves for this config, each region starting on a
    /// line of its own.
    pub fn arena_bytes(&self) -> usize {
        size_of::<Book>()
            .saturating_mul(self.max_symbols)
            .saturating_add(crate::arena::CACHE_LINE)
            .saturating_add(OrderStore::bytes(self.max_orders))
            .saturating_add(LevelTable::bytes(self.max_levels))
            .saturating_add(Queues::bytes(Queues::chunks_for(
                self.max_orders,
                self.max_levels,
            )))
            .saturating_add(self.list_keys().saturating_mul(size_of::<i64>()))
            .saturating_add(crate::arena::CACHE_LINE)
    }

    /// Keys in the shard's price lists. A side's list holds the most levels the side had since
    /// it was last empty, rounded up to a power of two (at least 8), and gives its block back
    /// when it empties; 8 per level of `max_levels` leaves room for that rounding and for
    /// blocks parked in the free list of another size class.
    fn list_keys(&self) -> usize {
        self.max_levels
            .saturating_mul(8)
            .saturating_add(self.max_symbols.saturating_mul(4 * MIN_BLOCK as usize))
    }
}

/// Errors of building the books.
#[derive(Debug, thiserror::Error)]
pub enum BooksError {
    /// The arena had no room.
    #[error(transparent)]
    Arena(#[from] ArenaError),
    /// More books were asked for than stock locates exist.
    #[error("max_symbols {0} is above 65536 (stock locates are 16-bit): lower it")]
    TooManySymbols(usize),
}

/// One symbol's book.
#[derive(Clone, Copy, Debug)]
pub struct Book {
    symbol: Symbol,
    bids: SideOrder,
    asks: SideOrder,
    /// Orders resting in this book now.
    orders: u32,
    /// Bumped by [`Books::clear_book`]: orders of an earlier epoch are gone.
    epoch: u32,
    trading_state: u8,
    /// Prices are integers × 10^`price_exponent` (from the directory entry).
    price_exponent: i8,
    listed: bool,
    crossed: bool,
    incomplete: bool,
}

impl Book {
    const fn new() -> Self {
        Self {
            symbol: Symbol::from_itch(*b"        "),
            bids: SideOrder::new(Side::Buy),
            asks: SideOrder::new(Side::Sell),
            orders: 0,
            epoch: 0,
            trading_state: 0,
            price_exponent: crate::feed::itch::PRICE_EXPONENT,
            listed: false,
            crossed: false,
            incomplete: false,
        }
    }

    #[inline(always)]
    fn side(&self, side: Side) -> &SideOrder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    #[inline(always)]
    fn side_mut(&mut self, side: Side) -> &mut SideOrder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }
}

/// False for an order cleared with its book ([`Books::clear_book`]) and not freed yet: it is
/// unknown to every message that names it, and freed then.
#[inline(always)]
fn current(books: &[Book], order: &Order) -> bool {
    books
        .get(order.locate as usize)
        .is_some_and(|b| b.epoch == order.epoch)
}

/// The order of a queue entry, if it still rests there: a queue keeps the entries of orders
/// that left (see [`super::queues`]). `epoch` is the book's.
#[inline]
fn resting(orders: &OrderStore<'_>, epoch: u32, reference: u64, slot: u32) -> Option<Order> {
    orders
        .get(reference)
        .filter(|o| o.slot == slot && o.epoch == epoch)
        .copied()
}

/// The order change of `action` on the order `reference` whose level's change is `level`,
/// for `shares`.
#[inline(always)]
fn order_change(level: &L2Change, action: OrderAction, reference: u64, shares: u32) -> OrderChange {
    OrderChange {
        locate: level.locate,
        action,
        side: level.side,
        shares,
        reference,
        other: 0,
        price: level.price,
        timestamp: level.timestamp,
    }
}

/// A read-only view of one book, its side lists compacted ([`Books::book`]).
#[derive(Clone, Copy, Debug)]
pub struct BookView<'s> {
    locate: u16,
    book: &'s Book,
    levels: &'s LevelTable<'s>,
    lists: &'s PriceLists<'s>,
    orders: &'s OrderStore<'s>,
    queues: &'s Queues<'s>,
}

impl<'s> BookView<'s> {
    /// The book's stock locate.
    pub fn locate(&self) -> u16 {
        self.locate
    }

    /// The symbol from the stock directory (R) message, padding trimmed; empty if none came.
    pub fn symbol(&self) -> &'s str {
        self.book.symbol.as_str()
    }

    /// Bid levels, best (highest) first.
    pub fn bids(&self) -> impl Iterator<Item = Level> + use<'s> {
        self.side(Side::Buy)
    }

    /// Ask levels, best (lowest) first.
    pub fn asks(&self) -> impl Iterator<Item = Level> + use<'s> {
        self.side(Side::Sell)
    }

    /// The levels of `side`, best first.
    pub fn side(&self, side: Side) -> impl Iterator<Item = Level> + use<'s> {
        let (levels, locate) = (self.levels, self.locate);
        self.book
            .side(side)
            .prices(self.lists)
            .filter_map(move |price| levels.get(locate, side, price).copied())
    }

    /// The orders resting at `price` on `side`, first to fill first. Takes time in proportion
    /// to the level's queue (one record load per order).
    pub fn queue(&self, side: Side, price: i64) -> impl Iterator<Item = Order> + use<'s> {
        let tail = self
            .levels
            .get(self.locate, side, price)
            .map_or(NIL, |level| level.queue);
        let (orders, epoch) = (self.orders, self.book.epoch);
        self.queues
            .refs(tail)
            .filter_map(move |(reference, slot)| resting(orders, epoch, reference, slot))
    }

    /// The level at `price` on `side`, if any order rests there.
    pub fn level(&self, side: Side, price: i64) -> Option<Level> {
        self.levels.get(self.locate, side, price).copied()
    }

    /// Every resting order of the book in priority order: bids best price first, then asks
    /// best first, each price first to fill first. Takes time in proportion to the book.
    pub fn orders(&self) -> impl Iterator<Item = Order> + use<'s> {
        let view = *self;
        [Side::Buy, Side::Sell].into_iter().flat_map(move |side| {
            view.side(side)
                .flat_map(move |level| view.queue(side, level.price))
        })
    }

    /// Orders resting in the book.
    pub fn order_count(&self) -> u32 {
        self.book.orders
    }

    /// The best bid level.
    pub fn best_bid(&self) -> Option<Level> {
        self.best(Side::Buy)
    }

    /// The best ask level.
    pub fn best_ask(&self) -> Option<Level> {
        self.best(Side::Sell)
    }

    fn best(&self, side: Side) -> Option<Level> {
        let price = self.book.side(side).best()?;
        self.levels.get(self.locate, side, price).copied()
    }

    /// The trading state byte of the last H message (`T` trading, `H` halted, `P` paused,
    /// `Q` quotation only), or 0 if none came.
    pub fn trading_state(&self) -> u8 {
        self.book.trading_state
    }

    /// The book's prices are integers × 10^`price_exponent` (-4 for ITCH, -9 for DBN).
    pub fn price_exponent(&self) -> i8 {
        self.book.price_exponent
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

/// Where a resting order stands in its level's queue ([`Books::position`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The order.
    pub order: Order,
    /// Orders at its level that fill before it.
    pub orders_ahead: u32,
    /// Their shares.
    pub shares_ahead: u64,
}

/// All books of a shard.
pub struct Books<'a> {
    books: Region<'a, Book>,
    orders: OrderStore<'a>,
    levels: LevelTable<'a>,
    lists: PriceLists<'a>,
    queues: Queues<'a>,
    max_levels_per_side: u32,
    /// Orders of cleared books still in the store, freed when next named or at a new day.
    stale: usize,
    stats: BookStats,
}

impl<'a> Books<'a> {
    /// Empty books sized by `config`, carved from `arena` when given.
    ///
    /// # Errors
    /// A capacity the structures cannot hold, or an arena too small for them.
    pub fn new(config: BooksConfig, arena: Option<&'a Arena>) -> Result<Self, BooksError> {
        if config.max_symbols > 1 << 16 {
            return Err(BooksError::TooManySymbols(config.max_symbols));
        }
        Ok(Self {
            books: Region::new(arena, config.max_symbols, |_| Book::new())?,
            orders: OrderStore::new(arena, config.max_orders)?,
            levels: LevelTable::new(arena, config.max_levels)?,
            lists: PriceLists::new(arena, config.list_keys())?,
            queues: Queues::new(
                arena,
                Queues::chunks_for(config.max_orders, config.max_levels),
            )?,
            max_levels_per_side: config.max_levels_per_side,
            stale: 0,
            stats: BookStats::default(),
        })
    }

    /// The first of three steps that load what `op` will touch before [`Books::apply_op`]
    /// needs it (see [`super::lookahead`]): its order record (E, C, X, D, U, M) or its level's
    /// line and the record it will take (A). Each step reads only what the one before loaded;
    /// none changes anything.
    #[inline(always)]
    pub fn prefetch(&self, op: &Op) {
        match *op {
            Op::Add(o) => {
                self.levels.prefetch(o.locate, o.side, o.price);
                // next to the last add's for a rising ITCH reference (a line in cache); for a
                // sparse DBN order id a random record of the table, the miss an add waited on
                self.orders.prefetch(o.reference);
            }
            _ => {
                if let Some(reference) = op.resting() {
                    self.orders.prefetch(reference);
                }
            }
        }
    }

    /// The second step: from the order record, its level's line and its queue chunk's count
    /// (and for a U the new price's level); for an A, the queue chunk it will write.
    #[inline(always)]
    pub fn prefetch_levels(&self, op: &Op) {
        if let Op::Add(o) = op {
            self.prefetch_joining(o.locate, o.side, o.price);
            return;
        }
        if let Some(reference) = op.resting()
            && let Some(o) = self.orders.get(reference)
        {
            self.levels.prefetch(o.locate, o.side, o.price);
            self.queues.prefetch_slot(o.slot);
            if let Op::Replace { price, .. } = *op {
                self.levels.prefetch(o.locate, o.side, price);
            }
        }
    }

    /// The third step: from the level, the price list entry of a level the op will empty and
    /// a queue chunk it will empty (and for a U the new price's queue chunk).
    #[inline(always)]
    pub fn prefetch_lists(&self, op: &Op) {
        let Some(o) = op.resting().and_then(|r| self.orders.get(r)) else {
            return;
        };
        if let Op::Replace { price, .. } = *op {
            self.prefetch_joining(o.locate, o.side, price);
        }
        self.queues.prefetch_emptied(o.slot);
        if let Some(level) = self.levels.prefetch_leaving(o.locate, o.side, o.price)
            && level.orders == 1
            && let Some(book) = self.books.get(o.locate as usize)
        {
            book.side(o.side)
                .prefetch_position(level.list_pos, &self.lists);
        }
    }

    /// Loads what an order joining (`locate`, `side`, `price`) writes: the level's tail
    /// chunk, or for a new level a fresh chunk and a list position.
    #[inline(always)]
    fn prefetch_joining(&self, locate: u16, side: Side, price: i64) {
        match self.levels.get(locate, side, price) {
            Some(level) => self.queues.prefetch_tail(level.queue),
            None => {
                self.queues.prefetch_tail(NIL);
                if let Some(book) = self.books.get(locate as usize) {
                    book.side(side).prefetch_free(&self.lists);
                }
            }
        }
    }

    /// Applies one message, calling `out` once for each price level it changed.
    #[inline]
    pub fn apply(&mut self, message: &Message<'_>, out: &mut impl ChangeSink) {
        self.apply_op(&Op::of(message), out);
    }

    /// Applies one message's [`Op`], calling `out` once for each price level it changed. The
    /// op is read where it lies (see [`super::lookahead`]).
    #[inline]
    pub fn apply_op(&mut self, op: &Op, out: &mut impl ChangeSink) {
        self.stats.messages += 1;
        match *op {
            Op::Add(order) => self.add(order, out),
            // E and C reduce alike: the resting order keeps its own price. X takes shares off
            // the same way.
            Op::Execute {
                reference,
                shares,
                match_number,
                timestamp,
            }
            | Op::ExecuteAt {
                reference,
                shares,
                match_number,
                timestamp,
                ..
            } => {
                self.stats.executions += 1;
                let how = (OrderAction::Execute, match_number);
                self.reduce(reference, shares, timestamp, how, out);
            }
            Op::Cancel {
                reference,
                shares,
                timestamp,
            } => {
                self.stats.cancels += 1;
                self.reduce(reference, shares, timestamp, (OrderAction::Cancel, 0), out);
            }
            Op::Delete {
                reference,
                timestamp,
            } => {
                self.stats.deletes += 1;
                match self.unlink(reference, timestamp) {
                    Some((change, had)) => {
                        self.emit(change, out);
                        out.order(order_change(&change, OrderAction::Delete, reference, had));
                        self.uncross(change.locate);
                    }
                    None => self.stats.unknown_refs += 1,
                }
            }
            Op::Replace {
                original,
                new,
                shares,
                price,
                timestamp,
            } => {
                self.stats.replaces += 1;
                self.replace(original, new, shares, price, timestamp, out);
            }
            Op::Modify(order) => {
                self.stats.modifies += 1;
                self.modify(order, out);
            }
            Op::Clear { locate } => {
                self.stats.clears += 1;
                self.clear_book(locate);
            }
            Op::Directory {
                locate,
                symbol,
                price_exponent,
            } => match self.books.get_mut(locate as usize) {
                Some(book) => {
                    book.symbol = symbol;
                    book.price_exponent = price_exponent;
                    book.listed = true;
                }
                None => self.stats.symbols_full += 1,
            },
            Op::Status {
                locate,
                change: StatusChange::Trading { state, .. },
                ..
            } => match self.books.get_mut(locate as usize) {
                Some(book) => book.trading_state = state,
                None => self.stats.symbols_full += 1,
            },
            Op::Status { .. } | Op::Trade { .. } | Op::System { .. } | Op::Other => {
                self.stats.skipped += 1
            }
        }
    }

    /// Adds an order: emits its level, then its order change.
    #[inline(always)]
    fn add(&mut self, new: NewOrder, out: &mut impl ChangeSink) {
        if self.rest(new, out) {
            out.order(OrderChange {
                locate: new.locate,
                action: OrderAction::Add,
                side: new.side,
                shares: new.shares,
                reference: new.reference,
                other: 0,
                price: new.price,
                timestamp: new.timestamp,
            });
        }
    }

    /// Rests an order and emits its level (not its order change: the caller says what it
    /// was). Returns false if it was not added.
    #[inline]
    fn rest(&mut self, new: NewOrder, out: &mut impl ChangeSink) -> bool {
        let NewOrder {
            locate,
            reference,
            side,
            shares,
            price,
            timestamp,
        } = new;
        let Some(book) = self.books.get_mut(locate as usize) else {
            self.stats.symbols_full += 1;
            return false;
        };
        if !book.side(side).accepts(price) {
            // beyond what a side can order (no ITCH price is): nothing rests
            self.stats.skipped += 1;
            return false;
        }
        let order = Order {
            reference,
            price,
            shares,
            slot: NIL,
            locate,
            side,
            epoch: book.epoch,
        };
        let mut inserted = self.orders.insert(order);
        if inserted == Err(StoreError::Duplicate)
            && self
                .orders
                .get(reference)
                .is_some_and(|old| !current(&self.books, old))
        {
            // the reference belonged to an order cleared with its book: that one goes
            self.forget_stale(reference);
            inserted = self.orders.insert(order);
        }
        let Some(book) = self.books.get_mut(locate as usize) else {
            return false;
        };
        match inserted {
            Ok(()) => {}
            Err(StoreError::NoShares) => {
                // An order for nothing is dead on arrival: nothing rests.
                self.stats.skipped += 1;
                return false;
            }
            Err(StoreError::Duplicate) => {
                self.stats.duplicate_refs += 1;
                return false;
            }
            Err(StoreError::Full) => {
                self.stats.orders_full += 1;
                book.incomplete = true;
                return false;
            }
        }
        let room = book.side(side).levels() < self.max_levels_per_side as usize;
        let joined = match self.levels.join(locate, side, price, shares) {
            Ok(joined) if joined.created && !room => Err(joined),
            Ok(joined) if joined.created => {
                match book.side_mut(side).created(price, &mut self.lists) {
                    Ok(pos) => {
                        if let Some(level) = self.levels.at_mut(joined.at) {
                            level.list_pos = pos;
                        }
                        Ok(joined)
                    }
                    Err(_) => Err(joined),
                }
            }
            Ok(joined) => Ok(joined),
            Err(_) => {
                self.levels_full(locate, reference);
                return false;
            }
        };
        let joined = match joined {
            Ok(joined) => joined,
            Err(_) => {
                // no room for a new level on this side: the level just made goes again
                self.levels.leave(locate, side, price, shares, |q| q);
                self.levels_full(locate, reference);
                return false;
            }
        };
        let queued = match self.queues.join(joined.queue, reference) {
            Ok(queued) => queued,
            Err(_) => {
                // cannot happen (see `Queues::chunks_for`); undone and counted if it does
                if joined.created {
                    book.side_mut(side).emptied(
                        price,
                        self.levels.at_mut(joined.at).map_or(0, |l| l.list_pos),
                        &mut self.lists,
                    );
                }
                self.levels.leave(locate, side, price, shares, |q| q);
                self.stats.orders_full += 1;
                book.incomplete = true;
                self.orders.remove(reference);
                return false;
            }
        };
        if let Some(level) = self.levels.at_mut(joined.at) {
            level.queue = queued.tail;
        }
        if let Some(o) = self.orders.get_mut(reference) {
            o.slot = queued.slot;
        }
        book.orders += 1;
        let at_best = book.side(side).best() == Some(price);
        let was_crossed = book.crossed;
        self.stats.adds += 1;
        let change = L2Change::of(locate, side, price, joined.shares, joined.orders, timestamp);
        self.emit(change, out);
        // Only an order that is now the best of its side can cross the book.
        if at_best || was_crossed {
            self.update_crossed(locate);
        }
        true
    }

    /// An order just stored found no room for its level: it goes again, and its book is
    /// marked incomplete.
    #[cold]
    fn levels_full(&mut self, locate: u16, reference: u64) {
        self.stats.levels_full += 1;
        if let Some(book) = self.books.get_mut(locate as usize) {
            book.incomplete = true;
        }
        self.orders.remove(reference);
    }

    /// Takes `shares` off the order in `reference`, removing it when none are left; `how` is
    /// the order change to emit (Execute with its match number, or Cancel).
    #[inline]
    fn reduce(
        &mut self,
        reference: u64,
        shares: u32,
        timestamp: u64,
        how: (OrderAction, u64),
        out: &mut impl ChangeSink,
    ) {
        let books = &self.books;
        let Some(order) = self.orders.get_mut(reference) else {
            self.stats.unknown_refs += 1;
            return;
        };
        if !current(books, order) {
            self.forget_stale(reference);
            self.stats.unknown_refs += 1;
            return;
        }
        if shares == 0 {
            // nothing executed or cancelled: no level changed, so nothing is emitted
            return;
        }
        let (action, other) = how;
        if shares >= order.shares {
            if shares > order.shares {
                self.stats.overfills += 1;
            }
            if let Some((change, had)) = self.unlink(reference, timestamp) {
                self.emit(change, out);
                let mut taken = order_change(&change, action, reference, had);
                taken.other = other;
                out.order(taken);
                self.uncross(change.locate);
            }
            return;
        }
        order.shares -= shares;
        let (locate, side, price) = (order.locate, order.side, order.price);
        if let Some(left) = self.levels.take(locate, side, price, shares) {
            let change = L2Change::of(locate, side, price, left.shares, left.orders, timestamp);
            self.emit(change, out);
            let mut taken = order_change(&change, action, reference, shares);
            taken.other = other;
            out.order(taken);
        }
    }

    /// Removes the order of `reference` and returns its level's new state and the shares the
    /// order had, without emitting.
    #[inline]
    fn unlink(&mut self, reference: u64, timestamp: u64) -> Option<(L2Change, u32)> {
        let order = self.orders.remove(reference)?;
        if !current(&self.books, &order) {
            // cleared with its book: it was only waiting to be freed
            self.stale = self.stale.saturating_sub(1);
            return None;
        }
        let (locate, side, price) = (order.locate, order.side, order.price);
        let book = self.books.get_mut(locate as usize)?;
        book.orders = book.orders.saturating_sub(1);
        let queues = &mut self.queues;
        let left = self
            .levels
            .leave(locate, side, price, order.shares, |queue| {
                queues.leave(queue, order.slot)
            })?;
        if left.orders == 0 {
            book.side_mut(side)
                .emptied(price, left.list_pos, &mut self.lists);
        }
        let change = L2Change::of(locate, side, price, left.shares, left.orders, timestamp);
        Some((change, order.shares))
    }

    /// U: the old order leaves (priority lost), a new one joins the back of its new price,
    /// same side and book. When both are at one price, one change carries the final state.
    fn replace(
        &mut self,
        original: u64,
        new: u64,
        shares: u32,
        price: i64,
        timestamp: u64,
        out: &mut impl ChangeSink,
    ) {
        let Some((old, had)) = self.unlink(original, timestamp) else {
            self.stats.unknown_refs += 1;
            return;
        };
        let same_price = old.price == price;
        if !same_price {
            self.emit(old, out);
        }
        let joining = NewOrder {
            locate: old.locate,
            reference: new,
            side: old.side,
            shares,
            price,
            timestamp,
        };
        let added = self.rest(joining, out);
        if !added && same_price {
            self.emit(old, out);
        }
        if added {
            out.order(OrderChange {
                locate: old.locate,
                action: OrderAction::Replace,
                side: old.side,
                shares,
                reference: original,
                other: new,
                price,
                timestamp,
            });
        } else {
            // the new half was refused (counted): the old order is simply gone
            out.order(order_change(&old, OrderAction::Delete, original, had));
        }
        self.uncross(old.locate);
    }

    /// DBN M: a smaller (or equal) size at the same price keeps the order's place; any other
    /// change sends it to the back of its new price, like a replace by itself. An order the
    /// book does not hold joins as a new one.
    fn modify(&mut self, new: NewOrder, out: &mut impl ChangeSink) {
        let books = &self.books;
        let held = self
            .orders
            .get(new.reference)
            .filter(|o| current(books, o))
            .map(|o| (o.price, o.shares));
        match held {
            None => {
                self.stats.modify_unknown += 1;
                self.add(new, out);
            }
            Some((price, shares)) if price == new.price && new.shares <= shares => {
                let how = (OrderAction::Cancel, 0);
                self.reduce(new.reference, shares - new.shares, new.timestamp, how, out);
            }
            Some(_) => self.replace(
                new.reference,
                new.reference,
                new.shares,
                new.price,
                new.timestamp,
                out,
            ),
        }
    }

    /// Frees the order of `reference`, which was cleared with its book ([`current`] is false).
    #[cold]
    fn forget_stale(&mut self, reference: u64) {
        if self.orders.remove(reference).is_some() {
            self.stale = self.stale.saturating_sub(1);
        }
    }

    #[inline(always)]
    fn emit(&mut self, change: L2Change, out: &mut impl ChangeSink) {
        self.stats.changes += 1;
        out.change(change);
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
        let crossed = match (book.bids.best(), book.asks.best()) {
            (Some(bid), Some(ask)) => bid >= ask,
            _ => false,
        };
        if crossed && !book.crossed {
            self.stats.crossed += 1;
        }
        book.crossed = crossed;
    }

    /// Empties the book of `locate`: its orders and levels go. The symbol name and trading
    /// state stay. Returns how many orders were freed. Takes time in proportion to the book's
    /// levels: its orders are only marked gone (their book's epoch moves on) and are freed
    /// when a message names them or at the next [`Books::clear_all`]; until then they hold
    /// their place in `max_orders`. (Once in 2^32 clears of one book, when its epoch wraps,
    /// the whole order store is scanned instead.)
    pub fn clear_book(&mut self, locate: u16) -> usize {
        let Some(book) = self.books.get_mut(locate as usize) else {
            return 0;
        };
        let freed = book.orders as usize;
        book.orders = 0;
        self.stale += freed;
        book.epoch = book.epoch.wrapping_add(1);
        for side in [Side::Buy, Side::Sell] {
            let order = book.side_mut(side);
            for price in order.prices(&self.lists) {
                if let Some(level) = self.levels.remove(locate, side, price) {
                    self.queues.drop_queue(level.queue);
                }
            }
            order.clear(&mut self.lists);
        }
        book.crossed = false;
        book.incomplete = false;
        if book.epoch == 0 {
            // 2^32 clears of this book: its stale orders of every earlier epoch (all of its
            // orders still stored) go now, before one of them could match the epoch again
            let gone = self.orders.remove_where(|o| o.locate == locate);
            self.stale = self.stale.saturating_sub(gone);
        }
        freed
    }

    /// Empties every book (a new trading day): all orders and levels go. Symbol names,
    /// trading states and the counters stay.
    pub fn clear_all(&mut self) {
        self.orders.clear();
        self.stale = 0;
        for locate in 0..self.books.len() {
            // locates are below 65,536 (checked in `new`)
            self.clear_book(locate as u16);
        }
        // every queue was dropped with its level: start the next day's from the first chunk
        self.queues.clear();
        self.stale = 0;
    }

    /// Marks the book of `locate` incomplete: it is known to miss orders (it was not tracked
    /// for a while), until [`Books::clear_book`] or [`Books::clear_all`].
    pub fn mark_incomplete(&mut self, locate: u16) {
        if let Some(book) = self.books.get_mut(locate as usize) {
            book.incomplete = true;
        }
    }

    /// Where the resting order of `reference` stands in its level's queue, or `None` if no
    /// such order rests. Takes time in proportion to the orders ahead of it.
    pub fn position(&self, reference: u64) -> Option<Position> {
        let order = *self.orders.get(reference)?;
        if !current(&self.books, &order) {
            return None;
        }
        let mut position = Position {
            order,
            orders_ahead: 0,
            shares_ahead: 0,
        };
        for (reference, slot) in self.queues.ahead(order.slot) {
            if let Some(o) = resting(&self.orders, order.epoch, reference, slot) {
                position.orders_ahead += 1;
                position.shares_ahead += u64::from(o.shares);
            }
        }
        Some(position)
    }

    /// Price levels of `locate` on both sides (0 for a locate beyond capacity).
    pub fn level_count(&self, locate: u16) -> usize {
        self.books
            .get(locate as usize)
            .map_or(0, |b| b.bids.levels() + b.asks.levels())
    }

    /// Sorts the side lists of `locate`'s book, so that a view lists its levels in order.
    fn settle(&mut self, locate: u16) {
        let Some(book) = self.books.get_mut(locate as usize) else {
            return;
        };
        for side in [Side::Buy, Side::Sell] {
            let levels = &mut self.levels;
            book.side_mut(side).settle(&mut self.lists, |price, pos| {
                levels.move_in_list(locate, side, price, pos);
            });
        }
    }

    /// The book of `locate`, if the locate is within capacity. Sorts its level lists first
    /// (O(levels log levels)): for publishing a whole book, not per message.
    pub fn book(&mut self, locate: u16) -> Option<BookView<'_>> {
        self.settle(locate);
        self.view(locate)
    }

    /// Sorts the level lists of every listed book, for [`Books::view`] and [`Books::views`].
    pub fn settle_all(&mut self) {
        for locate in 0..self.books.len() {
            if self.books[locate].listed {
                self.settle(locate as u16);
            }
        }
    }

    /// The book of `locate` as it is: its levels come best first only if it was settled
    /// ([`Books::book`], [`Books::settle_all`]) since the last message.
    pub fn view(&self, locate: u16) -> Option<BookView<'_>> {
        Some(BookView {
            locate,
            book: self.books.get(locate as usize)?,
            levels: &self.levels,
            lists: &self.lists,
            orders: &self.orders,
            queues: &self.queues,
        })
    }

    /// Every book a stock directory message listed, by locate, as by [`Books::view`].
    pub fn views(&self) -> impl Iterator<Item = BookView<'_>> {
        (0..self.books.len())
            .filter(|&i| self.books[i].listed)
            .filter_map(|i| self.view(i as u16))
    }

    /// Every book a stock directory message listed, by locate, settled.
    pub fn listed(&mut self) -> impl Iterator<Item = BookView<'_>> {
        self.settle_all();
        self.views()
    }

    /// The locate of `symbol` (as listed by a stock directory message), searched linearly.
    pub fn locate_of(&self, symbol: &str) -> Option<u16> {
        self.views()
            .find(|b| b.symbol() == symbol)
            .map(|b| b.locate())
    }

    /// The counters.
    pub fn stats(&self) -> &BookStats {
        &self.stats
    }

    /// Orders resting across all books.
    pub fn live_orders(&self) -> usize {
        self.orders.len().saturating_sub(self.stale)
    }

    /// Price levels across all books and sides.
    pub fn live_levels(&self) -> usize {
        self.levels.len()
    }

    /// Queue chunks in use: never more than live orders plus live levels (see
    /// [`super::queues`]).
    pub fn queue_chunks(&self) -> usize {
        self.queues.used()
    }
}

impl std::fmt::Debug for Books<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Books")
            .field("symbols", &self.books.len())
            .field("orders", &self.orders)
            .field("levels", &self.levels)
            .field("lists", &self.lists)
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
                max_orders: 128,
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

        fn levels(&mut self, locate: u16, side: Side) -> Vec<(i64, u64, u32)> {
            let book = self.books.book(locate).unwrap();
            book.side(side)
                .map(|l| (l.price, l.shares, l.orders))
                .collect()
        }

        fn queue(&mut self, locate: u16, side: Side, price: i64) -> Vec<u64> {
            let book = self.books.book(locate).unwrap();
            book.queue(side, price).map(|o| o.reference).collect()
        }
    }

    fn change(locate: u16, side: Side, price: i64, shares: u64, orders: u32) -> L2Change {
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
        assert_eq!(f.books.live_levels(), 3);
        assert_eq!(f.books.clear_book(AAPL), 3);
        assert_eq!(f.books.live_orders(), 1);
        assert_eq!(f.books.level_count(AAPL), 0);
        assert_eq!(f.books.live_levels(), 1);
        let aapl = f.books.book(AAPL).unwrap();
        assert!(aapl.best_bid().is_none() && aapl.best_ask().is_none());
        assert!(!aapl.incomplete());
        assert_eq!(aapl.symbol(), "AAPL", "the name stays");
        // the cleared orders left the index: their references are unknown now
        f.send(&encode::order_delete(h(AAPL), 2));
        assert_eq!(f.books.stats().unknown_refs, 1);
        assert_eq!(f.books.live_orders(), 1);
        // a reference can be used again, and the other book is intact
        f.add(AAPL, 1, Side::Buy, 7, 999);
        assert_eq!(f.books.live_orders(), 2);
        f.send(&encode::order_executed(h(AAPL), 3, 1, 1));
        assert_eq!(
            f.books.stats().unknown_refs,
            2,
            "a cleared order is unknown"
        );
        assert_eq!(f.levels(AAPL, Side::Buy), [(999, 7, 1)]);
        assert_eq!(f.levels(MSFT, Side::Sell), [(2000, 5, 1)]);
        f.books.clear_all();
        assert_eq!(f.books.live_orders(), 0);
        assert_eq!(f.books.live_levels(), 0);
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
        // naming an order with 0 shares changes no level: nothing is emitted
        assert!(f.send(&encode::order_executed(h(AAPL), 1, 0, 3)).is_empty());
        assert!(f.send(&encode::order_cancel(h(AAPL), 1, 0)).is_empty());
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
        // 64 levels and 64 orders in all
        for i in 0..30 {
            f.add(AAPL, i, Side::Buy, 1, 1000 + i as u32);
        }
        for i in 0..40 {
            f.add(MSFT, 100 + i, Side::Sell, 1, 5000 + i as u32);
        }
        assert_eq!(f.books.stats().levels_full, 6, "34 more levels fit");
        assert!(f.books.book(MSFT).unwrap().incomplete());
        assert!(!f.books.book(AAPL).unwrap().incomplete());
        assert_eq!(f.levels(MSFT, Side::Sell).len(), 34);
        // 128 orders: once all are live, an order at an existing level is refused too
        for i in 200..265 {
            f.add(AAPL, i, Side::Buy, 1, 1000);
        }
        assert_eq!(f.books.stats().orders_full, 1);
        assert!(f.books.book(AAPL).unwrap().incomplete());
        // a locate beyond max_symbols
        f.add(9, 1000, Side::Buy, 1, 1);
        assert_eq!(f.books.stats().symbols_full, 1);
        assert_eq!(f.books.live_orders(), 128);
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
