//! [`Ladder`]: one side of a book, a sorted array of 64-byte levels with the best at the end.
//!
//! Activity concentrates at the touch, so the array is ordered worst → best and the best level
//! is the last element: best price is O(1), a new level near the touch shifts only the few
//! levels in front of it, and a lookup compares the last line of keys (16) at once, without a
//! branch per key, before falling back to binary search. Bids sort by ascending price, asks by descending price; both compare a
//! `key` (`price` for bids, `!price` for asks) so the code has no side branches.
//!
//! The levels live in a block of the shard's [`LevelStore`]; a full block is swapped for one
//! twice as large, an emptied ladder returns its block.

use super::level::Level;
use super::level_store::{Block, LevelStore};
use crate::feed::itch::Side;

/// How many keys behind the best a lookup compares at once before binary search: one cache
/// line of keys.
const LINEAR_SCAN: usize = 16;

/// A side with no room left for another level: the store is exhausted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelsFull;

/// One side of one book.
#[derive(Clone, Copy, Debug)]
pub struct Ladder {
    block: Option<Block>,
    len: u32,
    /// XOR mask turning a price into a sort key: 0 for bids, `u32::MAX` for asks.
    flip: u32,
}

impl Ladder {
    /// An empty ladder for `side`; it takes no levels until its first one.
    pub const fn new(side: Side) -> Self {
        Self {
            block: None,
            len: 0,
            flip: match side {
                Side::Buy => 0,
                Side::Sell => u32::MAX,
            },
        }
    }

    /// The side this ladder holds.
    pub const fn side(&self) -> Side {
        if self.flip == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    /// Number of price levels.
    #[inline(always)]
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the side has no level.
    #[inline(always)]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The levels, worst first (the best is last).
    #[inline(always)]
    pub fn levels<'s>(&self, store: &'s LevelStore<'_>) -> &'s [Level] {
        match self.block {
            Some(block) => &store.block(block)[..self.len as usize],
            None => &[],
        }
    }

    /// The levels, mutably, worst first.
    #[inline(always)]
    pub fn levels_mut<'s>(&self, store: &'s mut LevelStore<'_>) -> &'s mut [Level] {
        match self.block {
            Some(block) => &mut store.block_mut(block)[..self.len as usize],
            None => &mut [],
        }
    }

    /// The best level, if any.
    #[inline(always)]
    pub fn best<'s>(&self, store: &'s LevelStore<'_>) -> Option<&'s Level> {
        self.levels(store).last()
    }

    /// The levels best first.
    pub fn iter_best_first<'s>(
        &self,
        store: &'s LevelStore<'_>,
    ) -> impl Iterator<Item = &'s Level> + use<'s> {
        self.levels(store).iter().rev()
    }

    #[inline(always)]
    fn key(&self, price: u32) -> u32 {
        price ^ self.flip
    }

    /// The sort keys of the levels, worst first.
    #[inline(always)]
    fn keys<'s>(&self, store: &'s LevelStore<'_>) -> &'s [u32] {
        match self.block {
            Some(block) => &store.keys(block)[..self.len as usize],
            None => &[],
        }
    }

    /// Where `price` is: `Ok(index)` if it has a level, `Err(index)` where its level would go.
    #[inline]
    pub fn find(&self, store: &LevelStore<'_>, price: u32) -> Result<usize, usize> {
        let keys = self.keys(store);
        let key = self.key(price);
        // Most traffic is within a few levels of the touch: count the keys above `key` among
        // the last line of keys without a branch per key (a vector compare), which says where
        // `key` is or would go when it is inside that line.
        let len = keys.len();
        let floor = len.saturating_sub(LINEAR_SCAN);
        let above = match <&[u32; LINEAR_SCAN]>::try_from(&keys[floor..]) {
            Ok(line) => line.iter().map(|&k| usize::from(k > key)).sum::<usize>(),
            Err(_) => keys[floor..].iter().map(|&k| usize::from(k > key)).sum(),
        };
        let at = len - above;
        if at > floor || floor == 0 {
            return match at.checked_sub(1) {
                Some(i) if keys[i] == key => Ok(i),
                _ => Err(at),
            };
        }
        keys[..floor].binary_search(&key)
    }

