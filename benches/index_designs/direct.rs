//! A chunked direct array: reference `r` → chunk `r >> CHUNK_BITS`, offset `r & (CHUNK_REFS-1)`.
//!
//! ```text
//! directory: chunk number (r >> 12) → pool chunk id      u32 per 4096 refs, covers max_ref
//! pool:      chunk id × 4096 + (r & 4095) → order slot    u32 per ref, NO_SLOT when empty
//! live:      chunk id → orders in that chunk              back to the free stack at 0
//! ```
//!
//! A lookup is two dependent loads and no hashing or probing; the directory entries of the
//! references in play sit in cache (4 bytes per 4096 references), and consecutive references
//! share cache lines, so a burst of activity on recent orders stays in a few lines.
//!
//! The cost is memory that follows the *spread* of live references: one live order keeps its
//! whole 16 KiB chunk. The chunk pool is sized from `max_live` by [`REFS_PER_LIVE_ORDER`]: it
//! holds `max_live` orders as long as they span at most `max_live × REFS_PER_LIVE_ORDER`
//! references' worth of chunks; a day whose long-lived orders are spread thinner runs out of
//! chunks and gets [`IndexError::Full`] while the order count is still below `max_live`.

use super::{IndexError, NO_SLOT, RefIndex};

/// log2 of the references per chunk.
pub const CHUNK_BITS: u32 = 12;

/// References per chunk (4096: 16 KiB of `u32` slots).
pub const CHUNK_REFS: usize = 1 << CHUNK_BITS;

const OFFSET_MASK: u64 = CHUNK_REFS as u64 - 1;

/// The reference range [`DirectIndex::with_capacity`] covers: 2^34 ≈ 1.7e10, 85× the ~2e8
/// references of a real NASDAQ day. Its directory is 4 bytes per chunk: 16 MiB.
pub const DEFAULT_MAX_REF: u64 = 1 << 34;

/// Chunk budget headroom: [`DirectIndex::with_capacity`] provides chunks for
/// `max_live × REFS_PER_LIVE_ORDER` references, i.e. it holds `max_live` orders as long as the
/// chunks they keep alive are on average at least 1/128 full. 128 because a real NASDAQ day
/// issues ~2e8 references for a peak of 1.65 M live orders (121 per live order): with
/// `max_live` ≥ the peak, the pool covers the whole day's reference range even if no chunk is
/// ever recycled. 2 M orders → 62 500 chunks, 977 MiB. (The bench's day model with 1 M live
/// needs 58 references per live order; `benches/order_index.rs` prints it.) A shard that sees
/// only some symbols sees the same reference range with fewer orders, so its `max_live` no
/// longer bounds its chunk need: size it with [`DirectIndex::with_limits`] from the range.
pub const REFS_PER_LIVE_ORDER: usize = 128;

/// Marks a directory entry with no chunk.
const NO_CHUNK: u32 = u32::MAX;

/// Order reference → pool slot by a chunked direct array with recycled chunks.
///
/// Memory, all taken and written at construction: `4 × max_ref / 4096` bytes of directory
/// (16 MiB for [`DEFAULT_MAX_REF`]) plus `16 KiB + 8` bytes per chunk in the pool.
pub struct DirectIndex {
    /// Chunk number → chunk id in the pool, or [`NO_CHUNK`].
    directory: Box<[u32]>,
    /// `chunks × CHUNK_REFS` slots, [`NO_SLOT`] where no order is indexed.
    slots: Box<[u32]>,
    /// Chunk id → indexed orders in it; a chunk in use has at least one.
    live: Box<[u32]>,
    /// A stack of free chunk ids: `free[..free_len]`.
    free: Box<[u32]>,
    free_len: usize,
    len: usize,
    max_live: usize,
}

impl DirectIndex {
    /// An index for `max_live` orders with references below `max_ref` (rounded up to whole
    /// chunks) and `chunks` chunks of [`CHUNK_REFS`] references.
    ///
    /// # Panics
    /// If `chunks` is above `u32::MAX - 1`, if `max_ref / CHUNK_REFS` does not fit in `usize`,
    /// or if the memory cannot be allocated.
    pub fn with_limits(max_live: usize, max_ref: u64, chunks: usize) -> Self {
        assert!(chunks < NO_CHUNK as usize, "at most u32::MAX - 1 chunks");
        let directory_len = usize::try_from(max_ref.div_ceil(CHUNK_REFS as u64))
            .expect("max_ref / CHUNK_REFS fits in usize");
        let slots_len = chunks
            .checked_mul(CHUNK_REFS)
            .expect("chunk pool size fits in usize");
        Self {
            directory: vec![NO_CHUNK; directory_len].into_boxed_slice(),
            slots: vec![NO_SLOT; slots_len].into_boxed_slice(),
            live: vec![0; chunks].into_boxed_slice(),
            // popped from the end: low ids first
            free: (0..chunks as u32).rev().collect(),
            free_len: chunks,
            len: 0,
            max_live,
        }
    }

