//! [`NIL`]: "no index", the one sentinel of the `u32` indices that link records inside the
//! arena's regions (a queue's chunks, a price list's free positions, the pool's free list).

/// No index: the end of a chain or list, or a link not set.
pub const NIL: u32 = u32::MAX;
