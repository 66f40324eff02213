#![allow(dead_code, unused_imports)]
//! Order reference → order-pool slot: the indexes the first book used, before orders were
//! stored inline at their reference (`dataplane::book::order_store`). Kept here, outside the
//! library, only so that `benches/order_index.rs` can compare designs.
//!
//! The lookup behind every ITCH E, C, X, D and U message, in the first book.
//!
//! Those messages name only an order reference (a `u64`); the book must find the resting order,
//! a `u32` index into its order pool. Three designs offer the same methods (inherent, so callers
//! need no trait import; the [`RefIndex`] trait names them for generic code and the bench):
//!
//! - [`OpenAddressingIndex`]: a power-of-two table of at least twice `max_live` slots, linear
//!   probing, backward-shift deletion (no tombstones, so a 283 M-message day never degrades it).
//!   Memory is fixed by `max_live` alone: 16 bytes × the table size.
//! - [`DirectIndex`]: a chunked direct array. Reference `r` lives in chunk `r >> 12` at offset
//!   `r & 4095`; chunks come from a pool allocated up front and are recycled when their last
//!   order leaves. No hashing and no probing, but its memory follows the *spread* of the live
//!   references, not their number, so its chunk budget is a bet on how the day's orders die.
//!
//! Both allocate everything in `with_capacity` and never again: steady-state inserts and removes
//! do not touch the global allocator. Neither panics on any input; a reference that is not
//! present is `None`, a full index or a repeated reference is an [`IndexError`].
//!
//! - [`WindowIndex`]: the newest references in a direct-mapped window, older ones in an
//!   [`OpenAddressingIndex`]: the direct array's locality with fixed memory.
//!
//! The book uses [`OrderIndex`], an alias for the winner; why is measured in
//! `benches/order_index.rs` and `benches/book.rs`.

mod direct;
mod open_addressing;
mod window;

pub use direct::{CHUNK_BITS, CHUNK_REFS, DEFAULT_MAX_REF, DirectIndex, REFS_PER_LIVE_ORDER};
pub use open_addressing::{AHash, Multiplicative, OpenAddressingIndex, RefHash};
pub use window::{WINDOW, WindowIndex};

/// The index the book uses: [`WindowIndex`], the newest 4 M references direct-mapped, older
/// ones in open addressing.
///
/// `benches/order_index.rs` (each design alone, 1 M live, `max_live` 2 M): the direct array is
/// faster on the day-shaped mix (~25 vs ~40 ns mean, p99 ~140 vs ~450 ns per op) thanks to the
/// locality of the newest orders, open addressing on uniform lookups (~20 vs ~27 ns).
/// `benches/book.rs` (parse + book on a generated 10 M-message stream, same run): direct 85,
/// window (64 K) 112, open addressing 163 ns/msg; a 4 M window brings the window index level
/// with the direct array (82–95 against 85 in back-to-back replays). Memory decides between
/// those two: the window takes 16 MiB + 64 MiB for 2 M orders, bounded by `max_live`; the
/// direct array reserves ~1 GiB and its need follows the spread of live references — a shard
/// owning 1/8 of the symbols needs as many chunks as the whole feed, more than `max_live` can
/// budget. Open addressing alone scatters consecutive references over its whole table.
pub type OrderIndex = WindowIndex;

/// The one slot value no index stores: the order pool's "no order" marker (`u32::MAX`), which
/// is never a pool index. [`DirectIndex`] uses it to mark an empty entry; both designs reject it
/// so either can stand in for the other.
pub const NO_SLOT: u32 = u32::MAX;

/// Why an insert did not happen. The index is unchanged after any of these.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IndexError {
    /// `max_live` orders are already indexed (or, for [`DirectIndex`], its chunk pool is used
    /// up): the book is bigger than configured.
    Full,
    /// The reference is already present: the feed repeated an add (a replay or a gap?).
    Duplicate,
    /// The reference is beyond what a [`DirectIndex`]'s chunk directory covers.
    OutOfRange,
    /// The slot was [`NO_SLOT`], which no index stores.
    ReservedSlot,
}

/// The lookup from ITCH order reference to order-pool slot, with a capacity fixed when built:
/// the API both designs share (each also has these as inherent methods).
///
/// Every implementation allocates in [`with_capacity`](RefIndex::with_capacity) only, and no
/// other method panics.
pub trait RefIndex {
    /// An empty index for at most `max_live` orders at once. All memory is taken here.
    fn with_capacity(max_live: usize) -> Self
    where
        Self: Sized;

    /// Indexes `order_ref` → `slot`.
    ///
    /// # Errors
    /// In the order checked: [`IndexError::ReservedSlot`] for `slot == NO_SLOT`,
    /// [`IndexError::OutOfRange`] for a reference the index cannot hold,
    /// [`IndexError::Duplicate`] if `order_ref` is present, [`IndexError::Full`] at capacity.
    fn insert(&mut self, order_ref: u64, slot: u32) -> Result<(), IndexError>;

    /// The slot indexed under `order_ref`, if any.
    fn get(&self, order_ref: u64) -> Option<u32>;

    /// Removes `order_ref` and returns its slot, if it was present.
    fn remove(&mut self, order_ref: u64) -> Option<u32>;

    /// Orders indexed now.
    fn len(&self) -> usize;

    /// True when nothing is indexed.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most orders the index holds at once (`max_live`).
    fn capacity(&self) -> usize;
}
