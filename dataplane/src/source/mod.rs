//! Feed sources: where a shard's ITCH messages come from, behind one trait.
//!
//! - [`dbn::DbnSource`]: Databento DBN market-by-order files (plain or zstd), played in order
//!   as one session, as fast as possible or paced by their `ts_event`; records come decoded
//!   ([`FeedEvent::Decoded`]), a group of records (`F_LAST`) never split across polls.
//! - [`file::FileSource`]: a NASDAQ BinaryFILE, as fast as possible or paced (messages per
//!   second, or the file's own timestamps scaled), optionally looping.
//! - [`udp::UdpSource`]: MoldUDP64 packets from one or two non-blocking UDP sockets (lines A
//!   and B), each judged by a [`mold_receiver::Receiver`] (stray datagrams are rejected, never
//!   believed), arbitrated by an [`arbiter::Arbiter`] (each sequence number once, in order,
//!   from whichever line has it first; what every line lost asked of a request server) — the
//!   two together are [`lines::Lines`] — with gaps, duplicates, heartbeats and end of session
//!   reported.
//! - [`memory::MemorySource`]: a scripted feed in memory, released by a gate (tests, benches).
//! - [`simulator::Simulator`]: the [`Generator`](crate::feed::generator::Generator) running
//!   live at a paced rate; the default feed, so the service runs with no input.
//!
//! Every source is polled by its shard's busy loop: [`FeedSource::poll`] never blocks, never
//! allocates after construction, and hands over at most `max` events (messages and the
//! others) per call; what is left is handed over by the next calls, in order. An idle poll
//! is cheap: a clock read for the paced sources, one `recv` for UDP. Paced sources use
//! [`pacer::Pacer`], which catches up after a stall instead of forgetting it (no coordinated
//! omission), and expose the intended time of their next message for latency measurements.
//!
//! Each shard owns a source of its own that reads the *whole* feed; the shard keeps the
//! messages of the stock locates it owns (every ITCH message carries its locate in the
//! header). See `runtime` for why.

pub mod arbiter;
pub mod dbn;
pub mod file;
pub mod lines;
pub mod memory;
pub mod mold_receiver;
pub mod pacer;
pub mod simulator;
pub mod udp;

use crate::book::Op;

/// What a source hands its shard, in feed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEvent<'a> {
    /// One ITCH 5.0 message, unframed (the type byte first).
    Message(&'a [u8]),
    /// One record the source decoded itself (a DBN MBO record), as the op it asks of the book
    /// of `locate`. `action` is the record's action byte (`A`, `C`, `M`, `R`, `T`, `F`, `N`),
    /// counted by the shard, or 0 for an op the source made itself (a directory entry from the
    /// file's symbology, the clear that starts a snapshot), not counted.
    Decoded {
        /// What the record asks of the books.
        op: Op,
        /// The book it is for.
        locate: u16,
        /// The record's action byte.
        action: u8,
    },
    /// Messages were lost upstream: `count` messages from sequence `first` (MoldUDP64) or an
    /// unreadable stretch of a file (`first` and `count` 0: unknown). Every book the shard
    /// keeps is stale from here on.
    Gap {
        /// Sequence number of the first lost message (0 when the source has none).
        first: u64,
        /// How many messages were lost (0 when unknown).
        count: u64,
    },
    /// Messages that were already delivered arrived again and were dropped.
    Duplicate {
        /// How many messages were dropped.
        count: u64,
    },
    /// A frame or packet that could not be decoded (or a datagram that could not be received)
    /// was skipped; the source continues at the next one. `what` names the error for the log.
    Malformed {
        /// A short, static description ("truncated frame", "short packet" …).
        what: &'static str,
    },
    /// A MoldUDP64 heartbeat (nothing was missed).
    Heartbeat,
    /// The MoldUDP64 session ended, or a file that does not loop reached its end.
    EndOfSession,
    /// A looping file source started over: the next messages begin a new day, so books must
    /// be cleared.
    Restart,
    /// Input was refused before any of it reached the books; [`Rejection`] says why. Nothing
    /// else follows from it: a rejection that loses messages is followed by a [`FeedEvent::Gap`].
    Rejected(Rejection),
}

