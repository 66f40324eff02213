//! A fixed-capacity, single-owner object pool with generational handles.
//!
//! The shard thread owns its pool outright, so there is no lock-free free list (and none of the
//! ABA and leak bugs that come with one): `alloc` pops the head of an intrusive free list and
//! `free` pushes onto it, each O(1) with no atomics and no allocation. All memory is taken when
//! the pool is built — from the heap ([`Pool::with_capacity`]) or carved from a NUMA-bound
//! [`Arena`] ([`Pool::in_arena`]).
//!
//! A [`Handle`] is an index plus the slot's generation. Freeing a slot bumps its generation, so
//! a stale handle (the slot was freed, perhaps reused) and a double free are detected and
//! reported as [`StaleHandle`] — never undefined behaviour. The pool is entirely safe code.
//!
//! ```
//! use dataplane::pool::{Pool, PoolFull};
//!
//! let mut pool = Pool::with_capacity(1);
//! let a = pool.alloc(10u64).unwrap();
//! assert_eq!(pool.alloc(11), Err(PoolFull(11))); // full: the value is handed back
//! *pool.get_mut(a).unwrap() += 1;
//! assert_eq!(pool.free(a), Ok(11));
//! let b = pool.alloc(12).unwrap();            // reuses a's slot...
//! assert_eq!(pool.get(a), None);              // ...but a is stale
//! assert_eq!(pool.get(b), Some(&12));
//! ```

use std::fmt;

use crate::arena::{Arena, ArenaError, Region};

/// End of the free list.
use crate::nil::NIL;

/// The largest capacity a pool supports (indices are `u32`, one value marks the list end).
pub const MAX_CAPACITY: usize = NIL as usize;

/// Names one allocated object: slot index and the slot's generation when it was allocated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Handle {
    index: u32,
    generation: u32,
}

impl Handle {
    /// The slot index, dense in `0..capacity`: usable as an array index by the owner.
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The slot's generation when this handle was made.
    pub const fn generation(self) -> u32 {
        self.generation
    }
}

/// The pool was full; the value that did not fit is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct PoolFull<T>(pub T);

impl<T> fmt::Debug for PoolFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PoolFull(..)")
    }
}

impl<T> fmt::Display for PoolFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("order pool is full: raise its capacity in the configuration")
    }
}

impl<T> std::error::Error for PoolFull<T> {}

/// A handle that does not name a live object: it was freed already (double free), or its slot
/// was freed and reused (stale), or it comes from another pool.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("stale pool handle (slot {index}, generation {generation}): the object was already freed")]
pub struct StaleHandle {
    /// The handle's slot index.
    pub index: u32,
    /// The handle's generation.
    pub generation: u32,
}

/// Errors of building a pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// More slots were asked for than handles can name.
    #[error("pool capacity {requested} is above the maximum {MAX_CAPACITY}: lower it")]
    CapacityTooLarge {
        /// The capacity asked for.
        requested: usize,
    },
    /// The arena had no room for the slots.
    #[error(transparent)]
    Arena(#[from] ArenaError),
}

/// One slot: its generation and either a value or the next free slot.
#[derive(Debug)]
pub struct Slot<T> {
    generation: u32,
    entry: Entry<T>,
}

#[derive(Debug)]
enum Entry<T> {
    Occupied(T),
    Vacant { next_free: u32 },
}

impl<T> Slot<T> {
    fn vacant(index: usize, capacity: usize) -> Self {
        let next = index + 1;
        Self {
            generation: 0,
            entry: Entry::Vacant {
                next_free: if next < capacity { next as u32 } else { NIL },
            },
        }
    }
}

/// A fixed-capacity pool of `T`, owned by one thread.
///
/// `'a` is the lifetime of the arena the slots were carved from (`'static` for heap pools).
pub struct Pool<'a, T> {
    slots: Region<'a, Slot<T>>,
    free_head: u32,
    len: u32,
}

impl<T> Pool<'static, T> {
    /// A pool of `capacity` slots on the heap: one allocation, now.
    ///
    /// # Panics
    /// If `capacity` is above [`MAX_CAPACITY`]; use [`Pool::try_with_capacity`] for a
    /// capacity that comes from configuration.
    pub fn with_capacity(capacity: usize) -> Self {
        match Self::try_with_capacity(capacity) {
            Ok(pool) => pool,
            Err(e) => panic!("{e}"),
        }
    }

    /// A pool of `capacity` slots on the heap, or an error if the capacity is too large.
    pub fn try_with_capacity(capacity: usize) -> Result<Self, PoolError> {
        check_capacity(capacity)?;
        let slots = Region::heap(capacity, |i| Slot::vacant(i, capacity));
        Ok(Self::from_slots(slots, capacity))
    }
}

