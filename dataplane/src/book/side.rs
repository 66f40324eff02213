//! [`SideOrder`]: the order of one side of one book's levels, exact near the top.
//!
//! The levels themselves live unordered in the [`super::level_table::LevelTable`]. A side
//! keeps two things beside them:
//!
//! - `top`: the best `t ≤ TOP` levels, sorted best first. Every other level of the side is
//!   worse than the worst of them. So the best price is `top[0]`, and a new level or a level
//!   that empties near the touch costs a shift of at most `TOP` keys in one cache line.
//! - `list`: the key of every level of the side, in no order, and maybe keys of levels gone
//!   since (a level that empties is not looked for there). A new level appends its key: one
//!   store. When `top` runs empty while levels remain below it, it is refilled from the list;
//!   when the list's block is full it is compacted (sorted, deduplicated, keys of levels gone
//!   dropped) and, if still more than half full, moved to a block twice as large.
//!
//! Keys are prices turned so that larger is better on both sides: the price itself for bids,
//! its bitwise complement for asks (`!p` reverses the order of `i64` and is its own inverse).
//!
//! A deep side (thousands of levels, the order of a real day) thus costs O(1) per level
//! created or emptied anywhere in it, and O(levels) only when its top is exhausted.

use super::price_lists::{Block, PriceLists};
use crate::feed::itch::Side;

