//! [`SideOrder`]: the order of one side of one book's levels, exact near the top.
//!
//! The levels themselves live unordered in the [`super::level_table::LevelTable`]. A side
//! keeps two things beside them:
//!
//! - `top`: the best `t ≤ TOP` levels, sorted best first. Every other level of the side is
//!   worse than the worst of them. So the best price is `top[0]`, and a level created or
//!   emptied near the touch shifts at most `TOP` keys within one cache line.
//! - `list`: the key of every level of the side, in no order, each at a position its level
//!   remembers (`Level::list_pos`). A new level takes a free position (one store); an emptied
//!   level frees its position (one store). Free positions are chained through the list itself.
//!   No level is looked up and no key moves on the message path, except that a full list is
//!   copied once into a block twice as large, and that an emptied side gives its block back.
//!
//! When `top` runs empty while levels remain below it, it is refilled from the list: one
//! sequential pass over the positions used since the side was last empty or settled, no
//! lookups. [`SideOrder::settle`] sorts the list best first for reading a whole book, and tells
//! each level its new position.
//!
//! Keys are prices turned so that larger is better on both sides: the price itself for bids,
//! its bitwise complement for asks (`!p` reverses the order of `i64` and is its own inverse).
//! Keys below [`FREE_END`] mark free positions, so a side refuses the 2^32 prices whose keys
//! would fall there ([`SideOrder::accepts`]): bids within 2^32 of `i64::MIN`, asks within 2^32
//! of `i64::MAX`. No ITCH price is among them.
//!
//! A deep side (thousands of levels, as on a real day) thus costs O(1) per level created or
//! emptied anywhere in it (amortised over the list's doublings; a search of the ≤ 8 top keys
//! for an emptied one), and O(positions used) only when its top is exhausted.

use super::price_lists::{Block, PriceLists};
use crate::feed::itch::Side;

/// Levels kept sorted at the top of a side: one cache line of keys.
pub const TOP: usize = 8;

/// Keys below this mark free list positions: `i64::MIN + next free position`.
pub const FREE_END: i64 = i64::MIN + (1 << 32);

/// No next free position.
use crate::nil::NIL;

/// No room left in the shard's price lists for this side's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListsFull;

/// The order of one side of one book.
#[derive(Clone, Copy, Debug)]
pub struct SideOrder {
    /// Keys of the best `len` levels, best first.
    top: [i64; TOP],
    len: u8,
    /// XOR mask from price to key: 0 for bids, all ones for asks.
    flip: i64,
    /// Levels of this side not in `top`.
    beyond: u32,
    list: Option<Block>,
    /// Positions of the list in use or freed: `[0, list_len)`.
    list_len: u32,
    /// First free position below `list_len`, or `NIL`.
    free: u32,
}

impl SideOrder {
    /// An empty side.
    pub const fn new(side: Side) -> Self {
        Self {
            top: [0; TOP],
            len: 0,
            flip: match side {
                Side::Buy => 0,
                Side::Sell => -1,
            },
            beyond: 0,
            list: None,
            list_len: 0,
            free: NIL,
        }
    }

    #[inline(always)]
    const fn key(&self, price: i64) -> i64 {
        price ^ self.flip
    }

    #[inline(always)]
    const fn price(&self, key: i64) -> i64 {
        key ^ self.flip
    }

    /// False for the prices this side cannot hold (see the module docs).
    #[inline(always)]
    pub const fn accepts(&self, price: i64) -> bool {
        self.key(price) >= FREE_END
    }

    /// The best price, if the side has a level.
    #[inline(always)]
    pub fn best(&self) -> Option<i64> {
        (self.len > 0).then(|| self.price(self.top[0]))
    }

    /// Levels on this side.
    #[inline(always)]
    pub fn levels(&self) -> usize {
        self.len as usize + self.beyond as usize
    }

