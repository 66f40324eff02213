//! [`Queues`]: each price level's orders in time priority, as chains of small chunks.
//!
//! A level's queue is a chain of 64-byte [`Chunk`]s, oldest first, each holding up to
//! [`PER_CHUNK`] order references in arrival order. Beside the chunks, one byte per chunk
//! counts the entries whose order still rests (a megabyte per million chunks, so these counts
//! mostly stay in cache). The level remembers the chain's last chunk (its *tail*); each order
//! remembers its *slot*, the chunk and entry that hold it. So:
//!
//! - an order joining a level writes one entry of the tail chunk (or takes a fresh chunk when
//!   the tail is full) and bumps its count;
//! - an order leaving only lowers its chunk's count. When that empties a chunk in the middle
//!   of the chain, the chunk's two neighbours are relinked (once per [`PER_CHUNK`] orders at
//!   most). Leaving never touches another order's record, nor its own entry;
//! - an entry is live when the order of its reference still rests and names this very slot
//!   (the caller checks that: [`Queues::refs`] and [`Queues::ahead`] yield every entry with its
//!   slot). A level's orders are listed oldest first by walking its chain, and an order's place
//!   in its queue is counted by walking back from its own entry.
//!
//! Invariant: every chunk of a chain but the tail holds a live entry, and a chain with no live
//! entry has no chunk. A chunk is therefore either free or pinned by a live order or by the
//! tail of a level, so `max_orders + max_levels` chunks can never run out.
//!
//! All memory is taken in [`Queues::new`]; nothing allocates afterwards and no input panics
//! (a slot that names no live entry is ignored).

use crate::arena::{Arena, ArenaError, Region};

/// Order references per chunk.
pub const PER_CHUNK: usize = 6;

/// No chunk: the tail of an empty queue, or the end of a chain.
pub use crate::nil::NIL;

/// Bits of a slot that number the entry within its chunk.
const ENTRY_BITS: u32 = 3;

/// One link of a level's queue: a cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    refs: [u64; PER_CHUNK],
    /// The chunk before (older orders), or `NIL` at the head.
    prev: u32,
    /// The chunk after (newer orders), or `NIL` at the tail.
    next: u32,
    /// Entries written: `[0, len)`.
    len: u8,
}

const _: () = assert!(size_of::<Chunk>() == 64);

impl Chunk {
    const FREE: Self = Self {
        refs: [0; PER_CHUNK],
        prev: NIL,
        next: NIL,
        len: 0,
    };
}

/// In a chunk's count byte: the chunk heads its chain (its `prev` is `NIL`), so that the
/// last order leaving a one-chunk queue frees it without loading it.
const HEAD: u8 = 0x80;

/// No chunk was left for a new entry (impossible when sized as [`Queues::chunks_for`] says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuesFull;

/// Where an order joined its queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joined {
    /// The queue's tail now.
    pub tail: u32,
    /// The order's slot, for [`Queues::leave`] and [`Queues::ahead`].
    pub slot: u32,
}

/// Every level's queue of a shard.
pub struct Queues<'a> {
    chunks: Region<'a, Chunk>,
    /// Per chunk: entries whose order rests, and [`HEAD`].
    counts: Region<'a, u8>,
    /// Free chunks, a stack: the last freed is reused first, while it may still be cached.
    free: Region<'a, u32>,
    free_len: usize,
    /// First never-used chunk.
    bump: u32,
    /// Chunks in use.
    used: usize,
}

impl<'a> Queues<'a> {
    /// The chunks that `max_orders` orders over `max_levels` levels can pin at most.
    pub fn chunks_for(max_orders: usize, max_levels: usize) -> usize {
        max_orders.saturating_add(max_levels).saturating_add(1)
    }

    /// Room for `chunks` chunks (at most 2^29), carved from `arena` when given.
    ///
    /// # Errors
    /// [`ArenaError::Exhausted`] if the arena has no room.
    pub fn new(arena: Option<&'a Arena>, chunks: usize) -> Result<Self, ArenaError> {
        let chunks = chunks.min(1 << (32 - ENTRY_BITS));
        Ok(Self {
            chunks: Region::new(arena, chunks, |_| Chunk::FREE)?,
            counts: Region::new(arena, chunks, |_| 0)?,
            free: Region::new(arena, chunks, |_| NIL)?,
            free_len: 0,
            bump: 0,
            used: 0,
        })
    }

