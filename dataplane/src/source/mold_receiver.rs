//! [`Receiver`]: what a MoldUDP64 receiver believes, without the socket.
//!
//! [`UdpSource`](super::udp::UdpSource) is a socket and a `Receiver`: each datagram (and its
//! sender) goes into [`Receiver::accept`], which decides what it means, and
//! [`Receiver::deliver`] hands the resulting [`FeedEvent`]s over, in feed order, a budget at a
//! time. Being pure, the rules below are tested against a reference model over random streams
//! (see the tests at the end of this file).
//!
//! A datagram is *believed* only if it cannot be a stray: a single datagram from the wrong
//! sender, with a count that disagrees with its contents, from another session or with a
//! far-future sequence number must never move the sequence or wipe the books. The rules, in
//! the order they are checked:
//!
//! | datagram                                                        | outcome                                   |
//! |-----------------------------------------------------------------|-------------------------------------------|
//! | from a sender other than the configured source (`@SOURCE`)      | `Rejected(ForeignSender)`; nothing else   |
//! | shorter than the header, or blocks that do not match its count  | `Malformed`; nothing delivered, sequence not moved |
//! | confirms the held candidate (below)                             | `Restart` if the candidate is of another session, then the candidate's events and messages, then this packet's |
//! | current session, within the window                              | as [`SequenceTracker`] says: messages, `Gap`, `Duplicate`, `Heartbeat`, `EndOfSession`; if it makes progress, a held candidate is dropped first |
//! | current session, beyond the window                              | held as the candidate                     |
//! | another session, no session yet or the current one ended, no candidate held, within the window from 1 | believed at once: `Restart` (unless it is the first session), then its events |
//! | any other packet of another session                             | held as the candidate                     |
//!
//! *The window* ([`ReceiverOptions::window`], default [`DEFAULT_WINDOW`]) is how far ahead of
//! the next expected sequence number a packet (messages, heartbeat or end of session) may start
//! and still be believed on its own.
//!
//! *The candidate* is one packet held aside (copied into a second preallocated buffer). A later
//! packet of the candidate's session that starts in `[candidate end, candidate end + window]`
//! confirms it: a real jump or a real new session keeps going, so nothing is lost, only delayed
//! by one packet. A candidate is dropped, and counted as `Rejected(ImplausibleSequence)` (a
//! jump in the current session, or a first packet beyond the window from 1) or
//! `Rejected(ForeignSession)`, when another candidate replaces it or when the current session
//! makes progress (new messages, or a heartbeat or end of session not behind the next expected
//! number); a duplicate does not count as progress.
//!
//! What is not defended against: a forger who sends the right session with a sequence number
//! inside the window, or two consistent packets; the first session seen (or the first after an
//! end of session) is believed on sight when it starts within the window. The `@SOURCE` filter
//! is the defence against forgers.
//!
//! No allocation after [`Receiver::new`].

use std::fmt;
use std::net::{AddrParseError, IpAddr, SocketAddr};
use std::str::FromStr;

use super::{FeedEvent, Rejection};
use crate::feed::moldudp64::{MoldError, Observation, Packet, PacketKind, SequenceTracker};

/// The default plausibility window, in messages: a million.
///
/// Large enough that genuine loss is believed at once: it is about a second of NASDAQ
/// TotalView at its busiest (a full day is a few hundred million messages), and a real jump
/// beyond it still loses nothing, as it is delivered when the next packet confirms it. Small
/// enough that a random 64-bit sequence number (a corrupt or forged header) lands inside it
/// with a probability of about 5e-14.
pub const DEFAULT_WINDOW: u64 = 1_000_000;

/// The largest UDP payload, so no datagram is ever cut.
pub const DATAGRAM_BUFFER: usize = 64 * 1024;

/// Steps one datagram can queue: a dropped candidate, a restart, then for the candidate and the
/// confirming packet each a gap, a duplicate or end of session, and messages.
const MAX_STEPS: usize = 8;

/// The sender a feed is expected from: an IP address (any port), or an exact address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderFilter {
    /// Datagrams from this IP address, any port.
    Ip(IpAddr),
    /// Datagrams from this IP address and port only.
    Addr(SocketAddr),
}

impl SenderFilter {
    /// Whether a datagram from `from` is admitted. An IPv4 sender seen as an IPv4-mapped IPv6
    /// address (an IPv6 socket) matches its IPv4 form.
    pub fn admits(&self, from: SocketAddr) -> bool {
        let ip = from.ip().to_canonical();
        match *self {
            SenderFilter::Ip(want) => ip == want.to_canonical(),
            SenderFilter::Addr(want) => {
                ip == want.ip().to_canonical() && from.port() == want.port()
            }
        }
    }
}

impl FromStr for SenderFilter {
    type Err = AddrParseError;

    /// `IP:PORT` (`[IPV6]:PORT`) or `IP`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse()
            .map(SenderFilter::Addr)
            .or_else(|_| s.parse().map(SenderFilter::Ip))
    }
}

impl fmt::Display for SenderFilter {
    /// The form [`FromStr`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SenderFilter::Ip(ip) => write!(f, "{ip}"),
            SenderFilter::Addr(addr) => write!(f, "{addr}"),
        }
    }
}