impl<'a, T> Pool<'a, T> {
    /// A pool of `capacity` slots carved from `arena`, so they live on the arena's NUMA node.
    /// The slots are initialised (first-touched) by the calling thread.
    pub fn in_arena(arena: &'a Arena, capacity: usize) -> Result<Self, PoolError> {
        check_capacity(capacity)?;
        let slots = Region::new(Some(arena), capacity, |i| Slot::vacant(i, capacity))?;
        Ok(Self::from_slots(slots, capacity))
    }

    fn from_slots(slots: Region<'a, Slot<T>>, capacity: usize) -> Self {
        Self {
            slots,
            free_head: if capacity == 0 { NIL } else { 0 },
            len: 0,
        }
    }

    #[inline(always)]
    fn slots(&self) -> &[Slot<T>] {
        &self.slots
    }

    #[inline(always)]
    fn slots_mut(&mut self) -> &mut [Slot<T>] {
        &mut self.slots
    }

    /// Stores `value` and returns its handle, or hands it back if every slot is taken.
    ///
    /// # Panics
    /// Never through this API: the free list only ever names vacant slots.
    #[inline]
    pub fn alloc(&mut self, value: T) -> Result<Handle, PoolFull<T>> {
        let index = self.free_head;
        let Some(slot) = self.slots_mut().get_mut(index as usize) else {
            return Err(PoolFull(value));
        };
        let next_free = match slot.entry {
            Entry::Vacant { next_free } => next_free,
            Entry::Occupied(_) => unreachable!("pool free list names an occupied slot"),
        };
        slot.entry = Entry::Occupied(value);
        let generation = slot.generation;
        self.free_head = next_free;
        self.len += 1;
        Ok(Handle { index, generation })
    }

    /// Removes the object `handle` names and returns it. A stale handle or a second free of
    /// the same handle is an error and changes nothing.
    #[inline]
    pub fn free(&mut self, handle: Handle) -> Result<T, StaleHandle> {
        let free_head = self.free_head;
        let stale = StaleHandle {
            index: handle.index,
            generation: handle.generation,
        };
        let slot = match self.slots_mut().get_mut(handle.index as usize) {
            Some(slot)
                if slot.generation == handle.generation
                    && matches!(slot.entry, Entry::Occupied(_)) =>
            {
                slot
            }
            _ => return Err(stale),
        };
        let entry = std::mem::replace(
            &mut slot.entry,
            Entry::Vacant {
                next_free: free_head,
            },
        );
        slot.generation = slot.generation.wrapping_add(1);
        self.free_head = handle.index;
        self.len -= 1;
        match entry {
            Entry::Occupied(value) => Ok(value),
            // Checked by the guard above.
            Entry::Vacant { .. } => Err(stale),
        }
    }

    /// The object `handle` names, or `None` if the handle is stale.
    #[inline]
    pub fn get(&self, handle: Handle) -> Option<&T> {
        match self.slots().get(handle.index as usize) {
            Some(Slot {
                generation,
                entry: Entry::Occupied(value),
            }) if *generation == handle.generation => Some(value),
            _ => None,
        }
    }

    /// The object `handle` names, mutably, or `None` if the handle is stale.
    #[inline]
    pub fn get_mut(&mut self, handle: Handle) -> Option<&mut T> {
        match self.slots_mut().get_mut(handle.index as usize) {
            Some(Slot {
                generation,
                entry: Entry::Occupied(value),
            }) if *generation == handle.generation => Some(value),
            _ => None,
        }
    }

    /// The handle of the live object in slot `index`, or `None` if the slot is vacant. For
    /// owners that link objects by raw index (the book's FIFO queues) and need a handle back.
    #[inline]
    pub fn handle_at(&self, index: u32) -> Option<Handle> {
        match self.slots().get(index as usize) {
            Some(Slot {
                generation,
                entry: Entry::Occupied(_),
            }) => Some(Handle {
                index,
                generation: *generation,
            }),
            _ => None,
        }
    }

    /// The live object in slot `index`, whatever its generation; `None` if the slot is vacant.
    #[inline]
    pub fn get_at(&self, index: u32) -> Option<&T> {
        match self.slots().get(index as usize) {
            Some(Slot {
                entry: Entry::Occupied(value),
                ..
            }) => Some(value),
            _ => None,
        }
    }

    /// The live object in slot `index`, mutably, whatever its generation; `None` if vacant.
    #[inline]
    pub fn get_at_mut(&mut self, index: u32) -> Option<&mut T> {
        match self.slots_mut().get_mut(index as usize) {
            Some(Slot {
                entry: Entry::Occupied(value),
                ..
            }) => Some(value),
            _ => None,
        }
    }

    /// True when `handle` names a live object.
    pub fn contains(&self, handle: Handle) -> bool {
        self.get(handle).is_some()
    }

    /// The number of live objects.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no object is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when every slot is taken, so `alloc` would fail.
    pub fn is_full(&self) -> bool {
        self.free_head == NIL
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.slots().len()
    }

    /// The live objects with their handles, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Handle, &T)> {
        self.slots()
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| match &slot.entry {
                Entry::Occupied(value) => Some((
                    Handle {
                        index: i as u32,
                        generation: slot.generation,
                    },
                    value,
                )),
                Entry::Vacant { .. } => None,
            })
    }
}

