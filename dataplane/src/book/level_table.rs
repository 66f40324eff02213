//! [`LevelTable`]: every price level of a shard in one open-addressing table.
//!
//! A level is found by its key alone — stock locate, side and price — with one hash and, at
//! most half full, mostly one cache line (homes are even positions, each starting a line): no per-book structure to walk first, so the caller
//! can prefetch the line of a message's level from the message ([`LevelTable::prefetch`]).
//! Linear probing with backward-shift deletion: no tombstones, so a day of levels coming and
//! going never degrades it. Levels are kept in no order; [`super::side`] orders them.
//!
//! All memory is taken in [`LevelTable::new`]; nothing allocates afterwards and no input
//! panics. A record is free when its `orders` is 0: a level exists while an order rests there.

use crate::arena::{Arena, ArenaError, Region};
use crate::feed::itch::Side;

/// One price level: 32 bytes, two to a cache line.
#[repr(C, align(32))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Price in the feed's integer units.
    pub price: i64,
    /// Sum of the resting orders' shares.
    pub shares: u64,
    /// Resting orders; 0 marks a free record.
    pub orders: u32,
    /// The last chunk of the level's queue of orders (see [`super::queues`]).
    pub queue: u32,
    /// Where its side's list holds its price (see [`super::side`]).
    pub list_pos: u32,
    /// The book's stock locate.
    pub locate: u16,
    /// Buy or sell.
    pub side: Side,
}

const _: () = assert!(size_of::<Level>() == 32);

impl Level {
    const FREE: Self = Self {
        price: 0,
        shares: 0,
        orders: 0,
        queue: super::queues::NIL,
        list_pos: 0,
        locate: 0,
        side: Side::Buy,
    };

    #[inline(always)]
    const fn is_free(&self) -> bool {
        self.orders == 0
    }

    #[inline(always)]
    fn is(&self, locate: u16, side: Side, price: i64) -> bool {
        self.price == price && self.locate == locate && self.side == side
    }
}

/// No level could be created: `max_levels` exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelsFull;

/// A level's state after an order joined it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joined {
    /// Shares at the level now.
    pub shares: u64,
    /// Orders at the level now.
    pub orders: u32,
    /// The level's queue (its last chunk), which the order is to join.
    pub queue: u32,
    /// The order opened the level.
    pub created: bool,
    /// Where the level is in the table, for [`LevelTable::at_mut`] before any other change.
    pub at: usize,
}

/// A level's state after shares or an order left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Left {
    /// Shares at the level now.
    pub shares: u64,
    /// Orders at the level now; 0: the level is gone.
    pub orders: u32,
    /// The level's list position (see [`super::side`]).
    pub list_pos: u32,
}

/// The price levels of every book of a shard.
pub struct LevelTable<'a> {
    slots: Region<'a, Level>,
    /// `64 - log2(slots.len())`: the hash's top bits pick the home slot.
    shift: u32,
    len: usize,
    max_levels: usize,
}

impl<'a> LevelTable<'a> {
    /// Room for `max_levels` levels, carved from `arena` when given: a table of
    /// `max_levels` rounded up to a power of two, times two (32 bytes each).
    ///
    /// # Errors
    /// [`ArenaError::Exhausted`] if the arena has no room.
    pub fn new(arena: Option<&'a Arena>, max_levels: usize) -> Result<Self, ArenaError> {
        let len = Self::table_len(max_levels);
        Ok(Self {
            slots: Region::new(arena, len, |_| Level::FREE)?,
            shift: 64 - len.trailing_zeros(),
            len: 0,
            max_levels,
        })
    }

    /// The table length for `max_levels`.
    pub fn table_len(max_levels: usize) -> usize {
        max_levels
            .max(16)
            .checked_next_power_of_two()
            .map_or(1 << 62, |n| n.saturating_mul(2))
    }