/// How a [`Receiver`] judges datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverOptions {
    /// Only datagrams from this sender are read (`None`: from anyone).
    pub source: Option<SenderFilter>,
    /// How far ahead of the next expected sequence number a packet may start and be believed
    /// without confirmation; see the [module docs](self).
    pub window: u64,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        ReceiverOptions {
            source: None,
            window: DEFAULT_WINDOW,
        }
    }
}

/// Counters of a [`Receiver`] (and its socket), since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams received.
    pub packets: u64,
    /// Bytes received, MoldUDP64 headers included.
    pub bytes: u64,
    /// Messages handed over.
    pub messages: u64,
    /// Messages reported lost in gaps.
    pub missed: u64,
    /// Messages dropped as duplicates.
    pub duplicates: u64,
    /// Malformed packets skipped.
    pub malformed: u64,
    /// Receive calls that failed with an error other than "would block".
    pub receive_errors: u64,
}

/// The header fields of a packet whose blocks were checked.
#[derive(Debug, Clone, Copy)]
struct Header {
    session: [u8; 10],
    sequence: u64,
    count: u16,
    kind: PacketKind,
    /// Messages carried (0 for a heartbeat or an end of session).
    declared: u16,
    /// One past the last message carried.
    next: u64,
}

impl Header {
    fn of(packet: &Packet<'_>) -> Header {
        Header {
            session: *packet.session(),
            sequence: packet.sequence(),
            count: packet.count(),
            kind: packet.kind(),
            declared: packet.message_count(),
            next: packet.next_sequence(),
        }
    }
}

/// Which buffer a queued run of messages is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The datagram just received.
    Current,
    /// The candidate, held aside.
    Held,
}

/// One queued piece of output.
#[derive(Debug, Clone, Copy)]
enum Step {
    Event(FeedEvent<'static>),
    /// The messages of the packet of `len` bytes in `slot`, from index `next`.
    Messages {
        slot: Slot,
        len: usize,
        next: u16,
    },
}

/// The packet held until a later one confirms it (its bytes are in the held buffer).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    header: Header,
    len: usize,
    /// What it is counted as if it is dropped.
    reason: Rejection,
}

/// The MoldUDP64 receiver's state machine; see the [module docs](self).
#[derive(Debug)]
pub struct Receiver {
    options: ReceiverOptions,
    current: Box<[u8]>,
    held: Box<[u8]>,
    candidate: Option<Candidate>,
    tracker: SequenceTracker,
    session: Option<[u8; 10]>,
    /// The current session sent its end of session.
    ended: bool,
    steps: [Step; MAX_STEPS],
    steps_len: usize,
    steps_pos: usize,
    stats: UdpStats,
}

impl Receiver {
    /// A receiver with its two 64 KiB buffers, before any session.
    pub fn new(options: ReceiverOptions) -> Receiver {
        Receiver {
            options,
            current: vec![0; DATAGRAM_BUFFER].into_boxed_slice(),
            held: vec![0; DATAGRAM_BUFFER].into_boxed_slice(),
            candidate: None,
            tracker: SequenceTracker::new(),
            session: None,
            ended: false,
            steps: [Step::Event(FeedEvent::Heartbeat); MAX_STEPS],
            steps_len: 0,
            steps_pos: 0,
            stats: UdpStats::default(),
        }
    }

    /// The options it was made with.
    pub fn options(&self) -> &ReceiverOptions {
        &self.options
    }

    /// The buffer the next datagram is to be received into; then call [`Receiver::accept`].
    pub fn buffer(&mut self) -> &mut [u8] {
        &mut self.current
    }

    /// The first `len` bytes of [`Receiver::buffer`]: a datagram received into it.
    pub fn received(&self, len: usize) -> &[u8] {
        &self.current[..len.min(DATAGRAM_BUFFER)]
    }

    /// The counters so far.
    pub fn stats(&self) -> UdpStats {
        self.stats
    }

    /// The session believed (`None` before the first).
    pub fn session(&self) -> Option<&[u8; 10]> {
        self.session.as_ref()
    }

    /// The next sequence number expected in the session believed.
    pub fn next_expected(&self) -> u64 {
        self.tracker.next_expected()
    }

    /// Whether everything the last datagram caused was handed over; only then may the next one
    /// be received into [`Receiver::buffer`].
    pub fn is_drained(&self) -> bool {
        self.steps_pos == self.steps_len
    }

    /// Whether a packet is held as the candidate (see the [module docs](self)).
    pub fn has_candidate(&self) -> bool {
        self.candidate.is_some()
    }

    /// Takes the datagram of `len` bytes in [`Receiver::buffer`] — a packet of the current
    /// session starting at the next expected number, whose messages the caller already has
    /// from elsewhere — by moving the next expected number to `next`, without looking at its
    /// blocks or queueing anything. Only a caller that knows every number below `next` was
    /// handed over may do this (see `arbiter::Arbiter::skip_delivered`).
    pub fn skip_to(&mut self, next: u64, len: usize) {
        self.steps_len = 0;
        self.steps_pos = 0;
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
        if next > self.tracker.next_expected() {
            self.tracker = SequenceTracker::starting_at(next);
        }
    }

