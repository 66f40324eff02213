//! [`Held`]: the shard's last few feed messages, decoded and held back so their records load
//! early (see [`crate::book::lookahead`], the same idea over a file in memory).
//!
//! A source lends a message's bytes only for its callback, so the shard decodes each message
//! once, into an [`Op`] (nothing else of it is kept: no bytes are copied), starts loading its
//! records, and handles it `DEPTH` messages later — or sooner: the shard drains the slots
//! before anything else that must come after them (a gap, a restart, a command) and at the end
//! of any poll that did not fill its batch. So holding back never reorders a message with
//! anything, and delays it past the poll that brought it only while the source has more
//! waiting (the next poll follows at once), by at most `DEPTH` messages.

use crate::book::lookahead::{DEPTH, LEVELS_AT, LISTS_AT, later_steps};
use crate::book::{Books, Op};
use crate::feed::itch;

/// The kind of a record its source decoded (DBN): counted by its source's action when it
/// arrived, never as an ITCH type (no ITCH message starts with this byte and parses).
pub const DECODED: u8 = 0xFF;

/// One held message.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// What it asks of the books; `None` if it did not parse.
    pub op: Option<Op>,
    /// When the shard took it.
    pub ingest_ns: u64,
    /// Its stock locate (0 if it did not parse).
    pub locate: u16,
    /// Its ITCH type byte (0 for an empty message), or [`DECODED`].
    pub kind: u8,
    /// Its stock locate is one the books keep: its records are worth loading.
    tracked: bool,
}

impl Slot {
    const EMPTY: Self = Self {
        op: None,
        ingest_ns: 0,
        locate: 0,
        kind: 0,
        tracked: false,
    };
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

    /// Decodes `bytes` and holds the message back and, if `wanted` says its stock locate is one
    /// the books keep, starts loading its records. The caller handles and pops the oldest
    /// message first when [`Held::is_full`].
    #[inline]
    pub fn push(
        &mut self,
        bytes: &[u8],
        ingest_ns: u64,
        books: &Books<'_>,
        wanted: impl Fn(u16) -> bool,
    ) {
        let mut slot = Slot {
            ingest_ns,
            kind: bytes.first().copied().unwrap_or(0),
            ..Slot::EMPTY
        };
        if let Ok(message) = itch::parse(bytes) {
            slot.op = Some(Op::of(&message));
            slot.locate = message.header().stock_locate;
        }
        self.hold(slot, books, wanted);
    }

    /// Holds back a record its source decoded itself (DBN), for the book of `locate`, as
    /// [`Held::push`] does a message. Its kind is [`DECODED`].
    #[inline]
    pub fn push_decoded(
        &mut self,
        op: Op,
        locate: u16,
        ingest_ns: u64,
        books: &Books<'_>,
        wanted: impl Fn(u16) -> bool,
    ) {
        let slot = Slot {
            op: Some(op),
            ingest_ns,
            locate,
            kind: DECODED,
            tracked: false,
        };
        self.hold(slot, books, wanted);
    }

    #[inline(always)]
    fn hold(&mut self, mut slot: Slot, books: &Books<'_>, wanted: impl Fn(u16) -> bool) {
        if let Some(op) = &slot.op {
            slot.tracked = wanted(slot.locate);
            if slot.tracked {
                books.prefetch(op);
            }
        }
        later_steps(books, self.pushed_ago(LEVELS_AT), self.pushed_ago(LISTS_AT));
        if self.len == DEPTH {
            // the caller did not take the oldest: it is dropped rather than overwritten
            self.pop_front();
        }
        self.slots[(self.front + self.len) % DEPTH] = slot;
        self.len += 1;
    }

    /// True when `DEPTH` messages are held: handle the oldest before pushing another.
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == DEPTH
    }

    /// The oldest message held, in place: read it where it lies (copying a slot out and
    /// reading it back field by field stalls on store forwarding), then [`Held::pop_front`].
    #[inline(always)]
    pub fn front(&self) -> Option<&Slot> {
        (self.len > 0).then(|| &self.slots[self.front])
    }

    /// Forgets the oldest message held.
    #[inline(always)]
    pub fn pop_front(&mut self) {
        if self.len > 0 {
            self.front = (self.front + 1) % DEPTH;
            self.len -= 1;
        }
    }

    /// The op of the tracked message pushed `ago` pushes before the next one, if held.
    #[inline(always)]
    fn pushed_ago(&self, ago: usize) -> Option<&Op> {
        if self.len < ago {
            return None;
        }
        let slot = &self.slots[(self.front + self.len - ago) % DEPTH];
        slot.op.as_ref().filter(|_| slot.tracked)
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
    fn messages_come_back_decoded_and_in_order() {
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
        let frames: Vec<Vec<u8>> = (0..40u64)
            .map(|r| match r % 3 {
                0 => encode::add_order(h, r, Side::Buy, 1, encode::stock("A"), 100, None),
                1 => encode::order_delete(h, r - 1).to_vec(),
                _ => vec![b'A', 1, 2],
            })
            .collect();
        let mut held = Held::new();
        let mut out = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            if held.is_full() {
                out.push(*held.front().unwrap());
                held.pop_front();
            }
            held.push(frame, i as u64, &books, |_| true);
        }
        assert_eq!(out.len(), 40 - DEPTH);
        while let Some(slot) = held.front() {
            out.push(*slot);
            held.pop_front();
        }
        assert!(held.is_empty());
        for (i, (slot, frame)) in out.iter().zip(&frames).enumerate() {
            assert_eq!(slot.ingest_ns, i as u64);
            assert_eq!(slot.kind, frame[0]);
            match crate::feed::itch::parse(frame) {
                Ok(message) => {
                    assert_eq!(slot.op, Some(Op::of(&message)));
                    assert_eq!(slot.locate, 1);
                }
                Err(_) => assert_eq!(slot.op, None),
            }
        }
    }
}
