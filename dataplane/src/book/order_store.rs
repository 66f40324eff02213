//! [`OrderStore`]: every resting order of a shard, stored inline where its reference says.
//!
//! ITCH order references rise through the day, so the newest `window` references map straight
//! to records: reference `r` lives at `r & (window - 1)`. There is no index to probe and no
//! pool slot to follow: an E, X, D or U costs one load of one 32-byte record, which the caller
//! can prefetch from the message alone ([`OrderStore::prefetch`]).
//!
//! When a new reference lies beyond the window, the window slides up to it and the orders
//! still alive in the part left behind move to an open-addressing table of records (linear
//! probing, backward-shift deletion, at most half full). A reference below the window (a feed
//! that goes back) goes straight to that table.
//!
//! A slide looks only where orders may be: a bit per group of 64 records, set when an order is
//! stored there and cleared when a slide has passed the whole group, says which groups to
//! scan. So a slide costs O(window / 4096) to read those bits plus O(64) per group stored to
//! since it was last passed — a hostile stream of references that each jump past the window
//! costs a few microseconds per message, not a scan of the window.
//!
//! All memory is taken in [`OrderStore::new`]; nothing allocates afterwards and no input
//! panics. A record is free when its `shares` is 0: a resting order always has shares.

use crate::arena::{Arena, ArenaError, Region};
use crate::feed::itch::Side;

/// One resting order: 32 bytes, aligned so that two share a cache line and none straddles one.
/// The price is signed 64-bit already (feeds beyond ITCH need it); the record has room left
/// for nothing else, on purpose.
#[repr(C, align(32))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// Order reference number.
    pub reference: u64,
    /// Limit price in the feed's integer units.
    pub price: i64,
    /// Shares still open; 0 marks a free record.
    pub shares: u32,
    /// Its place in its level's queue of orders, in time priority (see [`super::queues`]).
    pub slot: u32,
    /// The book's stock locate.
    pub locate: u16,
    /// Buy or sell.
    pub side: Side,
    /// The book's epoch when the order was added: an order of an earlier epoch was cleared
    /// with its book and is only waiting to be freed (see [`super::Books::clear_book`]).
    pub epoch: u32,
}

const _: () = assert!(size_of::<Order>() == 32);

impl Order {
    const FREE: Self = Self {
        reference: 0,
        price: 0,
        shares: 0,
        slot: 0,
        locate: 0,
        side: Side::Buy,
        epoch: 0,
    };

    #[inline(always)]
    const fn is_free(&self) -> bool {
        self.shares == 0
    }
}

/// Window records per group of the slide's bitmap.
const GROUP: usize = 64;

/// Why an order could not be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// A live order has this reference already.
    Duplicate,
    /// `max_orders` orders are live.
    Full,
    /// An order with no shares cannot rest.
    NoShares,
}

/// Resting orders by reference: a direct-mapped window of the newest references over a hash
/// table of older ones.
pub struct OrderStore<'a> {
    /// The window covers references `[base, base + window.len())`.
    base: u64,
    window: Region<'a, Order>,
    mask: u64,
    in_window: usize,
    /// Bit `g` set: group `g` of 64 window records may hold a live order.
    groups: Region<'a, u64>,
    /// Orders whose references are below the window; power-of-two length ≥ 2 × `max_orders`.
    old: Region<'a, Order>,
    in_old: usize,
    max_orders: usize,
}

impl<'a> OrderStore<'a> {
    /// Room for `max_orders` live orders, carved from `arena` when given. The window holds
    /// `max_orders` rounded up to a power of two, times two (at least 64), and the table of
    /// older orders as many again: 128 bytes per order of `max_orders`.
    ///
    /// # Errors
    /// [`ArenaError::Exhausted`] if the arena has no room.
    pub fn new(arena: Option<&'a Arena>, max_orders: usize) -> Result<Self, ArenaError> {
        let len = Self::table_len(max_orders);
        Ok(Self {
            base: 0,
            window: Region::new(arena, len, |_| Order::FREE)?,
            mask: len as u64 - 1,
            in_window: 0,
            groups: Region::new(arena, (len / GROUP / 64).max(1), |_| 0)?,
            old: Region::new(arena, len, |_| Order::FREE)?,
            in_old: 0,
            max_orders,
        })
    }