    /// Counts a receive that failed: whatever the datagram held is lost.
    pub fn count_receive_error(&mut self) {
        self.stats.receive_errors += 1;
    }

    /// Copies `datagram` (cut to 64 KiB) into the buffer and accepts it, as a datagram from
    /// `from`.
    pub fn push(&mut self, datagram: &[u8], from: SocketAddr) {
        let len = datagram.len().min(DATAGRAM_BUFFER);
        self.current[..len].copy_from_slice(&datagram[..len]);
        self.accept(len, from);
    }

    /// Judges the datagram of `len` bytes in [`Receiver::buffer`], received from `from`, and
    /// queues what it causes for [`Receiver::deliver`]. Anything still queued from the datagram
    /// before is dropped, so call it only when [`Receiver::is_drained`].
    pub fn accept(&mut self, len: usize, from: SocketAddr) {
        let len = len.min(DATAGRAM_BUFFER);
        self.steps_len = 0;
        self.steps_pos = 0;
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
        if let Some(filter) = self.options.source
            && !filter.admits(from)
        {
            return self.push_step(Step::Event(FeedEvent::Rejected(Rejection::ForeignSender)));
        }
        let header = match Packet::parse(&self.current[..len]).and_then(|p| {
            p.validate()?;
            Ok(Header::of(&p))
        }) {
            Ok(header) => header,
            Err(e) => {
                self.stats.malformed += 1;
                return self.push_step(Step::Event(FeedEvent::Malformed { what: describe(&e) }));
            }
        };
        let window = self.options.window;
        if let Some(candidate) = self.candidate
            && candidate.header.session == header.session
            && header.sequence >= candidate.header.next
            && header.sequence - candidate.header.next <= window
        {
            self.candidate = None;
            if self.session != Some(header.session) {
                self.begin_session(header.session);
            }
            self.classify(candidate.header, Slot::Held, candidate.len);
            return self.classify(header, Slot::Current, len);
        }
        if self.session == Some(header.session) {
            if !self.tracker.is_plausible(header.sequence, window) {
                return self.hold(header, len, Rejection::ImplausibleSequence);
            }
            if self.makes_progress(&header)
                && let Some(dropped) = self.candidate.take()
            {
                self.reject(dropped.reason);
            }
            return self.classify(header, Slot::Current, len);
        }
        let open = self.session.is_none() || self.ended;
        let plausible_from_start = SequenceTracker::new().is_plausible(header.sequence, window);
        if open && plausible_from_start && self.candidate.is_none() {
            self.begin_session(header.session);
            return self.classify(header, Slot::Current, len);
        }
        let reason = if open && !plausible_from_start {
            Rejection::ImplausibleSequence
        } else {
            Rejection::ForeignSession
        };
        self.hold(header, len, reason);
    }

    /// Hands over up to `budget` queued events (messages and others) in order; returns how many.
    #[inline]
    pub fn deliver<F: FnMut(FeedEvent<'_>) + ?Sized>(
        &mut self,
        budget: usize,
        sink: &mut F,
    ) -> usize {
        let mut events = 0;
        while events < budget && self.steps_pos < self.steps_len {
            match self.steps[self.steps_pos] {
                Step::Event(event) => {
                    sink(event);
                    events += 1;
                    self.steps_pos += 1;
                }
                Step::Messages { slot, len, next } => {
                    let buf = match slot {
                        Slot::Current => &self.current[..len],
                        Slot::Held => &self.held[..len],
                    };
                    let mut index = next;
                    let mut finished = true;
                    if let Ok(packet) = Packet::parse(buf) {
                        // `accept` validated every block, so no error can appear here.
                        let mut messages = packet.messages().skip(usize::from(next)).flatten();
                        finished = false;
                        while events < budget {
                            let Some(message) = messages.next() else {
                                finished = true;
                                break;
                            };
                            sink(FeedEvent::Message(message));
                            index += 1;
                            events += 1;
                        }
                        finished |= index == packet.message_count();
                    }
                    self.stats.messages += u64::from(index - next);
                    if finished {
                        self.steps_pos += 1;
                    } else {
                        self.steps[self.steps_pos] = Step::Messages {
                            slot,
                            len,
                            next: index,
                        };
                    }
                }
            }
        }
        events
    }

    fn push_step(&mut self, step: Step) {
        debug_assert!(self.steps_len < MAX_STEPS, "MAX_STEPS covers every case");
        if let Some(slot) = self.steps.get_mut(self.steps_len) {
            *slot = step;
            self.steps_len += 1;
        }
    }

    fn reject(&mut self, why: Rejection) {
        self.push_step(Step::Event(FeedEvent::Rejected(why)));
    }

    /// Whether a plausible packet of the current session shows it alive: new messages, or a
    /// heartbeat or end of session that is not behind.
    fn makes_progress(&self, header: &Header) -> bool {
        let expected = self.tracker.next_expected();
        match header.kind {
            PacketKind::Messages => header.next > expected,
            PacketKind::Heartbeat | PacketKind::EndOfSession => header.sequence >= expected,
        }
    }

    /// Copies the current datagram aside as the candidate; one held before is dropped.
    fn hold(&mut self, header: Header, len: usize, reason: Rejection) {
        if let Some(dropped) = self.candidate.take() {
            self.reject(dropped.reason);
        }
        self.held[..len].copy_from_slice(&self.current[..len]);
        self.candidate = Some(Candidate {
            header,
            len,
            reason,
        });
    }

