//! [`BookStats`]: what the books did and what they refused, counted.

/// Counters of a shard's books. Plain integers: the books are single-owner; the runtime copies
/// them into its shared per-shard stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BookStats {
    /// Messages applied (any type).
    pub messages: u64,
    /// Orders added (A, F, and the new half of U).
    pub adds: u64,
    /// Executions (E, C).
    pub executions: u64,
    /// Partial cancels (X).
    pub cancels: u64,
    /// Deletes (D).
    pub deletes: u64,
    /// Replaces (U).
    pub replaces: u64,
    /// Modifies (DBN M).
    pub modifies: u64,
    /// Modifies naming an order the book did not hold, added as new orders.
    pub modify_unknown: u64,
    /// Books cleared by the feed (DBN R, or a snapshot's start).
    pub clears: u64,
    /// Messages that do not change a book (P, Q, B, I, N, …), adds of 0 shares, and adds at a
    /// price a book side cannot hold (see `book::side`; never an ITCH price).
    pub skipped: u64,
    /// L2 change records emitted.
    pub changes: u64,
    /// E, C, X, D or U naming an order reference the book does not hold.
    pub unknown_refs: u64,
    /// A or F reusing a live order reference; the new order is ignored.
    pub duplicate_refs: u64,
    /// Executions or cancels of more shares than the order had; the order is removed.
    pub overfills: u64,
    /// Times a book became crossed (best bid ≥ best ask).
    pub crossed: u64,
    /// Adds dropped because the order pool or order index was full.
    pub orders_full: u64,
    /// Adds dropped because no price level could be reserved.
    pub levels_full: u64,
    /// Messages for a stock locate above the configured symbol capacity.
    pub symbols_full: u64,
}
