//! MoldUDP64: the UDP framing of NASDAQ's live ITCH feed.
//!
//! A packet is a 20-byte header — `session(10) | sequence u64 BE | count u16 BE` — then `count`
//! message blocks, each `u16 BE length | message`. `sequence` numbers the packet's first
//! message; the session's first message is 1. A count of 0 is a heartbeat (its sequence is
//! the next one expected) and `0xFFFF` ends the session.
//!
//! [`Packet`] reads a packet without copying ([`Packet::validate`] checks that its blocks are
//! exactly the `count` it declares), [`encode_packet`] and friends write one, and
//! [`SequenceTracker`] turns each packet's `(sequence, count)` into facts: in order, a gap, a
//! duplicate, a partial overlap.
//!
//! The tracker believes every header it is given, so a receiver must not give it one stray
//! datagram: a packet whose blocks do not match its count (it would move the sequence by the
//! count), a sequence far ahead (every later real packet would be a duplicate, freezing the
//! feed), another session (a restart that wipes the books). The receiver's rules —
//! validate the whole packet first, believe a jump beyond a plausibility window
//! ([`SequenceTracker::is_plausible`]) or another session only once a next packet continues it —
//! are in `source::mold_receiver`.
//!
//! ```
//! use dataplane::feed::moldudp64::{Observation, Packet, SequenceTracker, encode_packet};
//!
//! let mut buf = Vec::new();
//! encode_packet(b"SESSION001", 1, &[b"first", b"second"], &mut buf).unwrap();
//! let packet = Packet::parse(&buf).unwrap();
//! let messages: Vec<&[u8]> = packet.messages().map(Result::unwrap).collect();
//! assert_eq!(messages, [&b"first"[..], &b"second"[..]]);
//!
//! let mut tracker = SequenceTracker::new();
//! assert_eq!(tracker.observe(packet.sequence(), packet.count()), Observation::InOrder);
//! assert_eq!(tracker.next_expected(), 3);
//! assert_eq!(tracker.observe(5, 1), Observation::Gap { first_missing: 3, missing: 2 });
//! ```

use std::fmt;
use std::iter::FusedIterator;

/// Size of the packet header.
pub const HEADER_LEN: usize = 20;

/// The `count` that marks the end of a session.
pub const END_OF_SESSION: u16 = 0xFFFF;

/// The most messages one packet can carry (`0xFFFF` is reserved for end of session).
pub const MAX_MESSAGES: usize = END_OF_SESSION as usize - 1;

/// A malformed MoldUDP64 packet, or a packet that cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoldError {
    /// Fewer bytes than the 20-byte header.
    #[error("packet of {len} bytes is shorter than the 20-byte MoldUDP64 header")]
    TooShort {
        /// The packet's length.
        len: usize,
    },
    /// A message block runs past the end of the packet.
    #[error(
        "message block {index} at offset {offset} needs {needed} bytes but only {available} \
         remain in the packet (truncated datagram?)"
    )]
    BlockTruncated {
        /// The block's index in the packet (0-based).
        index: u16,
        /// The block's offset from the start of the packet.
        offset: usize,
        /// The block's size, length prefix included (2 if the prefix itself is cut).
        needed: usize,
        /// Bytes left in the packet from `offset`.
        available: usize,
    },
    /// The packet ends cleanly after fewer blocks than its header declares.
    #[error("packet header declares {declared} messages but the packet holds only {found}")]
    CountMismatch {
        /// The header's count.
        declared: u16,
        /// The whole blocks present.
        found: u16,
    },
    /// Bytes follow the last declared block (or follow the header of a heartbeat or an
    /// end-of-session packet).
    #[error("{len} unexpected bytes at offset {offset} after the packet's declared messages")]
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
        /// How many there are.
        len: usize,
    },
    /// [`encode_packet`] was given more than [`MAX_MESSAGES`] messages.
    #[error("{count} messages do not fit one packet (at most 65534); split them")]
    TooManyMessages {
        /// The number of messages given.
        count: usize,
    },
    /// [`encode_packet`] was given a message longer than `u16::MAX` bytes.
    #[error("message {index} is {len} bytes long; a MoldUDP64 block holds at most 65535")]
    MessageTooLong {
        /// The message's index in the slice given.
        index: usize,
        /// Its length.
        len: usize,
    },
}