impl<T> fmt::Debug for Pool<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

fn check_capacity(capacity: usize) -> Result<(), PoolError> {
    if capacity > MAX_CAPACITY {
        return Err(PoolError::CapacityTooLarge {
            requested: capacity,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_until_full_then_reuse() {
        let mut pool = Pool::with_capacity(3);
        let hs: Vec<_> = (0..3).map(|i| pool.alloc(i).unwrap()).collect();
        assert!(pool.is_full());
        assert_eq!(pool.alloc(99), Err(PoolFull(99)));
        assert_eq!(pool.free(hs[1]), Ok(1));
        assert!(!pool.is_full());
        let h = pool.alloc(7).unwrap();
        assert_eq!(h.index(), hs[1].index(), "freed slot is reused first");
        assert_ne!(h.generation(), hs[1].generation());
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn stale_and_double_free_are_reported() {
        let mut pool = Pool::with_capacity(2);
        let a = pool.alloc(String::from("a")).unwrap();
        assert_eq!(pool.free(a).as_deref(), Ok("a"));
        assert_eq!(
            pool.free(a),
            Err(StaleHandle {
                index: a.index(),
                generation: a.generation()
            })
        );
        let b = pool.alloc(String::from("b")).unwrap();
        assert_eq!(b.index(), a.index());
        assert!(
            pool.free(a).is_err(),
            "stale handle must not free the reused slot"
        );
        assert!(pool.get(a).is_none() && pool.get_mut(a).is_none());
        assert_eq!(pool.get(b).map(String::as_str), Some("b"));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn foreign_handle_out_of_range_is_stale() {
        let mut big = Pool::with_capacity(10);
        let mut small = Pool::<u8>::with_capacity(1);
        let h = (0..10).map(|i| big.alloc(i).unwrap()).last().unwrap();
        assert!(small.free(h).is_err());
        assert!(small.get(h).is_none());
    }

    #[test]
    fn zero_capacity_is_always_full() {
        let mut pool = Pool::with_capacity(0);
        assert!(pool.is_full() && pool.is_empty());
        assert_eq!(pool.alloc(1u8), Err(PoolFull(1)));
    }

    #[test]
    fn capacity_above_maximum_is_an_error() {
        let err = Pool::<u8>::try_with_capacity(MAX_CAPACITY + 1)
            .err()
            .unwrap();
        assert!(err.to_string().contains("lower it"), "{err}");
    }

    #[test]
    fn live_values_are_dropped_with_the_pool() {
        let value = std::rc::Rc::new(());
        {
            let mut pool = Pool::with_capacity(4);
            let a = pool.alloc(value.clone()).unwrap();
            pool.alloc(value.clone()).unwrap();
            drop(pool.free(a));
            assert_eq!(std::rc::Rc::strong_count(&value), 2);
        }
        assert_eq!(std::rc::Rc::strong_count(&value), 1);
    }

    #[test]
    #[cfg_attr(miri, ignore = "the arena calls hwloc and mmap")]
    fn arena_pool_drops_live_values_and_reuses_slots() {
        let topology = crate::topology::Topology::detect_or_fallback();
        let arena = Arena::new(&topology, None, 1 << 20).unwrap();
        let value = std::rc::Rc::new(());
        {
            let mut pool = Pool::in_arena(&arena, 1000).unwrap();
            let hs: Vec<_> = (0..1000)
                .map(|_| pool.alloc(value.clone()).unwrap())
                .collect();
            assert!(pool.is_full());
            for h in &hs[..500] {
                drop(pool.free(*h).unwrap());
            }
            assert_eq!(std::rc::Rc::strong_count(&value), 501);
        }
        assert_eq!(std::rc::Rc::strong_count(&value), 1);
        assert!(arena.used() >= 1000 * std::mem::size_of::<Slot<std::rc::Rc<()>>>());
    }

    #[test]
    fn index_access_sees_only_live_slots() {
        let mut pool = Pool::with_capacity(2);
        let a = pool.alloc(1u8).unwrap();
        assert_eq!(pool.handle_at(a.index()), Some(a));
        *pool.get_at_mut(a.index()).unwrap() = 5;
        assert_eq!(pool.get_at(a.index()), Some(&5));
        pool.free(a).unwrap();
        assert_eq!(pool.handle_at(a.index()), None);
        assert_eq!(pool.get_at(a.index()), None);
        assert_eq!(pool.get_at(99), None);
    }

    #[test]
    fn iter_lists_live_objects() {
        let mut pool = Pool::with_capacity(4);
        let hs: Vec<_> = (0..4).map(|i| pool.alloc(i * 10).unwrap()).collect();
        pool.free(hs[2]).unwrap();
        let live: Vec<_> = pool.iter().map(|(h, v)| (h, *v)).collect();
        assert_eq!(live, [(hs[0], 0), (hs[1], 10), (hs[3], 30)]);
    }
}