    /// The index of `price`'s level, creating an empty one if there is none and the side has
    /// fewer than `max_len` levels.
    ///
    /// # Errors
    /// [`LevelsFull`] when the side already has `max_len` levels, or needs a larger block and
    /// the store has none; the ladder is unchanged.
    #[inline]
    pub fn level_for(
        &mut self,
        store: &mut LevelStore<'_>,
        price: u32,
        max_len: u32,
    ) -> Result<usize, LevelsFull> {
        match self.find(store, price) {
            Ok(i) => Ok(i),
            Err(_) if self.len >= max_len => Err(LevelsFull),
            Err(i) => {
                self.reserve_one(store)?;
                let len = self.len as usize;
                self.len += 1;
                let key = self.key(price);
                if let Some(block) = self.block {
                    let (keys, levels) = store.keys_and_levels_mut(block);
                    keys.copy_within(i..len, i + 1);
                    keys[i] = key;
                    levels.copy_within(i..len, i + 1);
                    levels[i] = Level::empty(price);
                }
                Ok(i)
            }
        }
    }

    /// Removes the level at `index` (which the caller has emptied).
    #[inline]
    pub fn remove(&mut self, store: &mut LevelStore<'_>, index: usize) {
        let len = self.len as usize;
        if index >= len {
            return;
        }
        if let Some(block) = self.block {
            let (keys, levels) = store.keys_and_levels_mut(block);
            keys.copy_within(index + 1..len, index);
            levels.copy_within(index + 1..len, index);
        }
        self.len -= 1;
        if self.len == 0
            && let Some(block) = self.block.take()
        {
            store.release(block);
        }
    }

    /// Removes every level and returns the block to the store.
    pub fn clear(&mut self, store: &mut LevelStore<'_>) {
        if let Some(block) = self.block.take() {
            store.release(block);
        }
        self.len = 0;
    }