/// Levels kept sorted at the top of a side: one cache line of keys.
pub const TOP: usize = 8;

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
    list_len: u32,
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

    /// A level at `price` was created. `exists` answers whether a level of this side exists
    /// at a price (for compacting the list); `price` itself must answer true.
    ///
    /// # Errors
    /// [`ListsFull`] when the list had to grow and `lists` has no block for it; the side is
    /// unchanged then (the caller must undo the level).
    #[inline]
    pub fn created(
        &mut self,
        price: i64,
        lists: &mut PriceLists<'_>,
        exists: impl Fn(i64) -> bool,
    ) -> Result<(), ListsFull> {
        let key = self.key(price);
        self.append(key, lists, &exists)?;
        let len = self.len as usize;
        if len > 0 && key <= self.top[len - 1] {
            // not better than the worst of the top: joins it only when nothing lies below
            if self.beyond == 0 && len < TOP {
                self.top[len] = key;
                self.len += 1;
            } else {
                self.beyond += 1;
            }
            return Ok(());
        }
        let at = self.top[..len].partition_point(|&k| k > key);
        if len == TOP {
            // the worst of the top drops below it; it stays in the list
            self.beyond += 1;
            self.top.copy_within(at..TOP - 1, at + 1);
        } else {
            self.top.copy_within(at..len, at + 1);
            self.len += 1;
        }
        self.top[at] = key;
        Ok(())
    }

    /// The level at `price` emptied and is gone; `exists` must already answer false for it.
    #[inline]
    pub fn emptied(&mut self, price: i64, lists: &PriceLists<'_>, exists: impl Fn(i64) -> bool) {
        let key = self.key(price);
        let len = self.len as usize;
        match self.top[..len].iter().position(|&k| k == key) {
            Some(at) => {
                self.top.copy_within(at + 1..len, at);
                self.len -= 1;
                if self.len == 0 && self.beyond > 0 {
                    self.refill(lists, &exists);
                }
            }
            None => self.beyond = self.beyond.saturating_sub(1),
        }
    }

    /// Refills the empty top with the best levels of the list.
    #[cold]
    fn refill(&mut self, lists: &PriceLists<'_>, exists: &impl Fn(i64) -> bool) {
        let Some(block) = self.list else {
            self.beyond = 0;
            return;
        };
        let mut len = 0usize;
        for &key in &lists.block(block)[..self.list_len as usize] {
            if len == TOP && key <= self.top[TOP - 1] {
                continue;
            }
            let at = self.top[..len].partition_point(|&k| k > key);
            if (at < len && self.top[at] == key) || !exists(self.price(key)) {
                continue;
            }
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

    /// Appends `key` to the list, compacting or growing it first when it is full.
    fn append(
        &mut self,
        key: i64,
        lists: &mut PriceLists<'_>,
        exists: &impl Fn(i64) -> bool,
    ) -> Result<(), ListsFull> {
        let block = match self.list {
            Some(block) if self.list_len < block.capacity() => block,
            Some(_) => self.make_room(lists, exists)?,
            None => {
                let block = lists.alloc(0).ok_or(ListsFull)?;
                self.list = Some(block);
                block
            }
        };
        lists.block_mut(block)[self.list_len as usize] = key;
        self.list_len += 1;
        Ok(())
    }

    /// The list is full: compacts it, and moves it to a block twice as large if it is still
    /// more than half full.
    #[cold]
    fn make_room(
        &mut self,
        lists: &mut PriceLists<'_>,
        exists: &impl Fn(i64) -> bool,
    ) -> Result<Block, ListsFull> {
        let Some(block) = self.list else {
            return Err(ListsFull);
        };
        self.compact(lists, exists);
        if self.list_len * 2 <= block.capacity() {
            return Ok(block);
        }
        let bigger = lists.alloc(block.class + 1).ok_or(ListsFull)?;
        lists.copy(block, bigger, self.list_len);
        lists.release(block);
        self.list = Some(bigger);
        Ok(bigger)
    }

    /// Sorts the list best first and keeps exactly the keys of the levels that exist.
    pub fn compact(&mut self, lists: &mut PriceLists<'_>, exists: &impl Fn(i64) -> bool) {
        let Some(block) = self.list else {
            return;
        };
        let flip = self.flip;
        let keys = &mut lists.block_mut(block)[..self.list_len as usize];
        keys.sort_unstable_by(|a, b| b.cmp(a));
        let mut kept = 0usize;
        for i in 0..keys.len() {
            let key = keys[i];
            if (kept > 0 && keys[kept - 1] == key) || !exists(key ^ flip) {
                continue;
            }
            keys[kept] = key;
            kept += 1;
        }
        self.list_len = kept as u32;
    }

    /// The prices of the side's levels, best first, if the list is compacted
    /// ([`SideOrder::compact`] since the last change).
    pub fn sorted<'s>(&self, lists: &'s PriceLists<'_>) -> impl Iterator<Item = i64> + use<'s> {
        let keys = match self.list {
            Some(block) => &lists.block(block)[..self.list_len as usize],
            None => &[],
        };
        let flip = self.flip;
        keys.iter().map(move |&k| k ^ flip)
    }

    /// Every price in the list (levels gone since may be among them, and repeats).
    pub fn listed<'s>(&self, lists: &'s PriceLists<'_>) -> impl Iterator<Item = i64> + use<'s> {
        self.sorted(lists)
    }

    /// Forgets every level and gives the list back.
    pub fn clear(&mut self, lists: &mut PriceLists<'_>) {
        if let Some(block) = self.list.take() {
            lists.release(block);
        }
        self.list_len = 0;
        self.len = 0;
        self.beyond = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The best price and the level count match a sorted set through any sequence of
        /// levels created and emptied, on both sides; a compacted list is the whole side.
        #[test]
        fn best_matches_a_sorted_set(
            buy in any::<bool>(),
            ops in prop::collection::vec((any::<bool>(), -40i64..40), 0..400),
        ) {
            let side = if buy { Side::Buy } else { Side::Sell };
            let mut lists = PriceLists::new(None, 1 << 12).unwrap();
            let mut order = SideOrder::new(side);
            let set = RefCell::new(BTreeSet::new());
            for (create, price) in ops {
                let present = set.borrow().contains(&price);
                if create && !present {
                    set.borrow_mut().insert(price);
                    order.created(price, &mut lists, |p| set.borrow().contains(&p)).unwrap();
                } else if !create && present {
                    set.borrow_mut().remove(&price);
                    order.emptied(price, &lists, |p| set.borrow().contains(&p));
                }
                let best = match side {
                    Side::Buy => set.borrow().last().copied(),
                    Side::Sell => set.borrow().first().copied(),
                };
                prop_assert_eq!(order.best(), best);
                prop_assert_eq!(order.levels(), set.borrow().len());
            }
            order.compact(&mut lists, &|p| set.borrow().contains(&p));
            let mut expected: Vec<i64> = set.borrow().iter().copied().collect();
            if buy {
                expected.reverse();
            }
            prop_assert_eq!(order.sorted(&lists).collect::<Vec<_>>(), expected);
        }
    }
}
