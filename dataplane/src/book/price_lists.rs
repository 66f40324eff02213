//! [`PriceLists`]: one shard-wide reservoir of price keys, lent to book sides in blocks.
//!
//! Each side of each book keeps a list of the prices of its levels (see [`super::side`]).
//! Their lengths range from one to thousands, so all lists live in one [`Region`] reserved at
//! startup, each in one contiguous block of `MIN_BLOCK << class` keys. A side whose block is
//! full moves to one twice as large; freed blocks go to a free list per size class (linked
//! through their first key) and are reused before fresh keys are bumped off the top. Nothing
//! here allocates after construction.

use crate::arena::{Arena, ArenaError, Region};

/// Keys in the smallest block.
pub const MIN_BLOCK: u32 = 8;

/// Size classes: blocks of `MIN_BLOCK << class` keys, up to 8 << 19 = 4 M keys per side.
pub const CLASSES: usize = 20;

const NIL: i64 = -1;

/// A block of keys: where it starts in the reservoir and its size class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Index of the block's first key.
    pub start: u32,
    /// Size class: the block holds `MIN_BLOCK << class` keys.
    pub class: u8,
}

impl Block {
    /// The number of keys the block holds.
    #[inline(always)]
    pub const fn capacity(self) -> u32 {
        MIN_BLOCK << self.class
    }
}

/// The shard's price lists, lent out in power-of-two blocks.
pub struct PriceLists<'a> {
    keys: Region<'a, i64>,
    bump: u32,
    free: [i64; CLASSES],
    lent: u64,
}

impl<'a> PriceLists<'a> {
    /// A reservoir of `capacity` keys (clamped to `u32::MAX`), carved from `arena` when given.
    ///
    /// # Errors
    /// [`ArenaError::Exhausted`] if the arena has no room.
    pub fn new(arena: Option<&'a Arena>, capacity: usize) -> Result<Self, ArenaError> {
        let capacity = capacity.min(u32::MAX as usize);
        Ok(Self {
            keys: Region::new(arena, capacity, |_| 0)?,
            bump: 0,
            free: [NIL; CLASSES],
            lent: 0,
        })
    }

    /// Lends a block of class `class`, or `None` when there is no room for one.
    pub fn alloc(&mut self, class: u8) -> Option<Block> {
        let c = class as usize;
        if c >= CLASSES {
            return None;
        }
        let size = MIN_BLOCK << class;
        let start = if self.free[c] != NIL {
            let start = self.free[c] as u32;
            self.free[c] = self.keys[start as usize];
            start
        } else {
            let end = self.bump.checked_add(size)?;
            if end as usize > self.keys.len() {
                return None;
            }
            let start = self.bump;
            self.bump = end;
            start
        };
        self.lent += u64::from(size);
        Some(Block { start, class })
    }

    /// Takes back a block lent by [`PriceLists::alloc`].
    pub fn release(&mut self, block: Block) {
        let c = block.class as usize;
        self.keys[block.start as usize] = self.free[c];
        self.free[c] = i64::from(block.start);
        self.lent -= u64::from(block.capacity());
    }

    /// The keys of `block`.
    #[inline(always)]
    pub fn block(&self, block: Block) -> &[i64] {
        let start = block.start as usize;
        &self.keys[start..start + block.capacity() as usize]
    }

    /// The keys of `block`, mutably.
    #[inline(always)]
    pub fn block_mut(&mut self, block: Block) -> &mut [i64] {
        let start = block.start as usize;
        &mut self.keys[start..start + block.capacity() as usize]
    }

    /// Copies the first `len` keys of `from` to the start of `to`.
    pub fn copy(&mut self, from: Block, to: Block, len: u32) {
        let src = from.start as usize..(from.start + len) as usize;
        self.keys.copy_within(src, to.start as usize);
    }

    /// Keys lent out now.
    pub fn lent(&self) -> u64 {
        self.lent
    }
}

impl std::fmt::Debug for PriceLists<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriceLists")
            .field("capacity", &self.keys.len())
            .field("lent", &self.lent)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_per_class() {
        let mut lists = PriceLists::new(None, 64).unwrap();
        let a = lists.alloc(0).unwrap();
        let b = lists.alloc(1).unwrap();
        assert_eq!((a.start, b.start), (0, 8));
        lists.release(a);
        assert_eq!(lists.alloc(0), Some(a), "a freed block comes back first");
        lists.release(b);
        assert_eq!(lists.alloc(1), Some(b));
        assert_eq!(lists.alloc(2).map(|b| b.start), Some(24));
        assert!(lists.alloc(2).is_none(), "64 keys: no room for 32 more");
        assert_eq!(lists.lent(), 8 + 16 + 32);
    }
}
