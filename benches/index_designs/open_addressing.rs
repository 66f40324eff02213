//! Open addressing with linear probing and backward-shift deletion.
//!
//! One flat table of 16-byte `(reference, slot)` entries, a power of two at least twice
//! `max_live` long, so the load factor never passes 1/2 and a successful lookup expects about
//! 1.5 probes, an unsuccessful one about 2.5 — nearly always within one or two cache lines.
//! Key 0 marks an empty entry; reference 0 itself is legal in the API and lives in a side field.
//!
//! Deletion shifts the following entries of the probe run back into the hole instead of leaving
//! a tombstone. Tombstones would lengthen every probe sequence as the day goes on (283 M
//! messages, most of them adds and deletes) and force periodic rehashing; with backward shift
//! the table after any sequence of operations is exactly the table that inserting the live set
//! would build, so it never degrades.

use super::{IndexError, NO_SLOT, RefIndex};

/// Hashes an order reference to 64 bits whose *top* bits pick the home slot.
pub trait RefHash: Default {
    /// The hash of `order_ref`; the table uses its top `log2(table size)` bits.
    fn hash(&self, order_ref: u64) -> u64;
}

/// Fibonacci hashing: one multiply by 2^64/φ, top bits taken. Spreads any arithmetic
/// progression of references (ITCH's rising references with small gaps) evenly over the table,
/// and costs one `imul` (see `benches/order_index.rs` for the comparison with [`AHash`]).
#[derive(Clone, Copy, Default, Debug)]
pub struct Multiplicative;

impl RefHash for Multiplicative {
    #[inline]
    fn hash(&self, order_ref: u64) -> u64 {
        order_ref.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// `ahash` with fixed seeds (replays stay deterministic; ITCH references are not adversarial).
#[derive(Clone, Debug)]
pub struct AHash(ahash::RandomState);

impl Default for AHash {
    fn default() -> Self {
        Self(ahash::RandomState::with_seeds(
            0x243F_6A88_85A3_08D3,
            0x1319_8A2E_0370_7344,
            0xA409_3822_299F_31D0,
            0x082E_FA98_EC4E_6C89,
        ))
    }
}

impl RefHash for AHash {
    #[inline]
    fn hash(&self, order_ref: u64) -> u64 {
        self.0.hash_one(order_ref)
    }
}

/// Marks an empty table entry. Reference 0 is kept outside the table.
const EMPTY: u64 = 0;

/// One table entry; 16 bytes and 16-aligned, so four share a cache line and none straddles two.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Entry {
    key: u64,
    slot: u32,
}

const VACANT: Entry = Entry {
    key: EMPTY,
    slot: NO_SLOT,
};

/// Order reference → pool slot by open addressing (linear probing, backward-shift deletion).
///
/// Memory: `16 × (2 × max_live).next_power_of_two()` bytes, all taken and written at
/// construction — 64 MiB for `max_live` = 2 M. `H` picks the hash; [`Multiplicative`] is the
/// default because it measured faster than [`AHash`] with equal probe lengths
/// (`benches/order_index.rs`).
pub struct OpenAddressingIndex<H: RefHash = Multiplicative> {
    table: Box<[Entry]>,
    /// `table.len() - 1`.
    mask: usize,
    /// `64 - log2(table.len())`: the hash's top bits are the home slot.
    shift: u32,
    /// The slot of reference 0, which cannot live in the table (0 marks empty entries).
    zero: Option<u32>,
    len: usize,
    max_live: usize,
    hasher: H,
}

impl<H: RefHash> OpenAddressingIndex<H> {
    /// Bytes of memory held (the table; the struct itself is a few words more).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.table)
    }

    /// Entries in the table (a power of two, at least `2 × capacity()`).
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (self.hasher.hash(key) >> self.shift) as usize
    }

    /// The table position holding `key` (nonzero), or `Err` with the empty position that ends
    /// its probe run. Terminates: the table always has an empty entry (at most half is used).
    #[inline]
    fn find(&self, key: u64) -> Result<usize, usize> {
        let mut i = self.home(key);
        loop {
            let e = self.table[i];
            if e.key == key {
                return Ok(i);
            }
            if e.key == EMPTY {
                return Err(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// An empty index for at most `max_live` orders; the whole table is allocated and written
    /// here.
    ///
    /// # Panics
    /// If a table of `(2 × max_live).next_power_of_two()` entries cannot exist (`max_live`
    /// above 2^58 on a 64-bit machine), or cannot be allocated.
    pub fn with_capacity(max_live: usize) -> Self {
        let table_len = max_live
            .saturating_mul(2)
            .max(2)
            .checked_next_power_of_two()
            .expect("max_live too large for an open-addressing table");
        Self {
            table: vec![VACANT; table_len].into_boxed_slice(),
            mask: table_len - 1,
            shift: 64 - table_len.trailing_zeros(),
            zero: None,
            len: 0,
            max_live,
            hasher: H::default(),
        }
    }

    /// Indexes `order_ref` → `slot`; see [`RefIndex::insert`] for the errors.
    #[inline]
    pub fn insert(&mut self, order_ref: u64, slot: u32) -> Result<(), IndexError> {
        if slot == NO_SLOT {
            return Err(IndexError::ReservedSlot);
        }
        if order_ref == EMPTY {
            if self.zero.is_some() {
                return Err(IndexError::Duplicate);
            }
            if self.len >= self.max_live {
                return Err(IndexError::Full);
            }
            self.zero = Some(slot);
            self.len += 1;
            return Ok(());
        }
        match self.find(order_ref) {
            Ok(_) => Err(IndexError::Duplicate),
            Err(_) if self.len >= self.max_live => Err(IndexError::Full),
            Err(i) => {
                self.table[i] = Entry {
                    key: order_ref,
                    slot,
                };
                self.len += 1;
                Ok(())
            }
        }
    }

    /// The slot indexed under `order_ref`, if any.
    #[inline]
    pub fn get(&self, order_ref: u64) -> Option<u32> {
        if order_ref == EMPTY {
            return self.zero;
        }
        self.find(order_ref).ok().map(|i| self.table[i].slot)
    }

    /// Removes `order_ref` and returns its slot, if it was present.
    #[inline]
    pub fn remove(&mut self, order_ref: u64) -> Option<u32> {
        if order_ref == EMPTY {
            let slot = self.zero.take();
            self.len -= usize::from(slot.is_some());
            return slot;
        }
        let mut hole = self.find(order_ref).ok()?;
        let slot = self.table[hole].slot;
        // Backward shift: walk the rest of the run; an entry may fill the hole when the hole
        // lies cyclically within [its home, its position) — its probe path passes the hole.
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let e = self.table[j];
            if e.key == EMPTY {
                break;
            }
            let home = self.home(e.key);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.table[hole] = e;
                hole = j;
            }
        }
        self.table[hole] = VACANT;
        self.len -= 1;
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

impl<H: RefHash> RefIndex for OpenAddressingIndex<H> {
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