    /// Makes room for one more level, moving to a larger block if needed.
    fn reserve_one(&mut self, store: &mut LevelStore<'_>) -> Result<(), LevelsFull> {
        match self.block {
            Some(block) if self.len < block.capacity() => Ok(()),
            Some(block) => {
                let bigger = store.alloc(block.class + 1).ok_or(LevelsFull)?;
                store.copy(block, bigger, self.len);
                store.release(block);
                self.block = Some(bigger);
                Ok(())
            }
            None => {
                self.block = Some(store.alloc(0).ok_or(LevelsFull)?);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices(ladder: &Ladder, store: &LevelStore<'_>) -> Vec<u32> {
        ladder.iter_best_first(store).map(|l| l.price).collect()
    }

    #[test]
    fn bids_best_is_highest_asks_best_is_lowest() {
        let mut store = LevelStore::new(None, 1024).unwrap();
        let mut bids = Ladder::new(Side::Buy);
        let mut asks = Ladder::new(Side::Sell);
        for p in [100, 300, 200, 250, 50] {
            bids.level_for(&mut store, p, u32::MAX).unwrap();
            asks.level_for(&mut store, p, u32::MAX).unwrap();
        }
        assert_eq!(prices(&bids, &store), [300, 250, 200, 100, 50]);
        assert_eq!(prices(&asks, &store), [50, 100, 200, 250, 300]);
        assert_eq!(bids.best(&store).map(|l| l.price), Some(300));
        assert_eq!(asks.best(&store).map(|l| l.price), Some(50));
        assert_eq!(bids.side(), Side::Buy);
    }

    #[test]
    fn grows_through_blocks_and_finds_every_level() {
        let mut store = LevelStore::new(None, 4096).unwrap();
        let mut asks = Ladder::new(Side::Sell);
        // insertion order scattered so both the scan and the binary search are exercised
        let ps: Vec<u32> = (0..1000).map(|i| (i * 7919) % 1000 + 1).collect();
        for &p in &ps {
            let i = asks.level_for(&mut store, p, u32::MAX).unwrap();
            asks.levels_mut(&mut store)[i].shares += 1;
        }
        assert_eq!(asks.len(), 1000);
        for p in 1..=1000 {
            let i = asks.find(&store, p).unwrap();
            assert_eq!(asks.levels(&store)[i].price, p);
            assert_eq!(asks.levels(&store)[i].shares, 1);
        }
        assert_eq!(asks.find(&store, 5000), Err(0));
        assert_eq!(asks.find(&store, 0), Err(1000));
        assert_eq!(store.lent(), 1024, "one block of 1024 after growing");
    }

    #[test]
    fn removing_the_last_level_returns_the_block() {
        let mut store = LevelStore::new(None, 16).unwrap();
        let mut bids = Ladder::new(Side::Buy);
        bids.level_for(&mut store, 10, u32::MAX).unwrap();
        bids.level_for(&mut store, 20, u32::MAX).unwrap();
        bids.remove(&mut store, 1);
        assert_eq!(prices(&bids, &store), [10]);
        bids.remove(&mut store, 0);
        assert!(bids.is_empty());
        assert_eq!(store.lent(), 0);
        bids.remove(&mut store, 0); // out of range: no-op
    }

    #[test]
    fn full_store_is_an_error_and_leaves_the_ladder_intact() {
        let mut store = LevelStore::new(None, 8).unwrap();
        let mut bids = Ladder::new(Side::Buy);
        for p in 0..8 {
            bids.level_for(&mut store, p, u32::MAX).unwrap();
        }
        assert_eq!(bids.level_for(&mut store, 100, u32::MAX), Err(LevelsFull));
        assert_eq!(
            bids.level_for(&mut store, 100, 8),
            Err(LevelsFull),
            "per-side limit"
        );
        let mut asks = Ladder::new(Side::Sell);
        assert_eq!(asks.level_for(&mut store, 1, 0), Err(LevelsFull));
        assert_eq!(bids.len(), 8);
        assert_eq!(
            bids.level_for(&mut store, 3, u32::MAX),
            Ok(3),
            "existing levels still found"
        );
    }
    proptest::proptest! {
        /// `find` (the vector scan of the last line and the binary search below it) agrees
        /// with a sorted set on every price, at every depth, through inserts and removals.
        #[test]
        fn find_matches_a_sorted_set(
            sell in proptest::bool::ANY,
            ops in proptest::collection::vec((proptest::bool::weighted(0.7), 0u32..60), 1..300),
        ) {
            use std::collections::BTreeSet;
            let side = if sell { Side::Sell } else { Side::Buy };
            let mut store = LevelStore::new(None, 1024).unwrap();
            let mut ladder = Ladder::new(side);
            let mut model = BTreeSet::new();
            for (insert, price) in ops {
                if insert {
                    ladder.level_for(&mut store, price, u32::MAX).unwrap();
                    model.insert(price);
                } else if let Ok(i) = ladder.find(&store, price) {
                    ladder.remove(&mut store, i);
                    proptest::prop_assert!(model.remove(&price));
                } else {
                    proptest::prop_assert!(!model.contains(&price));
                }
                let best_first: Vec<u32> = match side {
                    Side::Buy => model.iter().rev().copied().collect(),
                    Side::Sell => model.iter().copied().collect(),
                };
                proptest::prop_assert_eq!(prices(&ladder, &store), best_first);
                for p in 0..61 {
                    let found = ladder.find(&store, p);
                    proptest::prop_assert_eq!(found.is_ok(), model.contains(&p));
                    if let Ok(i) = found {
                        proptest::prop_assert_eq!(ladder.levels(&store)[i].price, p);
                    }
                }
            }
        }
    }
}