/// What a packet carries, from its `count` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// One or more messages (`count` in `1..=0xFFFE`).
    Messages,
    /// No messages (`count == 0`); `sequence` is the next sequence number expected.
    Heartbeat,
    /// The session is over (`count == 0xFFFF`); `sequence` is one past its last message.
    EndOfSession,
}

/// One MoldUDP64 packet, borrowed from the datagram.
#[derive(Clone, Copy)]
pub struct Packet<'a> {
    session: &'a [u8; 10],
    sequence: u64,
    count: u16,
    /// The bytes after the header.
    blocks: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Reads the header of `datagram`. The message blocks are checked lazily by
    /// [`Packet::messages`].
    ///
    /// # Errors
    /// [`MoldError::TooShort`] if `datagram` is shorter than the 20-byte header.
    pub fn parse(datagram: &'a [u8]) -> Result<Packet<'a>, MoldError> {
        let too_short = MoldError::TooShort {
            len: datagram.len(),
        };
        let (session, rest) = datagram.split_first_chunk::<10>().ok_or(too_short)?;
        let (sequence, rest) = rest.split_first_chunk::<8>().ok_or(too_short)?;
        let (count, blocks) = rest.split_first_chunk::<2>().ok_or(too_short)?;
        Ok(Packet {
            session,
            sequence: u64::from_be_bytes(*sequence),
            count: u16::from_be_bytes(*count),
            blocks,
        })
    }

    /// The session name, ten alpha characters.
    #[inline]
    pub fn session(&self) -> &'a [u8; 10] {
        self.session
    }

    /// Sequence number of the first message (of the next expected one, for a heartbeat or an
    /// end of session).
    #[inline]
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The raw `count` field (0 heartbeat, `0xFFFF` end of session).
    #[inline]
    pub fn count(&self) -> u16 {
        self.count
    }

    /// What the packet carries.
    #[inline]
    pub fn kind(&self) -> PacketKind {
        match self.count {
            0 => PacketKind::Heartbeat,
            END_OF_SESSION => PacketKind::EndOfSession,
            _ => PacketKind::Messages,
        }
    }

    /// The number of messages the packet declares: `count`, or 0 for an end of session.
    #[inline]
    pub fn message_count(&self) -> u16 {
        if self.count == END_OF_SESSION {
            0
        } else {
            self.count
        }
    }

    /// The sequence number after this packet's messages.
    #[inline]
    pub fn next_sequence(&self) -> u64 {
        self.sequence
            .saturating_add(u64::from(self.message_count()))
    }

    /// Checks that the blocks after the header are exactly the `count` whole messages the
    /// header declares (none for a heartbeat or an end of session).
    ///
    /// A receiver checks the whole packet before believing its header: a packet whose count
    /// disagrees with its contents says nothing trustworthy about sequence numbers.
    ///
    /// # Errors
    /// The first of [`MoldError::BlockTruncated`], [`MoldError::CountMismatch`] or
    /// [`MoldError::TrailingBytes`] that [`Packet::messages`] would yield.
    pub fn validate(&self) -> Result<(), MoldError> {
        self.messages().try_for_each(|m| m.map(drop))
    }

    /// The message blocks, in order; message `i` has sequence number `sequence() + i`.
    ///
    /// Yields one error and ends if a block runs past the packet
    /// ([`MoldError::BlockTruncated`]), the packet ends early ([`MoldError::CountMismatch`])
    /// or bytes follow the last block ([`MoldError::TrailingBytes`]). A zero-length block is
    /// yielded as an empty message, so the sequence numbering stays right.
    #[inline]
    pub fn messages(&self) -> Messages<'a> {
        Messages {
            rest: self.blocks,
            offset: HEADER_LEN,
            index: 0,
            declared: self.message_count(),
            done: false,
        }
    }
}

impl fmt::Debug for Packet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field(
                "session",
                &format_args!("\"{}\"", self.session.escape_ascii()),
            )
            .field("sequence", &self.sequence)
            .field("count", &self.count)
            .field("kind", &self.kind())
            .field("block_bytes", &self.blocks.len())
            .finish()
    }
}