    /// Bytes taken by `chunks` chunks: 69 each.
    pub fn bytes(chunks: usize) -> usize {
        chunks
            .min(1 << (32 - ENTRY_BITS))
            .saturating_mul(size_of::<Chunk>() + 1 + size_of::<u32>())
            .saturating_add(3 * crate::arena::CACHE_LINE)
    }

    #[inline(always)]
    const fn split(slot: u32) -> (usize, usize) {
        (
            (slot >> ENTRY_BITS) as usize,
            (slot & ((1 << ENTRY_BITS) - 1)) as usize,
        )
    }

    /// The chunk the next [`Queues::alloc`] returns, if any.
    #[inline(always)]
    fn next_free(&self) -> u32 {
        match self.free_len.checked_sub(1) {
            Some(top) => self.free[top],
            None => self.bump,
        }
    }

    /// Starts loading the chunk an order joining the queue of `tail` writes to (the tail, or
    /// the chunk a new queue would take) and its count.
    #[inline(always)]
    pub fn prefetch_tail(&self, tail: u32) {
        let c = if tail == NIL { self.next_free() } else { tail };
        if let (Some(chunk), Some(count)) =
            (self.chunks.get(c as usize), self.counts.get(c as usize))
        {
            crate::prefetch::prefetch(chunk);
            crate::prefetch::prefetch(count);
        }
    }

    /// Starts loading the count of the chunk of `slot`: all an order leaving reads, unless it
    /// empties a chunk that is not alone in its chain ([`Queues::prefetch_emptied`]).
    #[inline(always)]
    pub fn prefetch_slot(&self, slot: u32) {
        if let Some(count) = self.counts.get(Self::split(slot).0) {
            crate::prefetch::prefetch(count);
        }
    }

    /// Once the count of `slot`'s chunk has loaded: if the order leaving empties a chunk with
    /// a chunk before it, starts loading the chunk, whose neighbours are relinked.
    #[inline(always)]
    pub fn prefetch_emptied(&self, slot: u32) {
        let c = Self::split(slot).0;
        if self.counts.get(c) == Some(&1)
            && let Some(chunk) = self.chunks.get(c)
        {
            crate::prefetch::prefetch(chunk);
        }
    }

    fn alloc(&mut self) -> Result<u32, QueuesFull> {
        let c = if let Some(top) = self.free_len.checked_sub(1) {
            self.free_len = top;
            self.free[top]
        } else if (self.bump as usize) < self.chunks.len() {
            self.bump += 1;
            self.bump - 1
        } else {
            return Err(QueuesFull);
        };
        self.used += 1;
        Ok(c)
    }

    /// Frees chunk `c` without loading it.
    fn release(&mut self, c: u32) {
        self.counts[c as usize] = 0;
        // at most `chunks.len()` chunks are ever in use, so the stack has room
        if let Some(top) = self.free.get_mut(self.free_len) {
            *top = c;
            self.free_len += 1;
        }
        self.used -= 1;
    }

    /// Live entries of chunk `c`.
    #[inline(always)]
    fn live_in(&self, c: u32) -> u8 {
        self.counts.get(c as usize).map_or(0, |&n| n & !HEAD)
    }