    /// The length of the window and of the table of older orders for `max_orders`.
    pub fn table_len(max_orders: usize) -> usize {
        max_orders
            .max(32)
            .checked_next_power_of_two()
            .map_or(1 << 62, |n| n.saturating_mul(2))
    }

    /// Bytes taken by a store for `max_orders`.
    pub fn bytes(max_orders: usize) -> usize {
        let len = Self::table_len(max_orders);
        len.saturating_mul(2 * size_of::<Order>())
            .saturating_add((len / GROUP / 64).max(1) * size_of::<u64>())
            .saturating_add(3 * crate::arena::CACHE_LINE)
    }

    /// `base + mask` never exceeds `u64::MAX` (a slide sets `base = reference - mask`), so a
    /// reference below `base` wraps to above `mask`: one compare.
    #[inline(always)]
    fn in_window(&self, reference: u64) -> bool {
        reference.wrapping_sub(self.base) <= self.mask
    }

    /// Asks the CPU to start loading the record of `reference`, for a message some way ahead.
    #[inline(always)]
    pub fn prefetch(&self, reference: u64) {
        let at = if self.in_window(reference) {
            &self.window[(reference & self.mask) as usize]
        } else {
            &self.old[self.home(reference)]
        };
        crate::prefetch::prefetch(at);
    }

    /// Stores `order` under its reference.
    ///
    /// # Errors
    /// See [`StoreError`]; the store is unchanged then.
    #[inline]
    pub fn insert(&mut self, order: Order) -> Result<(), StoreError> {
        if order.is_free() {
            return Err(StoreError::NoShares);
        }
        let reference = order.reference;
        if reference < self.base {
            if self.old_find(reference).is_ok() {
                return Err(StoreError::Duplicate);
            }
            if self.len() >= self.max_orders {
                return Err(StoreError::Full);
            }
            self.old_insert(order);
            return Ok(());
        }
        if !self.in_window(reference) {
            if self.len() >= self.max_orders {
                return Err(StoreError::Full);
            }
            self.slide(reference - self.mask);
        }
        let at = (reference & self.mask) as usize;
        if !self.window[at].is_free() {
            return Err(StoreError::Duplicate);
        }
        if self.len() >= self.max_orders {
            return Err(StoreError::Full);
        }
        self.window[at] = order;
        self.in_window += 1;
        let group = at / GROUP;
        if let Some(bits) = self.groups.get_mut(group / 64) {
            *bits |= 1 << (group % 64);
        }
        Ok(())
    }

    /// Moves the window up to start at `new_base`, handing the live orders it leaves behind
    /// to the table of older orders. Looks only at groups whose bit is set.
    fn slide(&mut self, new_base: u64) {
        let group = GROUP as u64;
        let end = new_base.min(self.base.saturating_add(self.mask + 1));
        let mut r = self.base;
        while r < end && self.in_window > 0 {
            let at = (r & self.mask) as usize;
            let g = at / GROUP;
            let bits = self.groups.get(g / 64).copied().unwrap_or(0);
            if bits == 0 {
                // 64 groups with no order: skip to the next word's first record
                r = (r | (group * 64 - 1)).saturating_add(1);
                continue;
            }
            let group_end = (r | (group - 1)).saturating_add(1);
            if bits & (1 << (g % 64)) == 0 {
                r = group_end;
                continue;
            }
            let stop = group_end.min(end);
            let whole = r.is_multiple_of(group) && stop == group_end;
            while r < stop {
                let at = (r & self.mask) as usize;
                if !self.window[at].is_free() {
                    let order = std::mem::replace(&mut self.window[at], Order::FREE);
                    self.in_window -= 1;
                    // Cannot fail: at most max_orders are live in both parts together and
                    // the table has twice that many records.
                    self.old_insert(order);
                }
                r += 1;
            }
            if whole && let Some(bits) = self.groups.get_mut(g / 64) {
                // every record of the group was passed: nothing of it is left in the window
                *bits &= !(1 << (g % 64));
            }
        }
        self.base = new_base;
    }