/// Why a source refused input (each is counted by the shard under its own name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A datagram from a sender other than the feed's configured source address.
    ForeignSender,
    /// A MoldUDP64 packet of another session that was never confirmed as the new session.
    ForeignSession,
    /// A MoldUDP64 packet whose sequence number jumped beyond the plausibility window and was
    /// never confirmed by the packets after it.
    ImplausibleSequence,
    /// A file's framing was lost (a frame longer than any ITCH message, or a run of
    /// unparseable frames); the source skipped ahead to where framing is sound again.
    FramingLost,
    /// A DBN record that would rest or move an order at the undefined price (`UNDEF_PRICE`).
    UndefinedPrice,
    /// A DBN add or modify with side `N`: no book side can hold it.
    NoSide,
    /// A DBN record pinbook does not apply: not MBO, a top-of-book or price-level record
    /// (`F_TOB`, `F_MBP`), or an unknown action.
    UnsupportedRecord,
    /// A DBN record for an instrument the file's symbology does not name, or beyond the
    /// configured symbol capacity.
    UnknownInstrument,
}

/// What a source counts itself (a UDP feed's lines and its recovery), as totals since it was
/// made; the shard copies them into its stats. Zero for sources without lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Line A: datagrams received.
    pub a_packets: u64,
    /// Line B: datagrams received.
    pub b_packets: u64,
    /// Line A: messages taken from it because it had them first.
    pub a_first: u64,
    /// Line B: messages taken from it because it had them first.
    pub b_first: u64,
    /// Line A: messages it carried after they had been taken, dropped.
    pub a_late: u64,
    /// Line B: messages it carried after they had been taken, dropped.
    pub b_late: u64,
    /// Line A: messages it skipped (its own gaps).
    pub a_missed: u64,
    /// Line B: messages it skipped (its own gaps).
    pub b_missed: u64,
    /// Retransmission requests sent.
    pub retransmit_requests: u64,
    /// Retransmission requests the socket refused (the server's port closed, no route).
    pub retransmit_send_errors: u64,
    /// Packets received from the retransmission server.
    pub retransmit_packets: u64,
    /// Messages handed over that came from the retransmission server first.
    pub recovered: u64,
    /// Holes given up because the request server did not fill them in time.
    pub timeouts: u64,
    /// Holes given up because a message did not fit the hold.
    pub hold_full: u64,
}

/// The result of one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// `n` events (messages and others) were handed over; poll again at once.
    Events(usize),
    /// Nothing was ready (pacing, or no datagram): the shard may idle.
    Idle,
    /// The source is finished and will never produce again.
    Ended,
}

/// A feed, polled by one shard thread.
pub trait FeedSource: Send {
    /// Hands up to `max` events to `sink`, in feed order, without blocking. Messages are
    /// delivered only through `sink`, borrowed for the call. `now` is the caller's
    /// [`crate::clock::now_ns`] for this poll (the shard reads the clock once per loop
    /// iteration); paced sources release what is due by then.
    fn poll(&mut self, now: u64, max: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> Polled;

    /// True when every poll ends at the end of a group of records (DBN `F_LAST`) whose book
    /// changes must be published together: the shard then applies every record of a poll
    /// before it publishes, instead of holding the last few over to the next poll.
    fn grouped(&self) -> bool {
        false
    }

    /// What the source counted itself so far (see [`FeedStats`]); `None` for a source that
    /// counts nothing of its own (the shard then copies nothing).
    fn feed_stats(&self) -> Option<FeedStats> {
        None
    }

    /// One line for the startup log ("file /data/day.itch at 1000000 msg/s, looping").
    fn describe(&self) -> String;
}
