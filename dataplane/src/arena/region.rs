//! [`Region`]: a fixed-length slice of `T` that lives either on the heap or in an [`Arena`].
//!
//! Pools, order indices and level storage all want "N values, allocated once, ideally on this
//! shard's NUMA node". `Region` is that, once: built from an arena when one is given (the
//! values are then first-touched by the calling thread), from the heap otherwise. Either way it
//! derefs to `[T]` and drops its values when dropped.

use std::fmt;
use std::ops::{Deref, DerefMut};

use super::{Arena, ArenaError};

/// `len` values of `T`, allocated once.
pub struct Region<'a, T> {
    storage: Storage<'a, T>,
}

enum Storage<'a, T> {
    Heap(Box<[T]>),
    Arena(&'a mut [T]),
}

impl<'a, T> Region<'a, T> {
    /// `len` values, value `i` being `init(i)`: carved from `arena` when given, else one heap
    /// allocation.
    ///
    /// # Errors
    /// [`ArenaError::Exhausted`] if the arena has no room.
    pub fn new(
        arena: Option<&'a Arena>,
        len: usize,
        init: impl FnMut(usize) -> T,
    ) -> Result<Self, ArenaError> {
        let storage = match arena {
            Some(arena) => Storage::Arena(arena.carve_with(len, init)?),
            None => Storage::Heap((0..len).map(init).collect()),
        };
        Ok(Self { storage })
    }

    /// True when the values live in an arena.
    pub fn in_arena(&self) -> bool {
        matches!(self.storage, Storage::Arena(_))
    }
}

impl<T> Region<'static, T> {
    /// `len` values on the heap.
    pub fn heap(len: usize, init: impl FnMut(usize) -> T) -> Self {
        Self {
            storage: Storage::Heap((0..len).map(init).collect()),
        }
    }
}

impl<T> Deref for Region<'_, T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        match &self.storage {
            Storage::Heap(s) => s,
            Storage::Arena(s) => s,
        }
    }
}

impl<T> DerefMut for Region<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.storage {
            Storage::Heap(s) => s,
            Storage::Arena(s) => s,
        }
    }
}

impl<T> Drop for Region<'_, T> {
    fn drop(&mut self) {
        // The heap box drops its values itself; the arena never runs destructors, so values
        // carved from it are dropped here.
        if let Storage::Arena(values) = &mut self.storage
            && std::mem::needs_drop::<T>()
        {
            let values: *mut [T] = *values;
            // The slice was carved for this region alone (arena regions never overlap and are
            // never handed out twice), every element was initialised by `carve_with`, and this
            // is the last use of it: the region is being dropped and the arena never reads or
            // drops carved values.
            // SAFETY: so each value is initialised and dropped exactly once.
            unsafe { std::ptr::drop_in_place(values) };
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Region<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;
    use std::rc::Rc;

    #[test]
    fn heap_region_drops_its_values() {
        let value = Rc::new(());
        let region = Region::heap(3, |_| value.clone());
        assert_eq!(Rc::strong_count(&value), 4);
        assert!(!region.in_arena());
        drop(region);
        assert_eq!(Rc::strong_count(&value), 1);
    }

    #[test]
    fn arena_region_drops_its_values_exactly_once() {
        // the fallback topology has no hwloc handle, so this only mmaps: Miri can run it
        let topology = Topology::fallback();
        let arena = Arena::new(&topology, None, 1 << 16).unwrap();
        let value = Rc::new(());
        let mut region = Region::new(Some(&arena), 5, |_| value.clone()).unwrap();
        assert!(region.in_arena());
        region[0] = Rc::new(()); // the replaced clone is dropped by the assignment
        assert_eq!(Rc::strong_count(&value), 5);
        drop(region);
        assert_eq!(Rc::strong_count(&value), 1);
    }

    #[test]
    fn exhausted_arena_is_an_error() {
        let topology = Topology::fallback();
        let arena = Arena::new(&topology, None, 64).unwrap();
        assert!(matches!(
            Region::new(Some(&arena), 100, |i| i as u64),
            Err(ArenaError::Exhausted { .. })
        ));
    }
}