/// Iterator over a packet's message blocks; see [`Packet::messages`].
#[derive(Clone, Debug)]
pub struct Messages<'a> {
    rest: &'a [u8],
    offset: usize,
    index: u16,
    declared: u16,
    done: bool,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<&'a [u8], MoldError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.index == self.declared {
            self.done = true;
            return (!self.rest.is_empty()).then_some(Err(MoldError::TrailingBytes {
                offset: self.offset,
                len: self.rest.len(),
            }));
        }
        if self.rest.is_empty() {
            self.done = true;
            return Some(Err(MoldError::CountMismatch {
                declared: self.declared,
                found: self.index,
            }));
        }
        let truncated = |needed| MoldError::BlockTruncated {
            index: self.index,
            offset: self.offset,
            needed,
            available: self.rest.len(),
        };
        let Some((prefix, body)) = self.rest.split_first_chunk::<2>() else {
            self.done = true;
            return Some(Err(truncated(2)));
        };
        let len = usize::from(u16::from_be_bytes(*prefix));
        let Some((message, rest)) = body.split_at_checked(len) else {
            self.done = true;
            return Some(Err(truncated(2 + len)));
        };
        self.rest = rest;
        self.offset += 2 + len;
        self.index += 1;
        Some(Ok(message))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            // The declared messages left, plus possibly one error.
            let left = usize::from(self.declared - self.index);
            (left.min(1), Some(left + 1))
        }
    }
}

impl FusedIterator for Messages<'_> {}

/// Appends to `out` one packet carrying `messages`, the first numbered `sequence`.
///
/// An empty `messages` makes a heartbeat. On error `out` is left as it was.
///
/// # Errors
/// [`MoldError::TooManyMessages`] for more than [`MAX_MESSAGES`] messages,
/// [`MoldError::MessageTooLong`] for a message longer than `u16::MAX` bytes.
pub fn encode_packet(
    session: &[u8; 10],
    sequence: u64,
    messages: &[&[u8]],
    out: &mut Vec<u8>,
) -> Result<(), MoldError> {
    let count = u16::try_from(messages.len())
        .ok()
        .filter(|&c| c != END_OF_SESSION)
        .ok_or(MoldError::TooManyMessages {
            count: messages.len(),
        })?;
    let mut body_len = 0;
    for (index, m) in messages.iter().enumerate() {
        if u16::try_from(m.len()).is_err() {
            return Err(MoldError::MessageTooLong {
                index,
                len: m.len(),
            });
        }
        body_len += 2 + m.len();
    }
    out.reserve(HEADER_LEN + body_len);
    write_header(session, sequence, count, out);
    for m in messages {
        // Lengths were checked above.
        let len = u16::try_from(m.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(m);
    }
    Ok(())
}

/// Appends a heartbeat: no messages, `next_sequence` the next sequence number to be sent.
pub fn encode_heartbeat(session: &[u8; 10], next_sequence: u64, out: &mut Vec<u8>) {
    write_header(session, next_sequence, 0, out);
}

/// Appends an end-of-session packet; `next_sequence` is one past the session's last message.
pub fn encode_end_of_session(session: &[u8; 10], next_sequence: u64, out: &mut Vec<u8>) {
    write_header(session, next_sequence, END_OF_SESSION, out);
}

/// Appends a retransmission request: `count` messages of `session` from `first`. It has the
/// layout of a packet header (`session(10) | first u64 BE | count u16 BE`, 20 bytes), sent to
/// the request server, which answers with ordinary packets carrying those messages.
pub fn encode_request(session: &[u8; 10], first: u64, count: u16, out: &mut Vec<u8>) {
    write_header(session, first, count, out);
}

/// A retransmission request read by a request server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPacket {
    /// The session asked about.
    pub session: [u8; 10],
    /// The first sequence number asked for.
    pub first: u64,
    /// How many messages.
    pub count: u16,
}

impl RequestPacket {
    /// Reads a request: exactly 20 bytes.
    ///
    /// # Errors
    /// [`MoldError::TooShort`] or [`MoldError::TrailingBytes`] for any other length.
    pub fn parse(datagram: &[u8]) -> Result<RequestPacket, MoldError> {
        let packet = Packet::parse(datagram)?;
        if datagram.len() > HEADER_LEN {
            return Err(MoldError::TrailingBytes {
                offset: HEADER_LEN,
                len: datagram.len() - HEADER_LEN,
            });
        }
        Ok(RequestPacket {
            session: *packet.session(),
            first: packet.sequence(),
            count: packet.count(),
        })
    }
}