    /// A level at `price` (which [`SideOrder::accepts`]) was created; returns the list
    /// position it must remember.
    ///
    /// # Errors
    /// [`ListsFull`] when the list had to grow and `lists` has no block for it; the side is
    /// unchanged then (the caller must undo the level).
    #[inline]
    pub fn created(&mut self, price: i64, lists: &mut PriceLists<'_>) -> Result<u32, ListsFull> {
        let key = self.key(price);
        let pos = self.take_position(lists)?;
        if let Some(block) = self.list {
            lists.block_mut(block)[pos as usize] = key;
        }
        let len = self.len as usize;
        if len > 0 && key <= self.top[len - 1] {
            // not better than the worst of the top: joins it only when nothing lies below
            if self.beyond == 0 && len < TOP {
                self.top[len] = key;
                self.len += 1;
            } else {
                self.beyond += 1;
            }
            return Ok(pos);
        }
        let at = self.top[..len].partition_point(|&k| k > key);
        if len == TOP {
            // the worst of the top drops below it; the list still has it
            self.beyond += 1;
            self.top.copy_within(at..TOP - 1, at + 1);
        } else {
            self.top.copy_within(at..len, at + 1);
            self.len += 1;
        }
        self.top[at] = key;
        Ok(pos)
    }

    /// The level at `price`, at list position `pos`, emptied and is gone.
    #[inline]
    pub fn emptied(&mut self, price: i64, pos: u32, lists: &mut PriceLists<'_>) {
        let key = self.key(price);
        if let Some(block) = self.list
            && let Some(slot) = lists.block_mut(block).get_mut(pos as usize)
            && *slot == key
        {
            *slot = i64::MIN + i64::from(self.free);
            self.free = pos;
        }
        let len = self.len as usize;
        match self.top[..len].iter().position(|&k| k == key) {
            Some(at) => {
                self.top.copy_within(at + 1..len, at);
                self.len -= 1;
                if self.len == 0 && self.beyond > 0 {
                    self.refill(lists);
                }
            }
            None => self.beyond = self.beyond.saturating_sub(1),
        }
        if self.levels() == 0 {
            // an empty side gives its block back, however large it grew
            self.clear(lists);
        }
    }

    /// Starts loading the list entry at `pos` (a level about to empty).
    #[inline(always)]
    pub fn prefetch_position(&self, pos: u32, lists: &PriceLists<'_>) {
        if let Some(block) = self.list
            && let Some(key) = lists.block(block).get(pos as usize)
        {
            crate::prefetch::prefetch(key);
        }
    }

    /// Starts loading the list entry a new level would take.
    #[inline(always)]
    pub fn prefetch_free(&self, lists: &PriceLists<'_>) {
        let pos = if self.free != NIL {
            self.free
        } else {
            self.list_len
        };
        self.prefetch_position(pos, lists);
    }

    /// A free list position: a freed one, else the next, growing the list when it is full.
    #[inline]
    fn take_position(&mut self, lists: &mut PriceLists<'_>) -> Result<u32, ListsFull> {
        let Some(block) = self.list else {
            self.list = Some(lists.alloc(0).ok_or(ListsFull)?);
            self.list_len = 1;
            return Ok(0);
        };
        if self.free != NIL {
            let pos = self.free;
            let next = lists.block(block)[pos as usize].wrapping_sub(i64::MIN);
            self.free = u32::try_from(next).unwrap_or(NIL);
            return Ok(pos);
        }
        if self.list_len == block.capacity() {
            let bigger = lists.alloc(block.class + 1).ok_or(ListsFull)?;
            lists.copy(block, bigger, self.list_len);
            lists.release(block);
            self.list = Some(bigger);
        }
        self.list_len += 1;
        Ok(self.list_len - 1)
    }

    /// Refills the empty top with the best levels of the list.
    #[cold]
    fn refill(&mut self, lists: &PriceLists<'_>) {
        let mut len = 0usize;
        for &key in self.keys(lists) {
            if key < FREE_END || (len == TOP && key <= self.top[TOP - 1]) {
                continue;
            }
            let at = self.top[..len].partition_point(|&k| k > key);
            if len == TOP {
                self.top.copy_within(at..TOP - 1, at + 1);
            } else {
                self.top.copy_within(at..len, at + 1);
                len += 1;
            }
            self.top[at] = key;
        }
        self.len = len as u8;
        self.beyond = self.beyond.saturating_sub(len as u32);
    }