    /// Appends `reference` to the queue whose tail is `tail` (`NIL`: an empty queue).
    ///
    /// # Errors
    /// [`QueuesFull`] when a chunk was needed and none is left; nothing changed then.
    #[inline]
    pub fn join(&mut self, tail: u32, reference: u64) -> Result<Joined, QueuesFull> {
        let mut tail = tail;
        let reuse = match self.chunks.get(tail as usize) {
            Some(t) => (t.len as usize) < PER_CHUNK || self.live_in(tail) == 0,
            None => false,
        };
        if !reuse {
            let c = self.alloc()?;
            let head = match self.chunks.get_mut(tail as usize) {
                Some(t) => {
                    t.next = c;
                    0
                }
                None => HEAD,
            };
            self.chunks[c as usize] = Chunk {
                prev: tail,
                ..Chunk::FREE
            };
            self.counts[c as usize] = head;
            tail = c;
        }
        let count = &mut self.counts[tail as usize];
        let chunk = &mut self.chunks[tail as usize];
        if *count & !HEAD == 0 {
            // a tail whose every entry left: written afresh from its first entry
            chunk.len = 0;
        }
        let entry = chunk.len as usize;
        chunk.refs[entry] = reference;
        chunk.len += 1;
        *count += 1;
        Ok(Joined {
            tail,
            slot: (tail << ENTRY_BITS) | entry as u32,
        })
    }

    /// The live order at `slot` leaves the queue whose tail is `tail`; returns the queue's
    /// tail now (`NIL` once no order is left in it). Call it once per order that joined.
    #[inline]
    pub fn leave(&mut self, tail: u32, slot: u32) -> u32 {
        let c = Self::split(slot).0;
        let Some(count) = self.counts.get_mut(c).filter(|n| **n & !HEAD > 0) else {
            return tail;
        };
        *count -= 1;
        if *count & !HEAD != 0 {
            return tail;
        }
        let head = *count & HEAD != 0;
        if c as u32 == tail {
            if head {
                // the queue's only chunk
                self.release(tail);
                return NIL;
            }
            // kept as the tail, and written afresh by the next order to join
            return tail;
        }
        // a chunk before the tail: unlink it
        let (prev, next) = (self.chunks[c].prev, self.chunks[c].next);
        if let Some(p) = self.chunks.get_mut(prev as usize) {
            p.next = next;
        }
        if let Some(n) = self.chunks.get_mut(next as usize) {
            n.prev = prev;
        }
        if head && let Some(n) = self.counts.get_mut(next as usize) {
            *n |= HEAD;
        }
        self.release(c as u32);
        if head && next == tail && self.live_in(tail) == 0 {
            // only the tail is left, and nothing rests in it
            self.release(tail);
            return NIL;
        }
        tail
    }

    /// Frees every chunk of the queue whose tail is `tail` (its level is gone).
    pub fn drop_queue(&mut self, tail: u32) {
        let mut c = tail;
        while c != NIL && (c as usize) < self.chunks.len() {
            let prev = self.chunks[c as usize].prev;
            self.release(c);
            c = prev;
        }
    }

    /// Every entry of the queue whose tail is `tail` as `(reference, slot)`, oldest first;
    /// the live ones are those whose order rests in that slot.
    pub fn refs(&self, tail: u32) -> impl Iterator<Item = (u64, u32)> + '_ {
        let mut head = tail;
        while let Some(prev) = self.chunks.get(head as usize).map(|c| c.prev)
            && prev != NIL
        {
            head = prev;
        }
        let mut c = head;
        let mut entry = 0usize;
        std::iter::from_fn(move || {
            loop {
                let chunk = self.chunks.get(c as usize)?;
                if entry < chunk.len as usize {
                    entry += 1;
                    let slot = (c << ENTRY_BITS) | (entry - 1) as u32;
                    return Some((chunk.refs[entry - 1], slot));
                }
                c = chunk.next;
                entry = 0;
            }
        })
    }

    /// Every entry ahead of `slot` in its queue as `(reference, slot)`, newest first; the
    /// live ones are those whose order rests in that slot.
    pub fn ahead(&self, slot: u32) -> impl Iterator<Item = (u64, u32)> + '_ {
        let (c, entry) = Self::split(slot);
        let (mut c, mut entry) = (c as u32, entry);
        std::iter::from_fn(move || {
            loop {
                let chunk = self.chunks.get(c as usize)?;
                if entry > 0 {
                    entry -= 1;
                    return Some((chunk.refs[entry], (c << ENTRY_BITS) | entry as u32));
                }
                c = chunk.prev;
                entry = self.chunks.get(c as usize)?.len as usize;
            }
        })
    }

    /// Frees every chunk.
    pub fn clear(&mut self) {
        if self.bump > 0 {
            self.counts[..self.bump as usize].fill(0);
        }
        self.bump = 0;
        self.free_len = 0;
        self.used = 0;
    }

    /// Chunks in use.
    pub fn used(&self) -> usize {
        self.used
    }
}