    /// The live order of `reference`.
    #[inline(always)]
    pub fn get(&self, reference: u64) -> Option<&Order> {
        if self.in_window(reference) {
            let order = &self.window[(reference & self.mask) as usize];
            (!order.is_free()).then_some(order)
        } else {
            self.old_find(reference).ok().map(|at| &self.old[at])
        }
    }

    /// The live order of `reference`, mutably. Its `shares` must stay above 0: take the order
    /// out with [`OrderStore::remove`] instead.
    #[inline(always)]
    pub fn get_mut(&mut self, reference: u64) -> Option<&mut Order> {
        if self.in_window(reference) {
            let order = &mut self.window[(reference & self.mask) as usize];
            (!order.is_free()).then_some(order)
        } else {
            self.old_find(reference).ok().map(|at| &mut self.old[at])
        }
    }

    /// Takes the order of `reference` out.
    #[inline]
    pub fn remove(&mut self, reference: u64) -> Option<Order> {
        if self.in_window(reference) {
            let at = (reference & self.mask) as usize;
            if self.window[at].is_free() {
                return None;
            }
            self.in_window -= 1;
            Some(std::mem::replace(&mut self.window[at], Order::FREE))
        } else {
            let at = self.old_find(reference).ok()?;
            let order = self.old[at];
            self.old_delete(at);
            Some(order)
        }
    }

    /// Every live order, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Order> {
        self.window
            .iter()
            .chain(self.old.iter())
            .filter(|o| !o.is_free())
    }

    /// Frees every order `doomed` picks; returns how many. Looks at every record.
    pub fn remove_where(&mut self, doomed: impl Fn(&Order) -> bool) -> usize {
        if self.is_empty() {
            return 0;
        }
        let mut freed = 0;
        for order in self.window.iter_mut() {
            if !order.is_free() && doomed(order) {
                *order = Order::FREE;
                self.in_window -= 1;
                freed += 1;
            }
        }
        // A deletion shifts later records of its run back into the freed position, which is
        // looked at again; a record only ever moves back to a position not yet passed or to
        // the one being looked at, so one pass finds them all.
        let mut at = 0;
        while at < self.old.len() {
            if !self.old[at].is_free() && doomed(&self.old[at]) {
                self.old_delete(at);
                freed += 1;
            } else {
                at += 1;
            }
        }
        freed
    }

    /// Frees every order.
    pub fn clear(&mut self) {
        if self.in_window > 0 {
            self.window.fill(Order::FREE);
        }
        if self.in_old > 0 {
            self.old.fill(Order::FREE);
        }
        self.groups.fill(0);
        self.in_window = 0;
        self.in_old = 0;
        // both parts are empty: the next day's references start the window afresh
        self.base = 0;
    }

    /// Live orders.
    pub fn len(&self) -> usize {
        self.in_window + self.in_old
    }

    /// True when no order is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most live orders.
    pub fn capacity(&self) -> usize {
        self.max_orders
    }

    /// Live orders whose references fell behind the window.
    pub fn behind_window(&self) -> usize {
        self.in_old
    }

    #[inline(always)]
    fn home(&self, reference: u64) -> usize {
        // Fibonacci hashing: references are dense, the multiply spreads them.
        let h = reference.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & (self.old.len() - 1)
    }

    /// `Ok(position)` of `reference` in the table, or `Err(first free position)`.
    fn old_find(&self, reference: u64) -> Result<usize, usize> {
        let mask = self.old.len() - 1;
        let mut at = self.home(reference);
        // The table is at most half full, so a free record is always found.
        loop {
            let o = &self.old[at];
            if o.is_free() {
                return Err(at);
            }
            if o.reference == reference {
                return Ok(at);
            }
            at = (at + 1) & mask;
        }
    }

    fn old_insert(&mut self, order: Order) {
        if let Err(at) = self.old_find(order.reference) {
            self.old[at] = order;
            self.in_old += 1;
        }
    }

    /// Frees position `at` and shifts back the records of its probe run (no tombstones).
    fn old_delete(&mut self, mut at: usize) {
        let mask = self.old.len() - 1;
        let mut next = (at + 1) & mask;
        while !self.old[next].is_free() {
            let home = self.home(self.old[next].reference);
            // move `next` back to `at` unless its home lies cyclically in (at, next]
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(at) & mask) {
                self.old[at] = self.old[next];
                at = next;
            }
            next = (next + 1) & mask;
        }
        self.old[at] = Order::FREE;
        self.in_old -= 1;
    }
}