fn write_header(session: &[u8; 10], sequence: u64, count: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(session);
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
}

/// What one packet's sequence numbers say, relative to what came before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Observation {
    /// The packet starts exactly at the next expected sequence number: process it all.
    InOrder,
    /// Messages `first_missing .. first_missing + missing` were skipped. The packet itself
    /// (if it carries messages) follows the gap and is new; the tracker has moved past it.
    Gap {
        /// Sequence number of the first missing message.
        first_missing: u64,
        /// How many are missing.
        missing: u64,
    },
    /// Every message in the packet was seen before: drop it.
    Duplicate,
    /// The packet starts before the next expected number but runs past it: skip its first
    /// `skip` messages, process the rest (from sequence `new_from`).
    Overlap {
        /// Sequence number of the first new message.
        new_from: u64,
        /// How many of the packet's leading messages were already seen.
        skip: u16,
    },
    /// A heartbeat confirming that nothing was missed (or an old, reordered heartbeat).
    Heartbeat,
    /// The session ended. `missing` messages between the last one seen and the end were never
    /// received (0 normally).
    EndOfSession {
        /// Messages lost just before the end, from the old `next_expected`.
        missing: u64,
    },
}

/// Tracks a MoldUDP64 session's sequence numbers from each packet's `(sequence, count)`.
///
/// It starts expecting sequence 1, as a MoldUDP64 session numbers its first message 1, so a
/// receiver that joins late sees its first packet as a [`Observation::Gap`] from 1 — which is
/// the truth: those messages are missing and only a snapshot or a re-request recovers them.
/// Use [`SequenceTracker::starting_at`] after such a recovery.
///
/// The tracker only reports; counting gaps and duplicates, and re-requesting, is the caller's
/// job. A heartbeat whose sequence is ahead reveals lost messages and is reported as a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceTracker {
    next: u64,
}

impl Default for SequenceTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl SequenceTracker {
    /// A tracker expecting sequence 1, the start of a session.
    pub const fn new() -> Self {
        SequenceTracker { next: 1 }
    }

    /// A tracker expecting `next` (after a snapshot, or joining a session in progress).
    pub const fn starting_at(next: u64) -> Self {
        SequenceTracker { next }
    }

    /// The next sequence number expected.
    #[inline]
    pub const fn next_expected(&self) -> u64 {
        self.next
    }

    /// Whether a packet starting at `sequence` lies within `window` messages ahead of the next
    /// expected one. Packets behind (duplicates, overlaps) are always plausible: they cannot
    /// move the tracker backwards.
    #[inline]
    pub const fn is_plausible(&self, sequence: u64, window: u64) -> bool {
        sequence <= self.next.saturating_add(window)
    }

    /// Classifies a packet from its header fields and advances past it.
    #[inline]
    pub fn observe(&mut self, sequence: u64, count: u16) -> Observation {
        match count {
            0 => {
                if sequence > self.next {
                    self.gap_to(sequence)
                } else {
                    Observation::Heartbeat
                }
            }
            END_OF_SESSION => {
                let missing = sequence.saturating_sub(self.next);
                self.next = self.next.max(sequence);
                Observation::EndOfSession { missing }
            }
            _ => {
                let end = sequence.saturating_add(u64::from(count));
                if sequence == self.next {
                    self.next = end;
                    Observation::InOrder
                } else if sequence > self.next {
                    let gap = self.gap_to(sequence);
                    self.next = end;
                    gap
                } else if end <= self.next {
                    Observation::Duplicate
                } else {
                    let new_from = self.next;
                    // `sequence < new_from < sequence + count`, so the difference fits.
                    let skip = u16::try_from(new_from - sequence).unwrap_or(count);
                    self.next = end;
                    Observation::Overlap { new_from, skip }
                }
            }
        }
    }

