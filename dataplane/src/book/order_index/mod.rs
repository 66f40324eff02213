//! Order reference → order-pool slot: the lookup behind every ITCH E, C, X, D and U message.
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
//!
//! ```
//! use dataplane::book::order_index::{IndexError, OrderIndex};
//!
//! let mut index = OrderIndex::with_capacity(2);
//! index.insert(0, 7).unwrap(); // reference 0 is an ordinary key
//! index.insert(u64::MAX, 8).unwrap();
//! assert_eq!(index.insert(0, 9), Err(IndexError::Duplicate));
//! assert_eq!(index.insert(5, 9), Err(IndexError::Full));
//! assert_eq!(index.get(0), Some(7));
//! assert_eq!(index.remove(u64::MAX), Some(8));
//! assert_eq!(index.get(u64::MAX), None);
//! assert_eq!((index.len(), index.capacity()), (1, 2));
//! ```

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
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum IndexError {
    /// `max_live` orders are already indexed (or, for [`DirectIndex`], its chunk pool is used
    /// up): the book is bigger than configured.
    #[error("order index is full: raise max_live (or the direct index's chunk budget)")]
    Full,
    /// The reference is already present: the feed repeated an add (a replay or a gap?).
    #[error("order reference is already indexed: the feed repeated an add")]
    Duplicate,
    /// The reference is beyond what a [`DirectIndex`]'s chunk directory covers.
    #[error("order reference is beyond the direct index's range: raise its max_ref")]
    OutOfRange,
    /// The slot was [`NO_SLOT`], which no index stores.
    #[error("slot u32::MAX is reserved as the empty marker: it is never an order-pool index")]
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

/// Shared checks: each design runs the same model test through these.
#[cfg(test)]
pub(crate) mod model {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::{IndexError, NO_SLOT, RefIndex};

    /// One step of a model test.
    #[derive(Clone, Debug)]
    pub enum Op {
        Insert(u64, u32),
        Get(u64),
        Remove(u64),
    }

    /// Applies `ops` to `index` and to a `HashMap`, comparing every answer. `fits` says whether
    /// the design can hold a reference at all; `full` whether it must refuse a new reference
    /// given what the model holds.
    pub fn check<I: RefIndex>(
        index: &mut I,
        ops: impl IntoIterator<Item = Op>,
        fits: impl Fn(u64) -> bool,
        full: impl Fn(&HashMap<u64, u32>, u64) -> bool,
    ) -> Result<(), TestCaseError> {
        let mut model = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(r, s) => {
                    let expected = if s == NO_SLOT {
                        Err(IndexError::ReservedSlot)
                    } else if !fits(r) {
                        Err(IndexError::OutOfRange)
                    } else if model.contains_key(&r) {
                        Err(IndexError::Duplicate)
                    } else if full(&model, r) {
                        Err(IndexError::Full)
                    } else {
                        model.insert(r, s);
                        Ok(())
                    };
                    prop_assert_eq!(index.insert(r, s), expected, "insert {}", r);
                }
                Op::Get(r) => prop_assert_eq!(index.get(r), model.get(&r).copied(), "get {}", r),
                Op::Remove(r) => {
                    prop_assert_eq!(index.remove(r), model.remove(&r), "remove {}", r)
                }
            }
            prop_assert_eq!(index.len(), model.len());
        }
        for (&r, &s) in &model {
            prop_assert_eq!(index.get(r), Some(s), "final get {}", r);
        }
        Ok(())
    }

    /// References that collide: small, near zero, near `u64::MAX`, and a few far apart.
    pub fn any_ref() -> impl Strategy<Value = u64> {
        prop_oneof![
            4 => 0u64..64,
            1 => Just(0u64),
            1 => (u64::MAX - 4)..=u64::MAX,
            1 => (1u64 << 34) - 4..(1u64 << 34) + 4,
            1 => any::<u64>(),
        ]
    }

    /// Random inserts, gets and removes over [`any_ref`], with the occasional reserved slot.
    pub fn random_ops() -> impl Strategy<Value = Vec<Op>> {
        let slot = prop_oneof![20 => 0u32..1000, 1 => Just(NO_SLOT)];
        let op = prop_oneof![
            4 => (any_ref(), slot).prop_map(|(r, s)| Op::Insert(r, s)),
            3 => any_ref().prop_map(Op::Get),
            3 => any_ref().prop_map(Op::Remove),
        ];
        proptest::collection::vec(op, 0..400)
    }

    /// A day in miniature: references rise by small gaps; most orders die young, some rest
    /// long; gets hit live and dead references. Exercises chunk recycling and backward shift.
    pub fn sliding_day(
        steps: usize,
        seed: u64,
        max_gap: u64,
        start: u64,
    ) -> impl Iterator<Item = Op> {
        let mut rng = seed | 1;
        let mut next = move || {
            // xorshift64*: deterministic, no dependency
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let mut head = start;
        let mut live: Vec<u64> = Vec::new();
        (0..steps).map(move |i| {
            let roll = next() % 100;
            if roll < 40 || live.is_empty() {
                head += 1 + next() % max_gap;
                live.push(head);
                Op::Insert(head, (i as u32) & 0xFFFF)
            } else if roll < 80 {
                // young with probability 3/4: one of the last 8; else anyone
                let k = if next() % 4 != 0 {
                    live.len() - 1 - (next() as usize % live.len().min(8))
                } else {
                    next() as usize % live.len()
                };
                Op::Remove(live.swap_remove(k))
            } else if next() % 2 == 0 {
                Op::Get(live[next() as usize % live.len()])
            } else {
                Op::Get(head.wrapping_sub(next() % 64))
            }
        })
    }
}
