//! [`Held`]: the shard's last few feed messages, copied and held back so their records load
//! early (see [`crate::book::lookahead`], the same idea over a file in memory).
//!
//! A source lends a message's bytes only for its callback, so the shard copies each message
//! (at most [`MAX_MESSAGE_LEN`] bytes) into one of [`DEPTH`] slots, starts loading its order
//! record or level, and handles the message `DEPTH` messages later — or sooner: the shard
//! drains the slots before anything else that must come after them (a gap, a restart, the end
//! of a poll, a command), so holding back never delays a message past the poll that brought it
//! and never reorders it with anything.

use crate::book::Books;
use crate::book::lookahead::{DEPTH, LEVELS_AT, LISTS_AT};
use crate::feed::itch::{self, MAX_MESSAGE_LEN};

/// One held message.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    bytes: [u8; MAX_MESSAGE_LEN],
    len: u8,
    /// When the shard took it.
    pub ingest_ns: u64,
    /// Its stock locate is one the books keep: its records are worth loading.
    tracked: bool,
}

impl Slot {
    const EMPTY: Self = Self {
        bytes: [0; MAX_MESSAGE_LEN],
        len: 0,
        ingest_ns: 0,
        tracked: false,
    };

    /// The message's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// Up to [`DEPTH`] messages held back, oldest first.
#[derive(Debug)]
pub struct Held {
    slots: [Slot; DEPTH],
    front: usize,
    len: usize,
}

impl Held {
    /// No message held.
    pub const fn new() -> Self {
        Self {
            slots: [Slot::EMPTY; DEPTH],
            front: 0,
            len: 0,
        }
    }

    /// Holds `bytes` back and, if `wanted` says its stock locate is one the books keep,
    /// starts loading its records; returns the oldest message once `DEPTH` are held (handle it
    /// now). `Err(())` for a message too long to hold: drain, then handle it directly.
    #[inline]
    #[allow(clippy::result_unit_err)]
    pub fn push(
        &mut self,
        bytes: &[u8],
        ingest_ns: u64,
        books: &Books<'_>,
        wanted: impl Fn(u16) -> bool,
    ) -> Result<Option<Slot>, ()> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(());
        }
        let tracked = match itch::parse(bytes) {
            Ok(message) if wanted(message.header().stock_locate) => {
                books.prefetch(&message);
                true
            }
            _ => false,
        };
        if let Some(message) = self.pushed_ago(LEVELS_AT) {
            books.prefetch_levels(&message);
        }
        if let Some(message) = self.pushed_ago(LISTS_AT) {
            books.prefetch_lists(&message);
        }
        // The new message is written in place, and the oldest copied out whole, long after
        // its bytes were stored: building a slot on the stack and moving it made every move
        // wait on the byte stores just before it (a store-forwarding stall per message).
        let (at, oldest) = if self.len == DEPTH {
            let oldest = self.slots[self.front];
            let at = self.front;
            self.front = (self.front + 1) % DEPTH;
            (at, Some(oldest))
        } else {
            self.len += 1;
            ((self.front + self.len - 1) % DEPTH, None)
        };
        let slot = &mut self.slots[at];
        slot.bytes[..bytes.len()].copy_from_slice(bytes);
        slot.len = bytes.len() as u8;
        slot.ingest_ns = ingest_ns;
        slot.tracked = tracked;
        Ok(oldest)
    }

    /// The tracked message pushed `ago` pushes before the next one, if held.
    #[inline(always)]
    fn pushed_ago(&self, ago: usize) -> Option<itch::Message<'_>> {
        if self.len < ago {
            return None;
        }
        let slot = &self.slots[(self.front + self.len - ago) % DEPTH];
        slot.tracked
            .then(|| itch::parse(slot.bytes()).ok())
            .flatten()
    }

    /// Takes the oldest message held.
    #[inline]
    pub fn pop(&mut self) -> Option<Slot> {
        if self.len == 0 {
            return None;
        }
        let oldest = self.slots[self.front];
        self.front = (self.front + 1) % DEPTH;
        self.len -= 1;
        Some(oldest)
    }

    /// True when no message is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Held {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::BooksConfig;
    use crate::feed::itch::Side;
    use crate::feed::itch::encode::{self, EncHeader};

    #[test]
    fn messages_come_back_whole_and_in_order() {
        let config = BooksConfig {
            max_orders: 64,
            max_levels: 64,
            max_levels_per_side: 8,
            max_symbols: 4,
        };
        let books = Books::new(config, None).unwrap();
        let h = EncHeader {
            stock_locate: 1,
            tracking: 0,
            timestamp: 1,
        };
        // adds and deletes of varying lengths, so a slot reused for a shorter message must
        // not show the longer one's tail
        let frames: Vec<Vec<u8>> = (0..40u64)
            .map(|r| match r % 2 {
                0 => encode::add_order(h, r, Side::Buy, 1, encode::stock("A"), 100, None),
                _ => encode::order_delete(h, r - 1).to_vec(),
            })
            .collect();
        let mut held = Held::new();
        let mut out = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            if let Some(slot) = held.push(frame, i as u64, &books, |_| true).unwrap() {
                out.push((slot.bytes().to_vec(), slot.ingest_ns));
            }
        }
        assert_eq!(out.len(), 40 - DEPTH);
        while let Some(slot) = held.pop() {
            out.push((slot.bytes().to_vec(), slot.ingest_ns));
        }
        assert!(held.is_empty());
        let expected: Vec<(Vec<u8>, u64)> = frames.into_iter().zip(0..).collect();
        assert_eq!(out, expected);
        assert!(
            held.push(&[0; MAX_MESSAGE_LEN + 1], 0, &books, |_| true)
                .is_err()
        );
    }
}