    /// Reports the messages from `next` up to `sequence` as missing and moves to `sequence`.
    fn gap_to(&mut self, sequence: u64) -> Observation {
        let gap = Observation::Gap {
            first_missing: self.next,
            missing: sequence - self.next,
        };
        self.next = sequence;
        gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &[u8; 10] = b"0000012345";

    fn packet(sequence: u64, messages: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_packet(SESSION, sequence, messages, &mut out).expect("encodable");
        out
    }

    #[test]
    fn feed_mold_round_trip_messages() {
        let bytes = packet(42, &[b"abc", b"", &[9; 100]]);
        assert_eq!(bytes.len(), 20 + 5 + 2 + 102);
        let p = Packet::parse(&bytes).expect("valid");
        assert_eq!(p.session(), SESSION);
        assert_eq!(p.sequence(), 42);
        assert_eq!(p.count(), 3);
        assert_eq!(p.kind(), PacketKind::Messages);
        assert_eq!(p.message_count(), 3);
        assert_eq!(p.next_sequence(), 45);
        let got: Vec<_> = p.messages().collect();
        assert_eq!(
            got,
            vec![Ok(&b"abc"[..]), Ok(&b""[..]), Ok(&[9u8; 100][..])]
        );
    }

    #[test]
    fn feed_mold_header_layout_is_big_endian() {
        let bytes = packet(0x0102_0304_0506_0708, &[b"x"]);
        assert_eq!(&bytes[..10], SESSION);
        assert_eq!(bytes[10..18], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(bytes[18..20], [0, 1]);
        assert_eq!(bytes[20..], [0, 1, b'x']);
    }

    #[test]
    fn feed_mold_parses_hand_built_packet() {
        let mut bytes = b"SESSIONABC".to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x01, 0x00]);
        bytes.extend_from_slice(&[0, 2, 0, 1, b'S', 0, 2, b'h', b'i']);
        let p = Packet::parse(&bytes).expect("valid");
        assert_eq!(p.session(), b"SESSIONABC");
        assert_eq!((p.sequence(), p.count()), (256, 2));
        let got: Vec<_> = p.messages().collect();
        assert_eq!(got, vec![Ok(&b"S"[..]), Ok(&b"hi"[..])]);
    }