    /// Bytes taken by a table for `max_levels`.
    pub fn bytes(max_levels: usize) -> usize {
        Self::table_len(max_levels)
            .saturating_mul(size_of::<Level>())
            .saturating_add(crate::arena::CACHE_LINE)
    }

    #[inline(always)]
    fn home(&self, locate: u16, side: Side, price: i64) -> usize {
        let key = (price as u64) ^ (u64::from(locate) << 48) ^ ((side as u64) << 47);
        let mixed = (key ^ (key >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // even: a home starts a cache line, so a level found or added at its home or one past
        // it costs that one line
        ((mixed >> self.shift) as usize) & !1
    }

    /// `Ok(position)` of the level, or `Err(first free position)`.
    #[inline(always)]
    fn find(&self, locate: u16, side: Side, price: i64) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut at = self.home(locate, side, price);
        // At most half full: a free record ends every probe run.
        loop {
            let level = &self.slots[at];
            if level.is_free() {
                return Err(at);
            }
            if level.is(locate, side, price) {
                return Ok(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// Asks the CPU to start loading the home line of a level, for a message some way ahead.
    #[inline(always)]
    pub fn prefetch(&self, locate: u16, side: Side, price: i64) {
        crate::prefetch::prefetch(&self.slots[self.home(locate, side, price)]);
    }

    /// The level, for a message that will take an order off it; when the order is the
    /// level's last, also starts loading the line after the level's if deleting it will look
    /// there (the level is the second of its line).
    #[inline(always)]
    pub fn prefetch_leaving(&self, locate: u16, side: Side, price: i64) -> Option<&Level> {
        let at = self.find(locate, side, price).ok()?;
        let level = &self.slots[at];
        if level.orders == 1 && at % 2 == 1 {
            crate::prefetch::prefetch(&self.slots[(at + 1) & (self.slots.len() - 1)]);
        }
        Some(level)
    }

    /// The level, if an order rests there.
    #[inline]
    pub fn get(&self, locate: u16, side: Side, price: i64) -> Option<&Level> {
        self.find(locate, side, price)
            .ok()
            .map(|at| &self.slots[at])
    }

    /// An order of `shares` joins the level, which is created if it did not exist.
    ///
    /// # Errors
    /// [`LevelsFull`] when the level would be new and `max_levels` exist.
    #[inline]
    pub fn join(
        &mut self,
        locate: u16,
        side: Side,
        price: i64,
        shares: u32,
    ) -> Result<Joined, LevelsFull> {
        let (at, created) = match self.find(locate, side, price) {
            Ok(at) => (at, false),
            Err(_) if self.len >= self.max_levels => return Err(LevelsFull),
            Err(at) => {
                self.slots[at] = Level {
                    price,
                    locate,
                    side,
                    ..Level::FREE
                };
                self.len += 1;
                (at, true)
            }
        };
        let level = &mut self.slots[at];
        level.orders += 1;
        level.shares += u64::from(shares);
        Ok(Joined {
            shares: level.shares,
            orders: level.orders,
            queue: level.queue,
            created,
            at,
        })
    }

    /// The level at table position `at` (from [`Joined`]), to set its queue and list position.
    #[inline(always)]
    pub fn at_mut(&mut self, at: usize) -> Option<&mut Level> {
        self.slots.get_mut(at)
    }

    /// Sets the list position of a level found by its key.
    pub fn move_in_list(&mut self, locate: u16, side: Side, price: i64, pos: u32) {
        if let Ok(at) = self.find(locate, side, price) {
            self.slots[at].list_pos = pos;
        }
    }

    /// Takes `shares` off the level, no order leaving it. Returns the level's state after, or
    /// `None` if there is no such level.
    #[inline]
    pub fn take(&mut self, locate: u16, side: Side, price: i64, shares: u32) -> Option<Left> {
        self.change(locate, side, price, shares, None::<fn(u32) -> u32>)
    }

    /// An order of `shares` leaves the level; `requeue` takes the level's queue and returns
    /// it without the order. The level goes with its last order. Returns the level's state
    /// after, or `None` if there is no such level.
    #[inline]
    pub fn leave(
        &mut self,
        locate: u16,
        side: Side,
        price: i64,
        shares: u32,
        requeue: impl FnOnce(u32) -> u32,
    ) -> Option<Left> {
        self.change(locate, side, price, shares, Some(requeue))
    }

    #[inline(always)]
    fn change(
        &mut self,
        locate: u16,
        side: Side,
        price: i64,
        shares: u32,
        leaving: Option<impl FnOnce(u32) -> u32>,
    ) -> Option<Left> {
        let at = self.find(locate, side, price).ok()?;
        let level = &mut self.slots[at];
        level.shares = level.shares.saturating_sub(u64::from(shares));
        if let Some(requeue) = leaving {
            level.orders -= 1;
            level.queue = requeue(level.queue);
        }
        let mut left = Left {
            shares: level.shares,
            orders: level.orders,
            list_pos: level.list_pos,
        };
        if left.orders == 0 {
            left.shares = 0;
            self.delete(at);
        }
        Some(left)
    }

    /// Removes the level outright (a book being cleared); returns it.
    pub fn remove(&mut self, locate: u16, side: Side, price: i64) -> Option<Level> {
        let at = self.find(locate, side, price).ok()?;
        let level = self.slots[at];
        self.delete(at);
        Some(level)
    }

    /// Frees position `at` and shifts back the records of its probe run.
    fn delete(&mut self, mut at: usize) {
        let mask = self.slots.len() - 1;
        let mut next = (at + 1) & mask;
        while !self.slots[next].is_free() {
            let l = &self.slots[next];
            let home = self.home(l.locate, l.side, l.price);
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(at) & mask) {
                self.slots[at] = self.slots[next];
                at = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[at] = Level::FREE;
        self.len -= 1;
    }

    /// Levels now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no level exists.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most levels.
    pub fn capacity(&self) -> usize {
        self.max_levels
    }
}

impl std::fmt::Debug for LevelTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LevelTable")
            .field("len", &self.len)
            .field("max_levels", &self.max_levels)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn matches_a_hashmap(
            max in 1usize..40,
            ops in prop::collection::vec((0u16..3, any::<bool>(), -8i64..8, 0u32..5, any::<bool>()), 0..500),
        ) {
            let mut table = LevelTable::new(None, max).unwrap();
            let mut model: HashMap<(u16, bool, i64), (u64, u32)> = HashMap::new();
            for (locate, buy, price, shares, join) in ops {
                let side = if buy { Side::Buy } else { Side::Sell };
                let key = (locate, buy, price);
                if join {
                    let got = table.join(locate, side, price, shares);
                    if !model.contains_key(&key) && model.len() >= max {
                        prop_assert_eq!(got, Err(LevelsFull));
                        continue;
                    }
                    let e = model.entry(key).or_insert((0, 0));
                    e.0 += u64::from(shares);
                    e.1 += 1;
                    let got = got.unwrap();
                    prop_assert_eq!((got.shares, got.orders), *e);
                } else {
                    let expected = model.get_mut(&key).map(|e| {
                        e.0 = e.0.saturating_sub(u64::from(shares));
                        e.1 -= 1;
                        if e.1 == 0 { (0, 0) } else { *e }
                    });
                    if expected == Some((0, 0)) {
                        model.remove(&key);
                    }
                    let got = table.leave(locate, side, price, shares, |q| q).map(|l| (l.shares, l.orders));
                    prop_assert_eq!(got, expected);
                }
                prop_assert_eq!(table.len(), model.len());
            }
            for ((locate, buy, price), (shares, orders)) in model {
                let side = if buy { Side::Buy } else { Side::Sell };
                let level = table.get(locate, side, price).unwrap();
                prop_assert_eq!((level.shares, level.orders), (shares, orders));
            }
        }
    }
}