    /// The chunk budget [`DirectIndex::with_capacity`] gives `max_live` orders:
    /// `ceil(max_live × REFS_PER_LIVE_ORDER / CHUNK_REFS)`, at least 1.
    pub fn chunks_for(max_live: usize) -> usize {
        max_live
            .saturating_mul(REFS_PER_LIVE_ORDER)
            .div_ceil(CHUNK_REFS)
            .max(1)
    }

    /// References below this are accepted (`max_ref` rounded up to whole chunks).
    pub fn max_ref(&self) -> u64 {
        (self.directory.len() as u64) << CHUNK_BITS
    }

    /// Chunks in the pool.
    pub fn chunk_capacity(&self) -> usize {
        self.live.len()
    }

    /// Chunks holding at least one order now.
    pub fn chunks_in_use(&self) -> usize {
        self.live.len() - self.free_len
    }

    /// Bytes of memory held: directory, chunk pool, live counts and free stack.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.directory)
            + std::mem::size_of_val(&*self.slots)
            + std::mem::size_of_val(&*self.live)
            + std::mem::size_of_val(&*self.free)
    }

    /// The directory index of `order_ref`, if the directory covers it.
    #[inline]
    fn chunk_number(&self, order_ref: u64) -> Option<usize> {
        let c = usize::try_from(order_ref >> CHUNK_BITS).ok()?;
        (c < self.directory.len()).then_some(c)
    }

    /// Where `order_ref` lives in `slots`, given its chunk id.
    #[inline]
    fn position(id: u32, order_ref: u64) -> usize {
        ((id as usize) << CHUNK_BITS) | (order_ref & OFFSET_MASK) as usize
    }

    /// An empty index for at most `max_live` orders, with references below
    /// [`DEFAULT_MAX_REF`] and [`DirectIndex::chunks_for`]`(max_live)` chunks; everything is
    /// allocated and written here.
    ///
    /// # Panics
    /// If the memory cannot be allocated.
    pub fn with_capacity(max_live: usize) -> Self {
        Self::with_limits(max_live, DEFAULT_MAX_REF, Self::chunks_for(max_live))
    }

    /// Indexes `order_ref` → `slot`; see [`RefIndex::insert`] for the errors.
    #[inline]
    pub fn insert(&mut self, order_ref: u64, slot: u32) -> Result<(), IndexError> {
        if slot == NO_SLOT {
            return Err(IndexError::ReservedSlot);
        }
        let c = self.chunk_number(order_ref).ok_or(IndexError::OutOfRange)?;
        let mut id = self.directory[c];
        if id != NO_CHUNK {
            if self.slots[Self::position(id, order_ref)] != NO_SLOT {
                return Err(IndexError::Duplicate);
            }
            if self.len >= self.max_live {
                return Err(IndexError::Full);
            }
        } else {
            if self.len >= self.max_live || self.free_len == 0 {
                return Err(IndexError::Full);
            }
            self.free_len -= 1;
            id = self.free[self.free_len];
            self.directory[c] = id;
        }
        self.slots[Self::position(id, order_ref)] = slot;
        self.live[id as usize] += 1;
        self.len += 1;
        Ok(())
    }

    /// The slot indexed under `order_ref`, if any.
    #[inline]
    pub fn get(&self, order_ref: u64) -> Option<u32> {
        let id = self.directory[self.chunk_number(order_ref)?];
        if id == NO_CHUNK {
            return None;
        }
        let slot = self.slots[Self::position(id, order_ref)];
        (slot != NO_SLOT).then_some(slot)
    }

    /// Removes `order_ref` and returns its slot, if it was present.
    #[inline]
    pub fn remove(&mut self, order_ref: u64) -> Option<u32> {
        let c = self.chunk_number(order_ref)?;
        let id = self.directory[c];
        if id == NO_CHUNK {
            return None;
        }
        let entry = &mut self.slots[Self::position(id, order_ref)];
        let slot = std::mem::replace(entry, NO_SLOT);
        if slot == NO_SLOT {
            return None;
        }
        self.len -= 1;
        let live = &mut self.live[id as usize];
        *live -= 1;
        if *live == 0 {
            // the chunk is all NO_SLOT again: recycle it as is
            self.directory[c] = NO_CHUNK;
            self.free[self.free_len] = id;
            self.free_len += 1;
        }
        Some(slot)
    }

    /// Orders indexed now.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is indexed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most orders the index holds at once (`max_live`).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.max_live
    }
}

impl RefIndex for DirectIndex {
    fn with_capacity(max_live: usize) -> Self {
        Self::with_capacity(max_live)
    }
    #[inline]
    fn insert(&mut self, order_ref: u64, slot: u32) -> Result<(), IndexError> {
        self.insert(order_ref, slot)
    }
    #[inline]
    fn get(&self, order_ref: u64) -> Option<u32> {
        self.get(order_ref)
    }
    #[inline]
    fn remove(&mut self, order_ref: u64) -> Option<u32> {
        self.remove(order_ref)
    }
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn capacity(&self) -> usize {
        self.max_live
    }
}