    fn keys<'s>(&self, lists: &'s PriceLists<'_>) -> &'s [i64] {
        match self.list {
            Some(block) => &lists.block(block)[..self.list_len as usize],
            None => &[],
        }
    }

    /// Sorts the list best first with no free positions, and calls `moved(price, position)`
    /// for every level, whose position may have changed.
    pub fn settle(&mut self, lists: &mut PriceLists<'_>, mut moved: impl FnMut(i64, u32)) {
        let Some(block) = self.list else {
            return;
        };
        let keys = &mut lists.block_mut(block)[..self.list_len as usize];
        keys.sort_unstable_by(|a, b| b.cmp(a));
        // free positions sort last (their keys are the smallest)
        let live = keys.partition_point(|&k| k >= FREE_END);
        for (pos, &key) in keys[..live].iter().enumerate() {
            moved(key ^ self.flip, pos as u32);
        }
        self.list_len = live as u32;
        self.free = NIL;
    }

    /// The prices of the side's levels; best first if nothing changed since
    /// [`SideOrder::settle`].
    pub fn prices<'s>(&self, lists: &'s PriceLists<'_>) -> impl Iterator<Item = i64> + use<'s> {
        let flip = self.flip;
        self.keys(lists)
            .iter()
            .filter(|&&k| k >= FREE_END)
            .map(move |&k| k ^ flip)
    }

    /// Forgets every level and gives the list back.
    pub fn clear(&mut self, lists: &mut PriceLists<'_>) {
        if let Some(block) = self.list.take() {
            lists.release(block);
        }
        self.list_len = 0;
        self.free = NIL;
        self.len = 0;
        self.beyond = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The best price and the level count match a sorted map through any sequence of
        /// levels created and emptied, on both sides; a settled list is the whole side, in
        /// order, and the positions it reports are where the keys are.
        #[test]
        fn best_matches_a_sorted_map(
            buy in any::<bool>(),
            ops in prop::collection::vec((any::<bool>(), -40i64..40), 0..400),
        ) {
            let side = if buy { Side::Buy } else { Side::Sell };
            let mut lists = PriceLists::new(None, 1 << 12).unwrap();
            let mut order = SideOrder::new(side);
            // price → list position, as the level table would remember it
            let mut set: BTreeMap<i64, u32> = BTreeMap::new();
            for (create, price) in ops {
                match (create, set.get(&price).copied()) {
                    (true, None) => {
                        let pos = order.created(price, &mut lists).unwrap();
                        prop_assert!(!set.values().any(|&p| p == pos), "position reused while taken");
                        set.insert(price, pos);
                    }
                    (false, Some(pos)) => {
                        set.remove(&price);
                        order.emptied(price, pos, &mut lists);
                    }
                    _ => {}
                }
                let best = match side {
                    Side::Buy => set.keys().last().copied(),
                    Side::Sell => set.keys().next().copied(),
                };
                prop_assert_eq!(order.best(), best);
                prop_assert_eq!(order.levels(), set.len());
                let mut listed: Vec<i64> = order.prices(&lists).collect();
                listed.sort_unstable();
                prop_assert_eq!(listed, set.keys().copied().collect::<Vec<_>>());
            }
            let mut positions = BTreeMap::new();
            order.settle(&mut lists, |price, pos| { positions.insert(price, pos); });
            let mut expected: Vec<i64> = set.keys().copied().collect();
            if buy {
                expected.reverse();
            }
            let settled: Vec<i64> = order.prices(&lists).collect();
            prop_assert_eq!(&settled, &expected);
            for (i, price) in settled.iter().enumerate() {
                prop_assert_eq!(positions.get(price).copied(), Some(i as u32));
            }
        }
    }

    #[test]
    fn extreme_prices_are_refused_where_their_keys_would_mark_free_positions() {
        let bids = SideOrder::new(Side::Buy);
        let asks = SideOrder::new(Side::Sell);
        assert!(bids.accepts(0) && asks.accepts(0) && bids.accepts(i64::MAX));
        assert!(bids.accepts(u32::MAX.into()) && asks.accepts(u32::MAX.into()));
        assert!(!bids.accepts(i64::MIN) && !asks.accepts(i64::MAX));
        assert!(asks.accepts(i64::MIN));
    }
}
