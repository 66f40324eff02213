//! [`WindowIndex`]: the newest references direct-mapped, older ones in open addressing.
//!
//! ITCH order references rise through the day, and most orders die young: executions, cancels
//! and deletes mostly name references issued moments ago. So the index keeps a window of the
//! `WINDOW` newest references as a plain array (`reference & (WINDOW - 1)` → slot, 4 bytes per
//! reference, 16 MiB): consecutive references share cache lines, and the lines of the orders
//! in play stay in cache, like [`super::DirectIndex`] but with fixed, small memory.
//!
//! When a new reference lies beyond the window, the window slides up to it; the orders still
//! alive in the part left behind move to an [`OpenAddressingIndex`] sized for `max_live`, whose
//! memory is fixed by `max_live` alone. Each position is scanned once as the window passes, so
//! sliding costs O(1) per reference, amortised (a jump over an empty stretch costs nothing).
//! A reference below the window (a feed that goes back) goes straight to the hashed part.

use super::open_addressing::OpenAddressingIndex;
use super::{IndexError, NO_SLOT, RefIndex};

/// References direct-mapped behind the newest (a power of two): 4 M references, 16 MiB.
/// Chosen with back-to-back replays of a generated 10 M-message stream: a 64 K window gave
/// 112–117 ns/msg, 256 K 116, 1 M 93–100, 4 M 82–95 (the direct array: 85).
pub const WINDOW: usize = 1 << 22;

const MASK: u64 = WINDOW as u64 - 1;

/// Order reference → pool slot: a direct-mapped window of recent references over a hash
/// table of older ones.
pub struct WindowIndex {
    /// The window covers references `[base, base + WINDOW)`.
    base: u64,
    /// Slot of each reference in the window, [`NO_SLOT`] if none; position `r & MASK`.
    window: Box<[u32]>,
    /// Orders indexed in the window.
    in_window: usize,
    /// Orders whose references are below the window.
    old: OpenAddressingIndex,
    max_live: usize,
}

impl WindowIndex {
    /// An empty index for at most `max_live` orders at once; all memory is taken here.
    pub fn with_capacity(max_live: usize) -> Self {
        Self {
            base: 0,
            window: vec![NO_SLOT; WINDOW].into_boxed_slice(),
            in_window: 0,
            old: OpenAddressingIndex::with_capacity(max_live),
            max_live,
        }
    }

    #[inline(always)]
    fn in_window(&self, order_ref: u64) -> bool {
        order_ref >= self.base && order_ref - self.base < WINDOW as u64
    }

    /// Indexes `order_ref` → `slot`; see [`RefIndex::insert`] for the errors.
    #[inline]
    pub fn insert(&mut self, order_ref: u64, slot: u32) -> Result<(), IndexError> {
        if slot == NO_SLOT {
            return Err(IndexError::ReservedSlot);
        }
        if order_ref < self.base {
            if self.len() >= self.max_live && self.old.get(order_ref).is_none() {
                return Err(IndexError::Full);
            }
            return self.old.insert(order_ref, slot);
        }
        if order_ref - self.base >= WINDOW as u64 {
            if self.len() >= self.max_live {
                return Err(IndexError::Full);
            }
            self.slide(order_ref - (WINDOW as u64 - 1));
        }
        let entry = &mut self.window[(order_ref & MASK) as usize];
        if *entry != NO_SLOT {
            return Err(IndexError::Duplicate);
        }
        if self.in_window + self.old.len() >= self.max_live {
            return Err(IndexError::Full);
        }
        *entry = slot;
        self.in_window += 1;
        Ok(())
    }

    /// Moves the window up to start at `new_base`, handing the live orders it leaves behind
    /// to the hashed part.
    fn slide(&mut self, new_base: u64) {
        let mut r = self.base;
        let end = new_base.min(self.base.saturating_add(WINDOW as u64));
        while r < end && self.in_window > 0 {
            let entry = &mut self.window[(r & MASK) as usize];
            if *entry != NO_SLOT {
                let slot = std::mem::replace(entry, NO_SLOT);
                self.in_window -= 1;
                // Cannot fail: the hashed part holds max_live, and at most max_live orders are
                // indexed in both parts together; a reference is in one part only.
                let moved = self.old.insert(r, slot);
                debug_assert_eq!(moved, Ok(()));
            }
            r += 1;
        }
        self.base = new_base;
    }

    /// The slot indexed under `order_ref`, if any.
    #[inline]
    pub fn get(&self, order_ref: u64) -> Option<u32> {
        if self.in_window(order_ref) {
            let slot = self.window[(order_ref & MASK) as usize];
            (slot != NO_SLOT).then_some(slot)
        } else {
            self.old.get(order_ref)
        }
    }

    /// Removes `order_ref` and returns its slot, if it was present.
    #[inline]
    pub fn remove(&mut self, order_ref: u64) -> Option<u32> {
        if self.in_window(order_ref) {
            let entry = &mut self.window[(order_ref & MASK) as usize];
            let slot = std::mem::replace(entry, NO_SLOT);
            if slot == NO_SLOT {
                return None;
            }
            self.in_window -= 1;
            Some(slot)
        } else {
            self.old.remove(order_ref)
        }
    }

    /// Orders indexed now.
    pub fn len(&self) -> usize {
        self.in_window + self.old.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most orders the index holds at once.
    pub fn capacity(&self) -> usize {
        self.max_live
    }

    /// Orders in the hashed part (their references fell behind the window).
    pub fn hashed(&self) -> usize {
        self.old.len()
    }
}

impl RefIndex for WindowIndex {
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
    fn len(&self) -> usize {
        self.len()
    }
    fn capacity(&self) -> usize {
        self.capacity()
    }
}

impl std::fmt::Debug for WindowIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowIndex")
            .field("base", &self.base)
            .field("in_window", &self.in_window)
            .field("hashed", &self.old.len())
            .field("max_live", &self.max_live)
            .finish()
    }
}