impl std::fmt::Debug for OrderStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderStore")
            .field("base", &self.base)
            .field("in_window", &self.in_window)
            .field("behind_window", &self.in_old)
            .field("max_orders", &self.max_orders)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn order(reference: u64, shares: u32) -> Order {
        Order {
            reference,
            price: reference as i64,
            shares,
            slot: 0,
            locate: 1,
            side: Side::Buy,
            epoch: 0,
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64, u32),
        Remove(u64),
        Reduce(u64),
    }

    fn op(max_ref: u64) -> impl Strategy<Value = Op> {
        // references mostly rising, with jumps and strays, the shapes that slide the window
        let reference = prop_oneof![
            6 => 0..max_ref,
            1 => any::<u64>(),
            1 => (u64::MAX - 64)..=u64::MAX,
        ];
        prop_oneof![
            (reference.clone(), 0u32..4).prop_map(|(r, s)| Op::Insert(r, s)),
            reference.clone().prop_map(Op::Remove),
            reference.prop_map(Op::Reduce),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// A window of several bitmap words (16 k records): the slide skips whole words.
        #[test]
        fn matches_a_hashmap_with_a_wide_window(
            ops in prop::collection::vec(op(200_000), 0..3_000),
        ) {
            check(5_000, ops)?;
        }
    }

    fn check(max: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut store = OrderStore::new(None, max).unwrap();
        let mut model: HashMap<u64, Order> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(r, s) => {
                    let expected = if s == 0 {
                        Err(StoreError::NoShares)
                    } else if model.contains_key(&r) {
                        Err(StoreError::Duplicate)
                    } else if model.len() >= max {
                        Err(StoreError::Full)
                    } else {
                        model.insert(r, order(r, s));
                        Ok(())
                    };
                    prop_assert_eq!(store.insert(order(r, s)), expected);
                }
                Op::Remove(r) => prop_assert_eq!(store.remove(r), model.remove(&r)),
                Op::Reduce(r) => {
                    if let (Some(o), Some(m)) = (store.get_mut(r), model.get_mut(&r)) {
                        o.slot += 1;
                        m.slot += 1;
                    }
                }
            }
            prop_assert_eq!(store.len(), model.len());
        }
        for (r, o) in &model {
            prop_assert_eq!(store.get(*r), Some(o));
        }
        prop_assert_eq!(store.iter().count(), model.len());
        Ok(())
    }

    proptest! {
        #[test]
        fn matches_a_hashmap(max in 1usize..80, ops in prop::collection::vec(op(400), 0..600)) {
            check(max, ops)?;
        }
    }

    #[test]
    fn old_orders_survive_the_window_passing_them() {
        let mut store = OrderStore::new(None, 4).unwrap();
        let window = OrderStore::table_len(4) as u64;
        store.insert(order(1, 5)).unwrap();
        store.insert(order(1 + 10 * window, 6)).unwrap();
        assert_eq!(store.behind_window(), 1);
        assert_eq!(store.get(1).map(|o| o.shares), Some(5));
        store.insert(order(2, 7)).unwrap();
        assert_eq!(store.insert(order(2, 7)), Err(StoreError::Duplicate));
        assert_eq!(store.remove(1).map(|o| o.shares), Some(5));
        assert_eq!(store.len(), 2);
        store.clear();
        assert!(store.is_empty() && store.get(2).is_none());
    }
}
