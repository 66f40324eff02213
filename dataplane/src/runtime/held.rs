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
use crate::book::lookahead::DEPTH;
use crate::feed::itch::{self, MAX_MESSAGE_LEN};

/// One held message.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    bytes: [u8; MAX_MESSAGE_LEN],
    len: u8,
    /// When the shard took it.
    pub ingest_ns: u64,
    /// The order reference whose level is still to prefetch.
    follow: Option<u64>,
}

impl Slot {
    const EMPTY: Self = Self {
        bytes: [0; MAX_MESSAGE_LEN],
        len: 0,
        ingest_ns: 0,
        follow: None,
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

    /// Holds `bytes` back and starts loading its records; returns the oldest message once
    /// `DEPTH` are held (handle it now). `Err(())` for a message too long to hold: drain,
    /// then handle it directly.
    #[inline]
    #[allow(clippy::result_unit_err)]
    pub fn push(
        &mut self,
        bytes: &[u8],
        ingest_ns: u64,
        books: &Books<'_>,
    ) -> Result<Option<Slot>, ()> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(());
        }
        let follow = itch::parse(bytes)
            .ok()
            .and_then(|message| books.prefetch(&message));
        if self.len >= DEPTH / 2
            && let Some(reference) = self.slots[(self.front + self.len - DEPTH / 2) % DEPTH].follow
        {
            books.prefetch_level(reference);
        }
        let mut slot = Slot {
            len: bytes.len() as u8,
            ingest_ns,
            follow,
            ..Slot::EMPTY
        };
        slot.bytes[..bytes.len()].copy_from_slice(bytes);
        if self.len == DEPTH {
            let oldest = std::mem::replace(&mut self.slots[self.front], slot);
            self.front = (self.front + 1) % DEPTH;
            return Ok(Some(oldest));
        }
        self.slots[(self.front + self.len) % DEPTH] = slot;
        self.len += 1;
        Ok(None)
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
