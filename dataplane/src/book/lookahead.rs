//! [`Lookahead`]: decoded messages held a few places back, so that their records load early.
//!
//! On a real day's working set each message's order record and level are cache misses (the
//! books are hundreds of megabytes). A core keeps 10–20 misses in flight, but only if it is
//! told about them early: a message names its records, so a reader that parses `DEPTH`
//! messages ahead of the book can ask for them while the book works on older ones.
//!
//! Loads come in three steps, each reading only what the one before brought in
//! ([`Books::prefetch`], [`Books::prefetch_levels`], [`Books::prefetch_lists`]): a message's
//! order record (or an add's level) when it is pushed, its level and queue chunk
//! [`LEVELS_AT`] messages later, its price list entry [`LISTS_AT`] messages later, and it is
//! applied `DEPTH` messages after it was pushed. Order of application is unchanged, so are
//! the books: prefetches are only hints.

use super::{Books, ChangeSink, Op};

/// Messages held back: 16, about as many misses as a core keeps in flight.
pub const DEPTH: usize = 16;

/// Messages after its push that a message's level and queue chunk are asked for.
pub const LEVELS_AT: usize = 6;

/// Messages after its push that a message's price list entry is asked for.
pub const LISTS_AT: usize = 11;

/// A queue of the next `DEPTH` messages ahead of the book.
#[derive(Debug)]
pub struct Lookahead {
    ring: [Op; DEPTH],
    /// Position of the oldest message.
    front: usize,
    len: usize,
}

/// Steps two and three for the ops pushed [`LEVELS_AT`] and [`LISTS_AT`] pushes before the
/// one being pushed (the shard's held messages use it too).
#[inline(always)]
pub fn later_steps(books: &Books<'_>, levels: Option<&Op>, lists: Option<&Op>) {
    if let Some(op) = levels {
        books.prefetch_levels(op);
    }
    if let Some(op) = lists {
        books.prefetch_lists(op);
    }
}

impl Default for Lookahead {
    fn default() -> Self {
        Self::new()
    }
}

impl Lookahead {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            ring: [Op::Other; DEPTH],
            front: 0,
            len: 0,
        }
    }

    /// Queues `op` and starts its loads; when `DEPTH` ops are held, first applies the oldest
    /// to `books`, read where it lies (an op copied out and read back field by field right
    /// away stalls on store forwarding).
    #[inline(always)]
    pub fn push(&mut self, books: &mut Books<'_>, op: Op, out: &mut impl ChangeSink) {
        if self.len == DEPTH {
            books.apply_op(&self.ring[self.front], out);
            self.front = (self.front + 1) % DEPTH;
            self.len -= 1;
        }
        books.prefetch(&op);
        later_steps(books, self.pushed_ago(LEVELS_AT), self.pushed_ago(LISTS_AT));
        self.ring[(self.front + self.len) % DEPTH] = op;
        self.len += 1;
    }

    /// Applies every op held, oldest first (at the end of the input).
    pub fn drain(&mut self, books: &mut Books<'_>, out: &mut impl ChangeSink) {
        while self.len > 0 {
            books.apply_op(&self.ring[self.front], out);
            self.front = (self.front + 1) % DEPTH;
            self.len -= 1;
        }
    }

    /// The op pushed `ago` pushes before the next one, if held.
    #[inline(always)]
    fn pushed_ago(&self, ago: usize) -> Option<&Op> {
        if self.len < ago {
            return None;
        }
        Some(&self.ring[(self.front + self.len - ago) % DEPTH])
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no message is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::{BooksConfig, L2Change};
    use crate::feed::itch::encode::{self, EncHeader};
    use crate::feed::itch::{Side, parse};

    #[test]
    fn ops_are_applied_in_order_depth_pushes_later() {
        let mut books = Books::new(
            BooksConfig {
                max_orders: 64,
                max_levels: 64,
                max_levels_per_side: 64,
                max_symbols: 4,
            },
            None,
        )
        .unwrap();
        let h = EncHeader {
            stock_locate: 1,
            tracking: 0,
            timestamp: 1,
        };
        // each add opens its own level, so the changes name the adds in the order applied
        let frames: Vec<Vec<u8>> = (0..40u64)
            .map(|r| {
                encode::add_order(h, r, Side::Buy, 1, encode::stock("A"), 100 + r as u32, None)
            })
            .collect();
        let mut ahead = Lookahead::new();
        let mut applied = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            ahead.push(
                &mut books,
                Op::of(&parse(frame).unwrap()),
                &mut |c: L2Change| applied.push(c.price),
            );
            assert_eq!(applied.len(), (i + 1).saturating_sub(DEPTH));
        }
        ahead.drain(&mut books, &mut |c: L2Change| applied.push(c.price));
        assert!(ahead.is_empty());
        assert_eq!(applied, (100..140).collect::<Vec<i64>>());
    }
}