    /// Believes `session` from now on (a restart of the books, unless it is the first).
    fn begin_session(&mut self, session: [u8; 10]) {
        if self.session.is_some() {
            self.push_step(Step::Event(FeedEvent::Restart));
        }
        self.session = Some(session);
        self.tracker = SequenceTracker::new();
        self.ended = false;
    }

    /// Runs a believed packet of the current session through the tracker and queues its events
    /// and new messages.
    fn classify(&mut self, header: Header, slot: Slot, len: usize) {
        let expected = self.tracker.next_expected();
        let declared = header.declared;
        let mut first_new = 0;
        match self.tracker.observe(header.sequence, header.count) {
            Observation::InOrder => {}
            Observation::Gap {
                first_missing,
                missing,
            } => {
                self.stats.missed += missing;
                self.push_step(Step::Event(FeedEvent::Gap {
                    first: first_missing,
                    count: missing,
                }));
            }
            Observation::Duplicate => {
                first_new = declared;
                self.stats.duplicates += u64::from(declared);
                self.push_step(Step::Event(FeedEvent::Duplicate {
                    count: u64::from(declared),
                }));
            }
            Observation::Overlap { skip, .. } => {
                first_new = skip;
                self.stats.duplicates += u64::from(skip);
                self.push_step(Step::Event(FeedEvent::Duplicate {
                    count: u64::from(skip),
                }));
            }
            Observation::Heartbeat => self.push_step(Step::Event(FeedEvent::Heartbeat)),
            Observation::EndOfSession { missing } => {
                if missing > 0 {
                    self.stats.missed += missing;
                    self.push_step(Step::Event(FeedEvent::Gap {
                        first: expected,
                        count: missing,
                    }));
                }
                self.ended = true;
                self.push_step(Step::Event(FeedEvent::EndOfSession));
            }
        }
        if first_new < declared {
            self.push_step(Step::Messages {
                slot,
                len,
                next: first_new,
            });
        }
    }
}

