//! One price level of a ladder, exactly one 64-byte cache line.

/// Marks "no order" in a level's FIFO links.
pub const NIL: u32 = u32::MAX;

/// Aggregate state of one price on one side of a book.
///
/// `#[repr(C, align(64))]` so a level never straddles two cache lines and two levels never
/// share one (no false sharing between adjacent prices, one line fetched per touch). `head` and
/// `tail` are order-pool indices of the oldest and newest resting order, so queue position is
/// kept: orders at a price are filled first-in, first-out.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Price in integer ticks (ITCH: 4 implied decimals).
    pub price: u32,
    /// Number of resting orders at this price.
    pub orders: u32,
    /// Sum of the resting orders' shares.
    pub shares: u64,
    /// Pool index of the oldest order at this price, or [`NIL`].
    pub head: u32,
    /// Pool index of the newest order at this price, or [`NIL`].
    pub tail: u32,
    /// Padding to the line; free for later per-level data.
    pub _reserved: [u32; 10],
}

const _: () = assert!(std::mem::size_of::<Level>() == 64);
const _: () = assert!(std::mem::align_of::<Level>() == 64);

impl Level {
    /// An empty level at `price`.
    pub const fn empty(price: u32) -> Self {
        Self {
            price,
            orders: 0,
            shares: 0,
            head: NIL,
            tail: NIL,
            _reserved: [0; 10],
        }
    }

    /// True when no order rests here.
    pub const fn is_empty(&self) -> bool {
        self.orders == 0
    }
}

impl Default for Level {
    fn default() -> Self {
        Self::empty(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_is_one_cache_line() {
        let levels = [Level::empty(1), Level::empty(2)];
        let a = &levels[0] as *const Level as usize;
        let b = &levels[1] as *const Level as usize;
        assert_eq!(a % 64, 0);
        assert_eq!(b - a, 64);
        assert!(levels[0].is_empty());
    }
}