    #[test]
    fn feed_mold_too_short() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::parse(&vec![0; len]).unwrap_err(),
                MoldError::TooShort { len }
            );
        }
        assert!(Packet::parse(&[0; HEADER_LEN]).is_ok());
    }

    #[test]
    fn feed_mold_heartbeat_and_end_of_session() {
        let mut hb = Vec::new();
        encode_heartbeat(SESSION, 7, &mut hb);
        let p = Packet::parse(&hb).expect("valid");
        assert_eq!(
            (p.kind(), p.sequence(), p.count()),
            (PacketKind::Heartbeat, 7, 0)
        );
        assert_eq!(p.next_sequence(), 7);
        assert_eq!(p.messages().next(), None);

        let mut eos = Vec::new();
        encode_end_of_session(SESSION, 9, &mut eos);
        let p = Packet::parse(&eos).expect("valid");
        assert_eq!((p.kind(), p.count()), (PacketKind::EndOfSession, 0xFFFF));
        assert_eq!((p.message_count(), p.next_sequence()), (0, 9));
        assert_eq!(p.messages().next(), None);
    }

    #[test]
    fn feed_mold_block_past_the_end_is_an_error() {
        let mut bytes = packet(1, &[b"abc", b"defg"]);
        bytes.truncate(bytes.len() - 1);
        let p = Packet::parse(&bytes).expect("header is fine");
        let mut it = p.messages();
        assert_eq!(it.next(), Some(Ok(&b"abc"[..])));
        assert_eq!(
            it.next(),
            Some(Err(MoldError::BlockTruncated {
                index: 1,
                offset: 25,
                needed: 6,
                available: 5
            }))
        );
        assert_eq!(it.next(), None);
    }

    #[test]
    fn feed_mold_cut_length_prefix_is_an_error() {
        let mut bytes = packet(1, &[b"abc", b"d"]);
        bytes.truncate(26);
        let p = Packet::parse(&bytes).expect("header is fine");
        let got: Vec<_> = p.messages().collect();
        assert_eq!(
            got,
            vec![
                Ok(&b"abc"[..]),
                Err(MoldError::BlockTruncated {
                    index: 1,
                    offset: 25,
                    needed: 2,
                    available: 1
                })
            ]
        );
    }

    #[test]
    fn feed_mold_count_mismatch_is_detected() {
        let mut bytes = packet(1, &[b"abc"]);
        bytes[19] = 3; // declares 3, holds 1
        let got: Vec<_> = Packet::parse(&bytes).expect("header").messages().collect();
        assert_eq!(
            got,
            vec![
                Ok(&b"abc"[..]),
                Err(MoldError::CountMismatch {
                    declared: 3,
                    found: 1
                })
            ]
        );

        let mut bytes = packet(1, &[b"abc", b"de"]);
        bytes[19] = 1; // declares 1, holds 2
        let got: Vec<_> = Packet::parse(&bytes).expect("header").messages().collect();
        assert_eq!(
            got,
            vec![
                Ok(&b"abc"[..]),
                Err(MoldError::TrailingBytes { offset: 25, len: 4 })
            ]
        );
    }

    #[test]
    fn feed_mold_heartbeat_with_payload_is_flagged() {
        let mut bytes = Vec::new();
        encode_heartbeat(SESSION, 1, &mut bytes);
        bytes.extend_from_slice(&[0, 1, b'x']);
        let got: Vec<_> = Packet::parse(&bytes).expect("header").messages().collect();
        assert_eq!(
            got,
            vec![Err(MoldError::TrailingBytes { offset: 20, len: 3 })]
        );
    }

    #[test]
    fn feed_mold_encode_rejects_what_cannot_be_framed() {
        let mut out = vec![1, 2];
        let big = vec![0u8; 65_536];
        assert_eq!(
            encode_packet(SESSION, 1, &[b"ok", &big], &mut out),
            Err(MoldError::MessageTooLong {
                index: 1,
                len: 65_536
            })
        );
        let many: Vec<&[u8]> = vec![b"x"; MAX_MESSAGES + 1];
        assert_eq!(
            encode_packet(SESSION, 1, &many, &mut out),
            Err(MoldError::TooManyMessages { count: 65_535 })
        );
        assert_eq!(out, [1, 2], "output untouched on error");
        encode_packet(SESSION, 1, &many[..MAX_MESSAGES], &mut out).expect("fits");
        let p = Packet::parse(&out[2..]).expect("valid");
        assert_eq!(p.count(), 0xFFFE);
        assert_eq!(p.messages().filter(Result::is_ok).count(), MAX_MESSAGES);
    }

    #[test]
    fn feed_mold_encode_appends() {
        let mut out = Vec::new();
        encode_heartbeat(SESSION, 1, &mut out);
        encode_packet(SESSION, 1, &[b"a"], &mut out).expect("fits");
        assert_eq!(out.len(), 20 + 23);
        assert_eq!(Packet::parse(&out[20..]).map(|p| p.count()), Ok(1));
    }

    #[test]
    fn feed_mold_tracker_starts_at_one() {
        let mut t = SequenceTracker::new();
        assert_eq!(t.next_expected(), 1);
        assert_eq!(t.observe(1, 3), Observation::InOrder);
        assert_eq!(t.next_expected(), 4);
        assert_eq!(t.observe(4, 1), Observation::InOrder);
        assert_eq!(t.next_expected(), 5);
        assert_eq!(SequenceTracker::default(), SequenceTracker::new());
    }

    #[test]
    fn feed_mold_tracker_late_join_is_a_gap_from_one() {
        let mut t = SequenceTracker::new();
        assert_eq!(
            t.observe(1_000, 2),
            Observation::Gap {
                first_missing: 1,
                missing: 999
            }
        );
        assert_eq!(t.next_expected(), 1_002);

        let mut t = SequenceTracker::starting_at(1_000);
        assert_eq!(t.observe(1_000, 2), Observation::InOrder);
    }

    #[test]
    fn feed_mold_tracker_gap_reports_first_missing_and_count() {
        let mut t = SequenceTracker::starting_at(10);
        assert_eq!(
            t.observe(15, 3),
            Observation::Gap {
                first_missing: 10,
                missing: 5
            }
        );
        assert_eq!(t.next_expected(), 18);
        assert_eq!(t.observe(18, 1), Observation::InOrder);
    }

    #[test]
    fn feed_mold_tracker_duplicates() {
        let mut t = SequenceTracker::starting_at(1);
        assert_eq!(t.observe(1, 5), Observation::InOrder);
        assert_eq!(t.observe(1, 5), Observation::Duplicate);
        assert_eq!(t.observe(3, 3), Observation::Duplicate);
        assert_eq!(t.observe(0, 1), Observation::Duplicate);
        assert_eq!(t.next_expected(), 6);
    }

    #[test]
    fn feed_mold_tracker_overlap_says_how_many_to_skip() {
        let mut t = SequenceTracker::starting_at(1);
        assert_eq!(t.observe(1, 5), Observation::InOrder);
        assert_eq!(
            t.observe(4, 4),
            Observation::Overlap {
                new_from: 6,
                skip: 2
            }
        );
        assert_eq!(t.next_expected(), 8);
    }

    #[test]
    fn feed_mold_tracker_heartbeats_carry_next_expected() {
        let mut t = SequenceTracker::starting_at(1);
        assert_eq!(t.observe(1, 2), Observation::InOrder);
        assert_eq!(t.observe(3, 0), Observation::Heartbeat);
        assert_eq!(t.observe(2, 0), Observation::Heartbeat, "stale heartbeat");
        assert_eq!(t.next_expected(), 3);
        assert_eq!(
            t.observe(6, 0),
            Observation::Gap {
                first_missing: 3,
                missing: 3
            },
            "heartbeat ahead reveals lost messages"
        );
        assert_eq!(t.next_expected(), 6);
        assert_eq!(t.observe(6, 1), Observation::InOrder);
    }

    #[test]
    fn feed_mold_tracker_end_of_session() {
        let mut t = SequenceTracker::starting_at(1);
        assert_eq!(t.observe(1, 2), Observation::InOrder);
        assert_eq!(
            t.observe(3, END_OF_SESSION),
            Observation::EndOfSession { missing: 0 }
        );
        assert_eq!(t.next_expected(), 3);

        let mut t = SequenceTracker::starting_at(1);
        assert_eq!(
            t.observe(4, END_OF_SESSION),
            Observation::EndOfSession { missing: 3 }
        );
        assert_eq!(t.next_expected(), 4);
    }

    #[test]
    fn feed_mold_validate_checks_the_whole_packet() {
        assert_eq!(
            Packet::parse(&packet(1, &[b"a", b"bc"])).map(|p| p.validate()),
            Ok(Ok(()))
        );
        let mut overrun = packet(1, &[b"a", b"b", b"c"]);
        overrun[18..20].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(
            Packet::parse(&overrun).map(|p| p.validate()),
            Ok(Err(MoldError::CountMismatch {
                declared: 1000,
                found: 3
            }))
        );
        let mut trailing = packet(1, &[b"a", b"b"]);
        trailing[19] = 1;
        assert!(matches!(
            Packet::parse(&trailing).map(|p| p.validate()),
            Ok(Err(MoldError::TrailingBytes { .. }))
        ));
        let mut cut = packet(1, &[b"abc"]);
        cut.pop();
        assert!(matches!(
            Packet::parse(&cut).map(|p| p.validate()),
            Ok(Err(MoldError::BlockTruncated { .. }))
        ));
        let mut eos = Vec::new();
        encode_end_of_session(SESSION, 5, &mut eos);
        assert_eq!(Packet::parse(&eos).map(|p| p.validate()), Ok(Ok(())));
    }

    #[test]
    fn feed_mold_tracker_plausibility_window() {
        let t = SequenceTracker::starting_at(100);
        assert!(t.is_plausible(1, 10), "behind is always plausible");
        assert!(t.is_plausible(110, 10));
        assert!(!t.is_plausible(111, 10));
        assert!(!t.is_plausible(1 << 62, 1_000_000));
        let end = SequenceTracker::starting_at(u64::MAX - 1);
        assert!(end.is_plausible(u64::MAX, u64::MAX), "no overflow");
    }

    #[test]
    fn feed_mold_tracker_never_overflows() {
        let mut t = SequenceTracker::starting_at(u64::MAX - 1);
        assert_eq!(t.observe(u64::MAX - 1, 10), Observation::InOrder);
        assert_eq!(t.next_expected(), u64::MAX);
        assert_eq!(t.observe(u64::MAX, 10), Observation::InOrder);
        assert_eq!(
            t.observe(0, END_OF_SESSION),
            Observation::EndOfSession { missing: 0 }
        );
    }
}