/// A short, static name for the log.
fn describe(e: &MoldError) -> &'static str {
    match e {
        MoldError::TooShort { .. } => "packet shorter than the MoldUDP64 header",
        MoldError::BlockTruncated { .. } => "message block runs past the end of the packet",
        MoldError::CountMismatch { .. } => "packet holds fewer messages than its header declares",
        MoldError::TrailingBytes { .. } => "bytes after the packet's last message",
        MoldError::TooManyMessages { .. } | MoldError::MessageTooLong { .. } => {
            "packet could not be encoded"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::moldudp64::{encode_end_of_session, encode_heartbeat, encode_packet};

    const A: &[u8; 10] = b"SESSION--A";
    const B: &[u8; 10] = b"SESSION--B";

    /// An owned copy of an event.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Msg(Vec<u8>),
        Gap(u64, u64),
        Dup(u64),
        Malformed,
        Heartbeat,
        End,
        Restart,
        Rejected(Rejection),
    }

    fn owned(e: FeedEvent<'_>) -> Ev {
        match e {
            FeedEvent::Message(m) => Ev::Msg(m.to_vec()),
            FeedEvent::Gap { first, count } => Ev::Gap(first, count),
            FeedEvent::Duplicate { count } => Ev::Dup(count),
            FeedEvent::Malformed { .. } => Ev::Malformed,
            FeedEvent::Heartbeat => Ev::Heartbeat,
            FeedEvent::EndOfSession => Ev::End,
            FeedEvent::Restart => Ev::Restart,
            FeedEvent::Rejected(why) => Ev::Rejected(why),
            FeedEvent::Decoded { .. } => unreachable!("MoldUDP64 carries ITCH bytes"),
        }
    }

    fn sender() -> SocketAddr {
        "127.0.0.1:9000".parse().expect("an address")
    }

    fn packet(session: &[u8; 10], sequence: u64, messages: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_packet(session, sequence, messages, &mut out).expect("encodable");
        out
    }

    fn heartbeat(session: &[u8; 10], next: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_heartbeat(session, next, &mut out);
        out
    }

    fn end(session: &[u8; 10], next: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_end_of_session(session, next, &mut out);
        out
    }

    /// Pushes `datagram` and hands over everything it caused, `budget` events per call.
    fn feed(r: &mut Receiver, datagram: &[u8], from: SocketAddr, budget: usize) -> Vec<Ev> {
        r.push(datagram, from);
        let mut out = Vec::new();
        while !r.is_drained() {
            let n = r.deliver(budget, &mut |e| out.push(owned(e)));
            assert!(n <= budget && n > 0, "{n} events for a budget of {budget}");
        }
        out
    }

    fn window(window: u64) -> Receiver {
        Receiver::new(ReceiverOptions {
            source: None,
            window,
        })
    }

    fn msg(bytes: &[u8]) -> Ev {
        Ev::Msg(bytes.to_vec())
    }

    const IMPLAUSIBLE: Ev = Ev::Rejected(Rejection::ImplausibleSequence);
    const FOREIGN_SESSION: Ev = Ev::Rejected(Rejection::ForeignSession);

    #[test]
    fn receiver_rejects_other_senders() {
        let mut r = Receiver::new(ReceiverOptions {
            source: Some(SenderFilter::Ip("10.0.0.1".parse().expect("ip"))),
            ..ReceiverOptions::default()
        });
        let good: SocketAddr = "10.0.0.1:5000".parse().expect("addr");
        let bad: SocketAddr = "10.0.0.2:5000".parse().expect("addr");
        let p = packet(A, 1, &[b"a"]);
        assert_eq!(
            feed(&mut r, &p, bad, 8),
            [Ev::Rejected(Rejection::ForeignSender)]
        );
        assert_eq!(r.next_expected(), 1);
        assert_eq!(r.session(), None, "a rejected datagram is not looked at");
        assert_eq!(feed(&mut r, &p, good, 8), [msg(b"a")]);
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:1".parse().expect("addr");
        assert!(SenderFilter::Ip("10.0.0.1".parse().expect("ip")).admits(mapped));
    }

    #[test]
    fn receiver_sender_filter_by_port() {
        let filter = SenderFilter::Addr("10.0.0.1:5000".parse().expect("addr"));
        assert!(filter.admits("10.0.0.1:5000".parse().expect("addr")));
        assert!(!filter.admits("10.0.0.1:5001".parse().expect("addr")));
        assert!(!filter.admits("10.0.0.2:5000".parse().expect("addr")));
    }

    #[test]
    fn receiver_sender_filter_parses_and_prints_back() {
        for text in ["10.0.0.1", "10.0.0.1:5000", "::1", "[::1]:5000"] {
            let filter: SenderFilter = text.parse().expect(text);
            assert_eq!(filter.to_string(), text);
        }
        assert!("10.0.0.1:x".parse::<SenderFilter>().is_err());
        assert!("host".parse::<SenderFilter>().is_err());
    }

    #[test]
    fn receiver_count_overrun_is_malformed_and_moves_nothing() {
        let mut r = Receiver::new(ReceiverOptions::default());
        assert_eq!(
            feed(&mut r, &packet(A, 1, &[b"a"]), sender(), 8),
            [msg(b"a")]
        );
        let mut bad = packet(A, 2, &[b"b", b"c", b"d"]);
        bad[18..20].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(feed(&mut r, &bad, sender(), 8), [Ev::Malformed]);
        let mut trailing = packet(A, 2, &[b"b", b"c"]);
        trailing[19] = 1;
        assert_eq!(feed(&mut r, &trailing, sender(), 8), [Ev::Malformed]);
        let mut cut = packet(A, 2, &[b"b", b"c"]);
        cut.pop();
        assert_eq!(feed(&mut r, &cut, sender(), 8), [Ev::Malformed]);
        assert_eq!(feed(&mut r, b"short", sender(), 8), [Ev::Malformed]);
        assert_eq!(
            r.next_expected(),
            2,
            "no malformed packet moved the sequence"
        );
        assert_eq!(r.stats().malformed, 4);
        // If the malformed packet was real, what it carried is a gap once the next one comes.
        assert_eq!(
            feed(&mut r, &packet(A, 5, &[b"e"]), sender(), 8),
            [Ev::Gap(2, 3), msg(b"e")]
        );
    }

    #[test]
    fn receiver_jump_beyond_the_window_is_held_until_continued() {
        let mut r = window(10);
        assert_eq!(
            feed(&mut r, &packet(A, 1, &[b"a"]), sender(), 8),
            [msg(b"a")]
        );
        assert_eq!(
            feed(&mut r, &packet(A, 2, &[b"b"]), sender(), 8),
            [msg(b"b")]
        );
        assert_eq!(
            feed(&mut r, &packet(A, 100, &[b"x", b"y"]), sender(), 8),
            []
        );
        assert_eq!(r.next_expected(), 3, "the jump did not move the sequence");
        assert_eq!(
            feed(&mut r, &packet(A, 105, &[b"z"]), sender(), 2),
            [
                Ev::Gap(3, 97),
                msg(b"x"),
                msg(b"y"),
                Ev::Gap(102, 3),
                msg(b"z")
            ],
            "a real jump loses nothing"
        );
        assert_eq!(r.next_expected(), 106);
        assert_eq!(r.stats().messages, 5);
    }

    #[test]
    fn receiver_jump_within_the_window_is_a_gap_at_once() {
        let mut r = window(10);
        assert_eq!(
            feed(&mut r, &packet(A, 11, &[b"k"]), sender(), 8),
            [Ev::Gap(1, 10), msg(b"k")]
        );
        assert_eq!(
            feed(&mut r, &packet(A, 22, &[b"v"]), sender(), 8),
            [Ev::Gap(12, 10), msg(b"v")]
        );
    }

    #[test]
    fn receiver_noise_jump_is_dropped_when_the_session_goes_on() {
        for noise in [
            packet(A, 1 << 62, &[b"x"]),
            heartbeat(A, 1 << 62),
            end(A, 1 << 40),
        ] {
            let mut r = Receiver::new(ReceiverOptions::default());
            assert_eq!(
                feed(&mut r, &packet(A, 1, &[b"a"]), sender(), 8),
                [msg(b"a")]
            );
            assert_eq!(feed(&mut r, &noise, sender(), 8), []);
            assert_eq!(
                feed(&mut r, &packet(A, 1, &[b"a"]), sender(), 8),
                [Ev::Dup(1)],
                "a duplicate is no progress"
            );
            assert_eq!(
                feed(&mut r, &packet(A, 2, &[b"b"]), sender(), 8),
                [IMPLAUSIBLE, msg(b"b")]
            );
            assert_eq!(feed(&mut r, &heartbeat(A, 3), sender(), 8), [Ev::Heartbeat]);
            assert_eq!(r.next_expected(), 3);
        }
    }

    #[test]
    fn receiver_heartbeat_and_end_far_ahead_need_confirming() {
        let mut r = window(10);
        assert_eq!(
            feed(&mut r, &packet(A, 1, &[b"a"]), sender(), 8),
            [msg(b"a")]
        );
        assert_eq!(feed(&mut r, &heartbeat(A, 50), sender(), 8), []);
        assert_eq!(
            feed(&mut r, &heartbeat(A, 50), sender(), 8),
            [Ev::Gap(2, 48), Ev::Heartbeat]
        );
        assert_eq!(feed(&mut r, &end(A, 500), sender(), 8), []);
        assert_eq!(
            feed(&mut r, &end(A, 500), sender(), 8),
            [Ev::Gap(50, 450), Ev::End, Ev::End]
        );
    }

    #[test]
    fn receiver_a_replaced_candidate_is_counted() {
        let mut r = window(10);
        assert_eq!(
            feed(&mut r, &packet(A, 1, &[b"a"]), sender(), 8),
            [msg(b"a")]
        );
        assert_eq!(feed(&mut r, &packet(A, 1_000, &[b"x"]), sender(), 8), []);
        assert_eq!(
            feed(&mut r, &packet(B, 7, &[b"y"]), sender(), 8),
            [IMPLAUSIBLE]
        );
        assert_eq!(
            feed(&mut r, &packet(A, 5_000, &[b"z"]), sender(), 8),
            [FOREIGN_SESSION]
        );
        assert_eq!(
            feed(&mut r, &packet(A, 2, &[b"b"]), sender(), 8),
            [IMPLAUSIBLE, msg(b"b")]
        );
    }

    #[test]
    fn receiver_another_session_is_believed_once_continued() {
        let mut r = Receiver::new(ReceiverOptions::default());
        assert_eq!(
            feed(&mut r, &packet(A, 1, &[b"a"]), sender(), 8),
            [msg(b"a")]
        );
        assert_eq!(feed(&mut r, &packet(B, 1, &[b"x"]), sender(), 8), []);
        assert_eq!(r.session(), Some(A));
        assert_eq!(
            feed(&mut r, &packet(B, 2, &[b"y"]), sender(), 1),
            [Ev::Restart, msg(b"x"), msg(b"y")]
        );
        assert_eq!((r.session(), r.next_expected()), (Some(B), 3));
        // the old session's stragglers are strays now
        assert_eq!(feed(&mut r, &packet(A, 2, &[b"b"]), sender(), 8), []);
        assert_eq!(
            feed(&mut r, &heartbeat(B, 3), sender(), 8),
            [FOREIGN_SESSION, Ev::Heartbeat]
        );
    }

    #[test]
    fn receiver_a_stray_session_never_restarts() {
        for stray in [
            packet(B, 1, &[b"x"]),
            heartbeat(B, 1),
            end(B, 1),
            packet(B, 1 << 50, &[b"x"]),
        ] {
            let mut r = Receiver::new(ReceiverOptions::default());
            assert_eq!(
                feed(&mut r, &packet(A, 1, &[b"a"]), sender(), 8),
                [msg(b"a")]
            );
            assert_eq!(feed(&mut r, &stray, sender(), 8), []);
            assert_eq!(
                feed(&mut r, &packet(A, 2, &[b"b"]), sender(), 8),
                [FOREIGN_SESSION, msg(b"b")]
            );
            assert_eq!(r.session(), Some(A));
        }
    }

    #[test]
    fn receiver_a_new_session_after_the_end_is_believed_at_once() {
        let mut r = window(10);
        assert_eq!(
            feed(&mut r, &packet(A, 1, &[b"a"]), sender(), 8),
            [msg(b"a")]
        );
        assert_eq!(feed(&mut r, &end(A, 2), sender(), 8), [Ev::End]);
        assert_eq!(
            feed(&mut r, &packet(B, 3, &[b"c"]), sender(), 8),
            [Ev::Restart, Ev::Gap(1, 2), msg(b"c")]
        );
        // but not from beyond the window
        assert_eq!(feed(&mut r, &end(B, 4), sender(), 8), [Ev::End]);
        assert_eq!(feed(&mut r, &packet(A, 100, &[b"z"]), sender(), 8), []);
        assert_eq!(
            feed(&mut r, &end(B, 4), sender(), 8),
            [IMPLAUSIBLE, Ev::End]
        );
    }

    #[test]
    fn receiver_first_session_and_late_join() {
        let mut r = window(10);
        assert_eq!(
            feed(&mut r, &packet(A, 5, &[b"e"]), sender(), 8),
            [Ev::Gap(1, 4), msg(b"e")],
            "the first session within the window is believed on sight, without a restart"
        );
        let mut r = window(10);
        assert_eq!(feed(&mut r, &packet(A, 500, &[b"x"]), sender(), 8), []);
        assert_eq!(r.session(), None);
        assert_eq!(
            feed(&mut r, &packet(A, 501, &[b"y"]), sender(), 8),
            [Ev::Gap(1, 499), msg(b"x"), msg(b"y")],
            "a late join loses nothing and restarts nothing"
        );
        assert_eq!(r.session(), Some(A));
    }

    /// The proptest: random genuine streams (one or two sessions, starting at 1, a little
    /// late or far beyond the window) with duplicates, reordering and hostile datagrams mixed
    /// in, against a reference model that is simply told which datagrams are genuine.
    mod model {
        use proptest::prelude::*;

        use super::*;
        use crate::feed::moldudp64::END_OF_SESSION;

        const GENUINE: [&[u8; 10]; 2] = [b"GENUINE000", b"GENUINE001"];

        /// Something done to the stream after one of its packets.
        #[derive(Debug, Clone)]
        enum Perturb {
            /// Re-send a packet that arrived `back` slots before.
            Duplicate(u8),
            /// Swap the two packets that follow.
            Swap,
            /// A packet whose blocks do not match its count (3 kinds).
            Malformed(u8),
            /// A packet of another session.
            Foreign { sequence: u64, count: u8 },
            /// A packet of the current session far ahead (messages, heartbeat or end).
            FarFuture { kind: u8, offset: u32 },
        }

        #[derive(Debug, Clone)]
        struct SessionPlan {
            start: u64,
            /// Messages per packet; 0 is a heartbeat.
            sizes: Vec<u8>,
            ends: u8,
            perturbs: Vec<(u8, Perturb)>,
        }

        fn perturb() -> impl Strategy<Value = Perturb> {
            prop_oneof![
                any::<u8>().prop_map(Perturb::Duplicate),
                Just(Perturb::Swap),
                (0u8..3).prop_map(Perturb::Malformed),
                (1u64..1 << 63, 0u8..5)
                    .prop_map(|(sequence, count)| Perturb::Foreign { sequence, count }),
                (0u8..3, any::<u32>())
                    .prop_map(|(kind, offset)| Perturb::FarFuture { kind, offset }),
            ]
        }

        fn session(
            start: impl Strategy<Value = u64>,
            min_ends: u8,
        ) -> impl Strategy<Value = SessionPlan> {
            (
                start,
                prop::collection::vec(0u8..5, 2..14),
                min_ends..4,
                prop::collection::vec((any::<u8>(), perturb()), 0..8),
            )
                .prop_map(|(start, sizes, ends, perturbs)| SessionPlan {
                    start,
                    sizes,
                    ends,
                    perturbs,
                })
        }

        fn plan() -> impl Strategy<Value = Vec<SessionPlan>> {
            let start = prop_oneof![
                Just(1u64),
                2u64..40,
                (0u64..1000).prop_map(|x| DEFAULT_WINDOW + 2 + x),
            ];
            prop_oneof![
                session(start.clone(), 0).prop_map(|s| vec![s]),
                (session(start, 1), session(Just(1u64), 0)).prop_map(|(a, b)| vec![a, b]),
            ]
        }

        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Hostile {
            Malformed,
            Foreign,
            FarFuture,
        }

        /// A datagram of the stream: genuine (session index, sequence, count), or hostile.
        #[derive(Debug, Clone)]
        enum Arrival {
            Genuine {
                session: usize,
                sequence: u64,
                count: u16,
                bytes: Vec<u8>,
            },
            Hostile(Hostile, Vec<u8>),
        }

        fn genuine_message(session: usize, sequence: u64) -> Vec<u8> {
            let mut m = vec![0, session as u8];
            m.extend_from_slice(&sequence.to_be_bytes());
            m
        }

        /// The datagrams of a plan, in arrival order.
        fn arrivals(plan: &[SessionPlan]) -> Vec<Arrival> {
            let mut out = Vec::new();
            let mut hostiles = 0u64;
            for (k, s) in plan.iter().enumerate() {
                let name = GENUINE[k];
                let mut packets = Vec::new();
                let mut next = s.start;
                for &size in &s.sizes {
                    let messages: Vec<Vec<u8>> = (0..u64::from(size))
                        .map(|i| genuine_message(k, next + i))
                        .collect();
                    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
                    let mut bytes = Vec::new();
                    encode_packet(name, next, &refs, &mut bytes).expect("encodable");
                    packets.push((next, u16::from(size), bytes));
                    next += u64::from(size);
                }
                let non_end = packets.len();
                for _ in 0..s.ends {
                    packets.push((next, END_OF_SESSION, end(name, next)));
                }
                let mut order: Vec<usize> = (0..packets.len()).collect();
                for (after, p) in &s.perturbs {
                    let slot = 1 + usize::from(*after) % (non_end - 1);
                    if matches!(p, Perturb::Swap) && slot + 2 < non_end {
                        order.swap(slot + 1, slot + 2);
                    }
                }
                let genuine = |i: usize| {
                    let (sequence, count, bytes) = packets[i].clone();
                    Arrival::Genuine {
                        session: k,
                        sequence,
                        count,
                        bytes,
                    }
                };
                for (slot, &i) in order.iter().enumerate() {
                    out.push(genuine(i));
                    for (after, p) in &s.perturbs {
                        if slot != 1 + usize::from(*after) % (non_end - 1) {
                            continue;
                        }
                        hostiles += 1;
                        let evil: [&[u8]; 3] = [&[0xEE, 1], &[0xEE, 2], &[0xEE, 3]];
                        out.push(match *p {
                            Perturb::Swap => continue,
                            Perturb::Duplicate(back) => {
                                genuine(order[slot - usize::from(back) % (slot + 1)])
                            }
                            Perturb::Malformed(kind) => {
                                let mut bytes = packet(name, packets[i].0 + 1, &evil);
                                match kind {
                                    0 => bytes[18..20].copy_from_slice(&1000u16.to_be_bytes()),
                                    1 => bytes[19] = 1,
                                    _ => drop(bytes.pop()),
                                }
                                Arrival::Hostile(Hostile::Malformed, bytes)
                            }
                            Perturb::Foreign { sequence, count } => {
                                let mut stray = *b"EVIL000000";
                                stray[4..].copy_from_slice(format!("{hostiles:06}").as_bytes());
                                let bytes = match count {
                                    0 => heartbeat(&stray, sequence),
                                    4 => end(&stray, sequence),
                                    n => packet(&stray, sequence, &evil[..usize::from(n)]),
                                };
                                Arrival::Hostile(Hostile::Foreign, bytes)
                            }
                            Perturb::FarFuture { kind, offset } => {
                                let sequence = ((hostiles + 1) << 44) + u64::from(offset);
                                let bytes = match kind {
                                    0 => packet(name, sequence, &evil[..2]),
                                    1 => heartbeat(name, sequence),
                                    _ => end(name, sequence),
                                };
                                Arrival::Hostile(Hostile::FarFuture, bytes)
                            }
                        });
                    }
                }
            }
            out
        }

        /// What a receiver that ignores hostile datagrams, and believes every genuine one,
        /// hands over.
        fn reference(arrivals: &[Arrival]) -> Vec<Ev> {
            let mut out = Vec::new();
            let mut session = None;
            let mut next = 1u64;
            for a in arrivals {
                let Arrival::Genuine {
                    session: k,
                    sequence,
                    count,
                    ..
                } = *a
                else {
                    continue;
                };
                if session != Some(k) {
                    if session.is_some() {
                        out.push(Ev::Restart);
                    }
                    session = Some(k);
                    next = 1;
                }
                let gap = sequence > next;
                if gap {
                    out.push(Ev::Gap(next, sequence - next));
                    next = sequence;
                }
                match count {
                    // a heartbeat ahead is reported as the gap alone
                    0 if gap => {}
                    0 => out.push(Ev::Heartbeat),
                    END_OF_SESSION => out.push(Ev::End),
                    n => {
                        let end = sequence + u64::from(n);
                        if end <= next {
                            out.push(Ev::Dup(u64::from(n)));
                            continue;
                        }
                        if sequence < next {
                            out.push(Ev::Dup(next - sequence));
                        }
                        for s in next..end {
                            out.push(Ev::Msg(genuine_message(k, s)));
                        }
                        next = end;
                    }
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 512 }))]

            #[test]
            fn receiver_matches_the_reference(plan in plan(), budget in 1usize..6) {
                let arrivals = arrivals(&plan);
                let mut r = Receiver::new(ReceiverOptions::default());
                let mut events = Vec::new();
                for a in &arrivals {
                    let bytes = match a {
                        Arrival::Genuine { bytes, .. } | Arrival::Hostile(_, bytes) => bytes,
                    };
                    events.extend(feed(&mut r, bytes, sender(), budget));
                }
                let believed: Vec<Ev> = events
                    .iter()
                    .filter(|e| !matches!(e, Ev::Rejected(_) | Ev::Malformed))
                    .cloned()
                    .collect();
                prop_assert_eq!(&believed, &reference(&arrivals));

                // each genuine message at most once, in order; no hostile one ever
                let mut last: Option<Vec<u8>> = None;
                for e in &events {
                    if let Ev::Msg(m) = e {
                        prop_assert_eq!(m[0], 0, "a hostile message was delivered");
                        prop_assert!(last.as_ref().is_none_or(|l| l < m), "{:?} after {:?}", m, last);
                        last = Some(m.clone());
                    }
                }
                let hostile = |h: Hostile| arrivals.iter().filter(|a| matches!(a, Arrival::Hostile(x, _) if *x == h)).count();
                let seen = |e: Ev| events.iter().filter(|x| **x == e).count();
                let held = |why: Rejection| usize::from(r.candidate.is_some_and(|c| c.reason == why));
                prop_assert_eq!(seen(Ev::Malformed), hostile(Hostile::Malformed));
                prop_assert_eq!(
                    seen(FOREIGN_SESSION) + held(Rejection::ForeignSession),
                    hostile(Hostile::Foreign)
                );
                prop_assert_eq!(
                    seen(IMPLAUSIBLE) + held(Rejection::ImplausibleSequence),
                    hostile(Hostile::FarFuture)
                );
            }
        }
    }
}