impl std::fmt::Debug for Queues<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("used", &self.used)
            .field("capacity", &self.chunks.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Queues joined and left at random list their live references in arrival order,
        /// count what is ahead of each, and give every chunk back when they empty.
        #[test]
        fn matches_vecs(ops in prop::collection::vec((0usize..4, any::<bool>(), any::<prop::sample::Index>()), 0..600)) {
            let levels = 4;
            let orders = 64;
            let mut queues = Queues::new(None, Queues::chunks_for(orders, levels)).unwrap();
            let mut tails = [NIL; 4];
            // per queue: (reference, slot) oldest first
            let mut model: Vec<Vec<(u64, u32)>> = vec![Vec::new(); levels];
            // the slot each resting order is in, as the order store would remember it
            let mut resting: HashMap<u64, u32> = HashMap::new();
            let mut next_ref = 0u64;
            for (q, join, pick) in ops {
                if join && resting.len() < orders {
                    let joined = queues.join(tails[q], next_ref).unwrap();
                    tails[q] = joined.tail;
                    model[q].push((next_ref, joined.slot));
                    resting.insert(next_ref, joined.slot);
                    next_ref += 1;
                } else if !model[q].is_empty() {
                    let i = pick.index(model[q].len());
                    let (r, slot) = model[q].remove(i);
                    resting.remove(&r);
                    tails[q] = queues.leave(tails[q], slot);
                }
                let live = |&(r, slot): &(u64, u32)| resting.get(&r) == Some(&slot);
                for q in 0..levels {
                    let listed: Vec<(u64, u32)> = queues.refs(tails[q]).filter(live).collect();
                    prop_assert_eq!(&listed, &model[q]);
                    prop_assert_eq!(tails[q] == NIL, model[q].is_empty());
                    for (i, &(_, slot)) in model[q].iter().enumerate() {
                        let ahead: Vec<(u64, u32)> = queues.ahead(slot).filter(live).collect();
                        let expected: Vec<(u64, u32)> = model[q][..i].iter().rev().copied().collect();
                        prop_assert_eq!(ahead, expected);
                    }
                }
                // each chunk is pinned by a live order or a tail
                let pinned: BTreeMap<u32, ()> = resting
                    .values()
                    .map(|&slot| (slot >> ENTRY_BITS, ()))
                    .chain(tails.iter().filter(|&&t| t != NIL).map(|&t| (t, ())))
                    .collect();
                prop_assert_eq!(queues.used(), pinned.len());
            }
            for tail in tails {
                queues.drop_queue(tail);
            }
            prop_assert_eq!(queues.used(), 0);
        }
    }

    #[test]
    fn a_slot_with_no_live_entry_changes_nothing() {
        let mut queues = Queues::new(None, 4).unwrap();
        let a = queues.join(NIL, 7).unwrap();
        assert_eq!(queues.leave(a.tail, u32::MAX), a.tail);
        assert_eq!(queues.leave(a.tail, (3 << ENTRY_BITS) | 1), a.tail);
        assert_eq!(queues.refs(a.tail).collect::<Vec<_>>(), [(7, a.slot)]);
        assert_eq!(queues.leave(a.tail, a.slot), NIL);
        assert_eq!(queues.leave(NIL, a.slot), NIL);
        assert_eq!(queues.used(), 0);
    }

    #[test]
    fn joining_fails_cleanly_when_no_chunk_is_left() {
        let mut queues = Queues::new(None, 1).unwrap();
        let a = queues.join(NIL, 1).unwrap();
        assert_eq!(queues.join(NIL, 2), Err(QueuesFull));
        assert_eq!(queues.refs(a.tail).collect::<Vec<_>>(), [(1, a.slot)]);
    }
}
