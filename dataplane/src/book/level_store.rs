//! [`LevelStore`]: one shard-wide reservoir of price levels, lent to ladders in blocks.
//!
//! A real day has thousands of books, most a few levels deep and a few thousands deep (NASDAQ's
//! deepest book peaks near 2,400 levels per side). Giving every side a fixed array sized for the
//! deepest book would cost gigabytes; a heap `Vec` per side would allocate on the hot path. So
//! all levels live in one [`Region`] reserved at startup, and each ladder holds one contiguous
//! block of it whose size is a power of two times [`MIN_BLOCK`]. A ladder that fills its block
//! moves to a block twice as large; a ladder that empties returns its block. Freed blocks go to
//! a free list per size class (linked through the first level of each free block) and are
//! reused before fresh levels are bumped off the top. Nothing here allocates after
//! construction.

use super::level::{Level, NIL};
use crate::arena::{Arena, ArenaError, Region};

/// Levels in the smallest block. Eight levels cover most books; see benches/book.rs.
pub const MIN_BLOCK: u32 = 8;

/// Size classes: blocks of `MIN_BLOCK << class` levels, up to 8 << 15 = 262,144 per side.
pub const CLASSES: usize = 16;

/// A block of levels: where it starts in the store and its size class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Index of the block's first level in the store.
    pub start: u32,
    /// Size class: the block holds `MIN_BLOCK << class` levels.
    pub class: u8,
}

impl Block {
    /// The number of levels in the block.
    #[inline(always)]
    pub const fn capacity(self) -> u32 {
        MIN_BLOCK << self.class
    }
}

/// The shard's levels, lent out in power-of-two blocks.
pub struct LevelStore<'a> {
    levels: Region<'a, Level>,
    /// The sort key of each level (see [`super::ladder`]), parallel to `levels`: a lookup scans
    /// 16 keys per cache line instead of one 64-byte level per line (see benches/book.rs).
    keys: Region<'a, u32>,
    /// Levels `[0, bump)` have been handed out as blocks at least once.
    bump: u32,
    /// Head of the free list of each class (`NIL` if empty).
    free: [u32; CLASSES],
    /// Levels currently lent out.
    lent: u64,
}

impl<'a> LevelStore<'a> {
    /// A store of `capacity` levels, carved from `arena` when given.
    ///
    /// # Errors
    /// [`ArenaError::Exhausted`] if the arena has no room; capacities above `u32::MAX` levels
    /// are clamped.
    pub fn new(arena: Option<&'a Arena>, capacity: usize) -> Result<Self, ArenaError> {
        let capacity = capacity.min(u32::MAX as usize);
        Ok(Self {
            levels: Region::new(arena, capacity, |_| Level::default())?,
            keys: Region::new(arena, capacity, |_| 0)?,
            bump: 0,
            free: [NIL; CLASSES],
            lent: 0,
        })
    }

    /// Lends a block of `MIN_BLOCK << class` levels, or `None` when the store cannot supply one.
    pub fn alloc(&mut self, class: u8) -> Option<Block> {
        let c = class as usize;
        if c >= CLASSES {
            return None;
        }
        let size = MIN_BLOCK << class;
        let start = if self.free[c] != NIL {
            let start = self.free[c];
            self.free[c] = self.levels[start as usize].head;
            start
        } else {
            let end = self.bump.checked_add(size)?;
            if end as usize > self.levels.len() {
                return None;
            }
            let start = self.bump;
            self.bump = end;
            start
        };
        self.lent += u64::from(size);
        Some(Block { start, class })
    }

    /// Takes back a block lent by [`LevelStore::alloc`].
    pub fn release(&mut self, block: Block) {
        let c = block.class as usize;
        self.levels[block.start as usize].head = self.free[c];
        self.free[c] = block.start;
        self.lent -= u64::from(block.capacity());
    }

    /// The levels of `block`.
    #[inline(always)]
    pub fn block(&self, block: Block) -> &[Level] {
        let start = block.start as usize;
        &self.levels[start..start + block.capacity() as usize]
    }

    /// The levels of `block`, mutably.
    #[inline(always)]
    pub fn block_mut(&mut self, block: Block) -> &mut [Level] {
        let start = block.start as usize;
        &mut self.levels[start..start + block.capacity() as usize]
    }

    /// The keys of `block`.
    #[inline(always)]
    pub fn keys(&self, block: Block) -> &[u32] {
        let start = block.start as usize;
        &self.keys[start..start + block.capacity() as usize]
    }

    /// The keys and the levels of `block`, mutably.
    #[inline(always)]
    pub fn keys_and_levels_mut(&mut self, block: Block) -> (&mut [u32], &mut [Level]) {
        let range = block.start as usize..(block.start + block.capacity()) as usize;
        (&mut self.keys[range.clone()], &mut self.levels[range])
    }

    /// Copies the first `len` levels (and keys) of `from` to the start of `to`.
    pub fn copy(&mut self, from: Block, to: Block, len: u32) {
        let src = from.start as usize..(from.start + len) as usize;
        self.levels.copy_within(src.clone(), to.start as usize);
        self.keys.copy_within(src, to.start as usize);
    }

    /// Levels currently lent to ladders.
    pub fn lent(&self) -> u64 {
        self.lent
    }

    /// Total levels in the store.
    pub fn capacity(&self) -> usize {
        self.levels.len()
    }
}

impl std::fmt::Debug for LevelStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LevelStore")
            .field("capacity", &self.capacity())
            .field("lent", &self.lent)
            .field("bump", &self.bump)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_per_class() {
        let mut store = LevelStore::new(None, 64).unwrap();
        let a = store.alloc(0).unwrap();
        let b = store.alloc(1).unwrap();
        assert_eq!((a.start, b.start), (0, 8));
        assert_eq!(store.lent(), 24);
        store.release(a);
        assert_eq!(store.alloc(0), Some(a), "freed block comes back first");
        store.release(b);
        let c = store.alloc(1).unwrap();
        assert_eq!(c, b);
        assert_eq!(store.alloc(2).unwrap().start, 24);
        assert!(
            store.alloc(2).is_none(),
            "64 levels: no room for another 32"
        );
        assert!(store.alloc(CLASSES as u8).is_none());
    }
}
