//! [`Arbiter`]: one MoldUDP64 stream, in order and each sequence number once, from up to two
//! identical lines (A and B) and a retransmission (request) server.
//!
//! Each line's datagrams are judged first by its own [`Receiver`](super::mold_receiver::Receiver)
//! (sender, framing, session, plausibility); what a line believes reaches the arbiter as that
//! line's events, and the arbiter decides what the shard sees:
//!
//! - the message numbered [`Arbiter::next_expected`] is handed over at once, from whichever line
//!   (or the request server) has it first; copies that come later are dropped (counted per line
//!   as `late`);
//! - a message ahead of it is copied into the *hold*, a ring of [`ArbiterOptions::hold`] fixed
//!   64-byte slots reserved once, indexed by sequence number; it is handed over once everything
//!   before it has been (or given up);
//! - the stretch from the next expected message to the first one known is a *hole*. With a
//!   request server, a hole is requested ([`Request`], repeated with doubling backoff from
//!   [`ArbiterOptions::retry_ns`]) as soon as every line of the session has passed it, or once
//!   it has waited [`ArbiterOptions::line_wait_ns`] for a line that has not; it is *given up* —
//!   a [`FeedEvent::Gap`], the shard's resync — when the server has not filled it within
//!   [`ArbiterOptions::retransmit_timeout_ns`]. Without one, a hole is given up once it has
//!   waited `line_wait_ns` (a line behind, or a packet reordered on a line, may still fill it
//!   until then). Either way a hole is given up at once when a message does not fit the hold.
//!
//! So a message is lost only if every line lost it and the request server did not send it in
//! time, and the shard is told exactly which: it sees every sequence number once, in order,
//! either as its message or inside one announced gap. Memory is fixed at construction; nothing
//! here blocks or makes a syscall (the caller sends the requests).
//!
//! Sessions: the arbiter follows the first session a line believes; when a line's receiver
//! confirms a new session ([`FeedEvent::Restart`]) the arbiter restarts with it (what was held
//! or owed of the old session is dropped: the books start over), and a line still on the old
//! session is ignored until its own receiver moves. End of session is handed over once, when
//! every message before it has been.

use super::FeedEvent;

/// The most lines arbitrated.
pub const MAX_LINES: usize = 2;

/// Default [`ArbiterOptions::hold`]: 65,536 messages (4 MiB), about 65 ms of NASDAQ
/// TotalView at a million messages a second.
pub const DEFAULT_HOLD: usize = 1 << 16;

/// Default [`ArbiterOptions::line_wait_ns`]: 1 ms.
pub const DEFAULT_LINE_WAIT_NS: u64 = 1_000_000;

/// Default [`ArbiterOptions::retransmit_timeout_ns`]: 500 ms.
pub const DEFAULT_RETRANSMIT_TIMEOUT_NS: u64 = 500_000_000;

/// Default [`ArbiterOptions::retry_ns`]: 20 ms, doubling.
pub const DEFAULT_RETRY_NS: u64 = 20_000_000;

/// Bytes of a message a hold slot keeps: more than any ITCH 5.0 message (at most 50).
const SLOT_BYTES: usize = 54;

/// The most messages one request asks for (a MoldUDP64 count; `0xFFFF` is reserved).
pub const MAX_REQUEST: u64 = 0xFFFE;

/// How an [`Arbiter`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArbiterOptions {
    /// Lines arbitrated: 1 or 2.
    pub lines: usize,
    /// Messages held at most while a hole before them is open (at least 1).
    pub hold: usize,
    /// How long a hole waits for a line that has not passed it (or, without a request server,
    /// for a packet reordered on a line) before it is requested or given up, in nanoseconds.
    pub line_wait_ns: u64,
    /// A request server is configured: shared holes are requested before they are given up.
    pub retransmit: bool,
    /// How long a requested hole may stay open before it is given up, in nanoseconds.
    pub retransmit_timeout_ns: u64,
    /// The wait before the first repeat of a request, doubling after each, in nanoseconds.
    pub retry_ns: u64,
}

impl Default for ArbiterOptions {
    fn default() -> Self {
        ArbiterOptions {
            lines: 1,
            hold: DEFAULT_HOLD,
            line_wait_ns: DEFAULT_LINE_WAIT_NS,
            retransmit: false,
            retransmit_timeout_ns: DEFAULT_RETRANSMIT_TIMEOUT_NS,
            retry_ns: DEFAULT_RETRY_NS,
        }
    }
}

/// What one line did, since the arbiter was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Messages handed over from this line first (its arbitration wins).
    pub first: u64,
    /// Messages this line carried after they had been handed over or held (from the other
    /// line, the request server or itself), or of a session the arbiter left: dropped.
    pub late: u64,
    /// Messages this line skipped (its own gaps), whether or not another source had them.
    pub missed: u64,
}

/// What the arbiter recovered and lost, since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Request packets to send (first requests and their repeats).
    pub requests: u64,
    /// Messages handed over that came from the request server first.
    pub recovered: u64,
    /// Messages given up: announced in gaps.
    pub unrecovered: u64,
    /// Holes given up because the request server did not fill them in time.
    pub timeouts: u64,
    /// Holes given up because a message did not fit the hold.
    pub hold_full: u64,
}

/// A retransmission request to send: `count` messages of `session` from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The session.
    pub session: [u8; 10],
    /// The first sequence number asked for.
    pub first: u64,
    /// How many (at most [`MAX_REQUEST`]).
    pub count: u16,
}

/// Where a message offered to the arbiter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Line `0` (A) or `1` (B).
    Line(usize),
    /// The request server.
    Retransmit,
}

impl Origin {
    fn code(self) -> u8 {
        match self {
            Origin::Line(i) => i.min(MAX_LINES - 1) as u8,
            Origin::Retransmit => RETRANSMIT,
        }
    }
}

/// A held message.
#[derive(Clone, Copy)]
struct Slot {
    /// Its sequence number; 0 when the slot is empty (sequence numbers start at 1).
    sequence: u64,
    /// Its length, or `u8::MAX` for a message longer than a slot (handed over as malformed).
    len: u8,
    /// Where it came from: a line's index, or [`RETRANSMIT`].
    origin: u8,
    bytes: [u8; SLOT_BYTES],
}

const EMPTY: Slot = Slot {
    sequence: 0,
    len: 0,
    origin: 0,
    bytes: [0; SLOT_BYTES],
};

const RETRANSMIT: u8 = u8::MAX;
const TOO_LONG: u8 = u8::MAX;

/// A line as the arbiter sees it.
#[derive(Debug, Clone, Copy, Default)]
struct Line {
    /// The session its receiver believes.
    session: Option<[u8; 10]>,
    /// The sequence number of the next message it will carry.
    next: u64,
}

/// The hole at the next expected message, while one is open.
#[derive(Debug, Clone, Copy)]
struct Hole {
    /// Its first sequence number (the next expected when it was noticed).
    first: u64,
    /// When it was noticed.
    noticed_ns: u64,
    /// The request outstanding for it, if one was sent.
    request: Option<Outstanding>,
}

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    /// One past the last message asked for.
    end: u64,
    sent_ns: u64,
    /// Repeats so far.
    repeats: u32,
    deadline_ns: u64,
}

/// The arbiter; see the [module docs](self).
pub struct Arbiter {
    options: ArbiterOptions,
    session: Option<[u8; 10]>,
    /// The next sequence number to hand over.
    next: u64,
    lines: [Line; MAX_LINES],
    /// The hold: a power of two of slots, message `n` in slot `n & mask`.
    slots: Box<[Slot]>,
    mask: u64,
    /// Messages in `slots`.
    held: usize,
    /// One past the highest sequence number held (meaningful while `held > 0`).
    held_end: u64,
    /// The lowest sequence number held, when known (`None`: to be found again).
    first_held: Option<u64>,
    hole: Option<Hole>,
    /// A message did not fit the hold: the open hole is given up at the next tick.
    overflowed: bool,
    /// Where the session ends (one past its last message), once a line said so.
    end: Option<u64>,
    end_announced: bool,
    line_stats: [LineStats; MAX_LINES],
    stats: RecoveryStats,
}

impl std::fmt::Debug for Arbiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arbiter")
            .field("options", &self.options)
            .field("next", &self.next)
            .field("held", &self.held)
            .field("hole", &self.hole)
            .finish_non_exhaustive()
    }
}

impl Arbiter {
    /// An arbiter with its hold reserved (`options.hold` slots of 64 bytes, rounded up to a
    /// power of two), before any session. `lines` is clamped to `1..=2`.
    pub fn new(options: ArbiterOptions) -> Arbiter {
        let options = ArbiterOptions {
            lines: options.lines.clamp(1, MAX_LINES),
            hold: options.hold.max(1).next_power_of_two(),
            ..options
        };
        Arbiter {
            options,
            session: None,
            next: 1,
            lines: [Line::default(); MAX_LINES],
            slots: vec![EMPTY; options.hold].into_boxed_slice(),
            mask: options.hold as u64 - 1,
            held: 0,
            held_end: 0,
            first_held: None,
            hole: None,
            overflowed: false,
            end: None,
            end_announced: false,
            line_stats: [LineStats::default(); MAX_LINES],
            stats: RecoveryStats::default(),
        }
    }

    /// The options, as clamped.
    pub fn options(&self) -> &ArbiterOptions {
        &self.options
    }

    /// The session followed (`None` before the first).
    pub fn session(&self) -> Option<&[u8; 10]> {
        self.session.as_ref()
    }

    /// The sequence number handed over next.
    pub fn next_expected(&self) -> u64 {
        self.next
    }

    /// Line `line`'s counters.
    pub fn line_stats(&self, line: usize) -> LineStats {
        self.line_stats.get(line).copied().unwrap_or_default()
    }

    /// The recovery counters.
    pub fn stats(&self) -> RecoveryStats {
        self.stats
    }

    /// Whether a hole is open: something after the next expected message is known, so late
    /// packets of a line (behind its own position) are worth offering.
    pub fn hole_open(&self) -> bool {
        self.held > 0
            || self.lines[..self.options.lines]
                .iter()
                .any(|l| self.session.is_some() && l.session == self.session && l.next > self.next)
    }

    /// Line `line`'s receiver believes `session` for the events of its datagram about to be
    /// handed over: call it before [`Arbiter::on_line`] for each datagram. A line's first
    /// session, or a new one, numbers its messages from 1; the arbiter adopts the first session
    /// any line believes, and moves to a line's session once its own has ended (announcing a
    /// [`FeedEvent::Restart`] to `sink`; returns the events handed over, 0 or 1). Returns
    /// whether the line is on the session followed.
    pub fn sync_line(
        &mut self,
        line: usize,
        session: Option<&[u8; 10]>,
        sink: &mut dyn FnMut(FeedEvent<'_>),
    ) -> (bool, usize) {
        let (Some(&session), Some(state)) = (session, self.lines.get_mut(line)) else {
            return (false, 0);
        };
        if state.session != Some(session) {
            state.session = Some(session);
            state.next = 1;
        }
        match self.session {
            None => {
                self.session = Some(session);
                (true, 0)
            }
            Some(s) if s == session => (true, 0),
            Some(_) if self.end_announced => {
                // ours ended: a line on another session is the next one (its receiver only
                // believed it as its first, or after that end)
                self.restart(session);
                sink(FeedEvent::Restart);
                (true, 1)
            }
            Some(_) => (false, 0),
        }
    }

    /// One event of line `line`, after [`Arbiter::sync_line`] for its datagram. Hands what it
    /// makes over to `sink`; returns how many events that was (at most one: an end of session
    /// reached by a message is announced by the next [`Arbiter::drain`]).
    #[inline]
    pub fn on_line(
        &mut self,
        line: usize,
        event: FeedEvent<'_>,
        sink: &mut dyn FnMut(FeedEvent<'_>),
    ) -> usize {
        let Some(state) = self.lines.get_mut(line) else {
            return 0;
        };
        let Some(session) = state.session else {
            // before its first session a receiver only rejects and reports malformed input
            return usize::from(forward(event, sink));
        };
        let current = self.session == Some(session);
        match event {
            FeedEvent::Message(bytes) => {
                let sequence = state.next;
                state.next += 1;
                if current {
                    self.offer(sequence, bytes, Origin::Line(line), sink)
                } else {
                    self.count_late(Origin::Line(line).code());
                    0
                }
            }
            FeedEvent::Gap { first, count } => {
                state.next = first.saturating_add(count).max(state.next);
                if let Some(stats) = self.line_stats.get_mut(line) {
                    stats.missed += count;
                }
                0
            }
            // the line's receiver confirmed a new session: the arbiter follows it
            FeedEvent::Restart if !current => {
                self.restart(session);
                sink(FeedEvent::Restart);
                1
            }
            // this line caught up with the session the other line began
            FeedEvent::Restart => 0,
            FeedEvent::Duplicate { count } => {
                if let Some(stats) = self.line_stats.get_mut(line) {
                    stats.late += count;
                }
                usize::from(current && forward(event, sink))
            }
            FeedEvent::EndOfSession if current => {
                self.end = Some(state.next);
                self.announce_end(sink)
            }
            FeedEvent::EndOfSession => 0,
            FeedEvent::Heartbeat if !current => 0,
            _ => usize::from(forward(event, sink)),
        }
    }

    /// A message of line `line`, known (by [`Arbiter::sync_line`]) to be on the session
    /// followed: [`Arbiter::on_line`] for it, the common case first — the next expected, with
    /// nothing held — in a few instructions.
    #[inline(always)]
    pub fn on_current_message(
        &mut self,
        line: usize,
        bytes: &[u8],
        sink: &mut dyn FnMut(FeedEvent<'_>),
    ) -> usize {
        let Some(state) = self.lines.get_mut(line) else {
            return 0;
        };
        let sequence = state.next;
        state.next += 1;
        if sequence == self.next && self.held == 0 {
            self.next += 1;
            if let Some(stats) = self.line_stats.get_mut(line) {
                stats.first += 1;
            }
            sink(FeedEvent::Message(bytes));
            return 1;
        }
        self.offer(sequence, bytes, Origin::Line(line), sink)
    }

    /// Line `line` carried `count` messages from `sequence` that were all handed over already
    /// (its next packet, behind the stream): it moves past them without their being looked
    /// at. Returns false, doing nothing, unless the line is on the session followed, at
    /// `sequence`, and the stream is past `sequence + count` — so a packet believed this way
    /// can move a line's position no further than the stream itself.
    pub fn skip_delivered(&mut self, line: usize, sequence: u64, count: u64) -> bool {
        let Some(state) = self.lines.get_mut(line) else {
            return false;
        };
        let end = sequence.saturating_add(count);
        if self.session.is_none()
            || state.session != self.session
            || state.next != sequence
            || end > self.next
        {
            return false;
        }
        state.next = end;
        if let Some(stats) = self.line_stats.get_mut(line) {
            stats.late += count;
        }
        true
    }

    /// A message numbered `sequence` of the session followed: handed over if it is the next,
    /// held if it is ahead, dropped if it came before. Returns the events handed over (0 or 1).
    pub fn offer(
        &mut self,
        sequence: u64,
        bytes: &[u8],
        origin: Origin,
        sink: &mut dyn FnMut(FeedEvent<'_>),
    ) -> usize {
        let code = origin.code();
        if sequence != self.next {
            self.hold(sequence, bytes, origin);
            return 0;
        }
        let mut first = code;
        if self.held > 0 {
            let index = (sequence & self.mask) as usize;
            if let Some(slot) = self.slots.get_mut(index)
                && slot.sequence == sequence
            {
                // held already: this copy is the later one
                first = slot.origin;
                slot.sequence = 0;
                self.held -= 1;
                self.count_late(code);
                self.consumed(sequence);
            }
        }
        self.count_first(first);
        self.next += 1;
        sink(FeedEvent::Message(bytes));
        // an end of session this reaches is announced by the next drain
        1
    }

    /// Keeps a message numbered `sequence` of the session followed for [`Arbiter::drain`]:
    /// held if it is the next or ahead and fits the hold, dropped (counted late) if it came
    /// before or is held already; beyond the hold it is dropped and the open hole given up at
    /// the next tick.
    pub fn hold(&mut self, sequence: u64, bytes: &[u8], origin: Origin) {
        let code = origin.code();
        if sequence < self.next {
            return self.count_late(code);
        }
        if sequence - self.next > self.mask {
            // beyond the hold: dropped. If every line has passed the hole it waits behind, it
            // is given up at the next tick (the hold is full); while a line has not, that line
            // may still bring all of it, this message included.
            if self.all_passed() {
                self.overflowed = true;
            }
            return self.count_late(code);
        }
        let Some(slot) = self.slots.get_mut((sequence & self.mask) as usize) else {
            return;
        };
        if slot.sequence == sequence {
            return self.count_late(code);
        }
        debug_assert_eq!(slot.sequence, 0, "slots of the hold window are distinct");
        slot.sequence = sequence;
        slot.origin = code;
        if bytes.len() <= SLOT_BYTES {
            slot.bytes[..bytes.len()].copy_from_slice(bytes);
            slot.len = bytes.len() as u8;
        } else {
            slot.len = TOO_LONG;
        }
        if self.held == 0 {
            self.first_held = Some(sequence);
        } else if let Some(first) = self.first_held {
            self.first_held = Some(first.min(sequence));
        }
        self.held += 1;
        self.held_end = self.held_end.max(sequence + 1);
    }

    /// The requested range a request server's answers may fill now: `[next, end)` of the
    /// outstanding request, if there is one.
    pub fn answer_range(&self) -> Option<(u64, u64)> {
        let request = self.hole?.request?;
        (request.end > self.next).then_some((self.next, request.end))
    }

    /// Whether line `line` is on the session followed and past the next expected message.
    pub fn passed(&self, line: usize) -> bool {
        self.lines.get(line).is_some_and(|l| {
            self.session.is_some() && l.session == self.session && l.next > self.next
        })
    }

    /// Whether every line of the session has passed the next expected message.
    fn all_passed(&self) -> bool {
        self.lines[..self.options.lines]
            .iter()
            .all(|l| l.session == self.session && l.next > self.next)
    }

    /// The held message `sequence` was handed over: the lowest held is unknown if it was it.
    fn consumed(&mut self, sequence: u64) {
        if self.first_held == Some(sequence) || self.held == 0 {
            self.first_held = None;
        }
    }

    /// Hands over held messages that are next, in order, up to `budget` events (and the end
    /// of session once it is reached); returns how many.
    pub fn drain(&mut self, budget: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> usize {
        let mut events = 0;
        while events < budget && self.held > 0 {
            let Some(slot) = self.slots.get_mut((self.next & self.mask) as usize) else {
                break;
            };
            if slot.sequence != self.next {
                break;
            }
            slot.sequence = 0;
            let origin = slot.origin;
            if slot.len == TOO_LONG {
                sink(FeedEvent::Malformed {
                    what: "message longer than any ITCH 5.0 message",
                });
            } else {
                sink(FeedEvent::Message(&slot.bytes[..usize::from(slot.len)]));
            }
            self.held -= 1;
            self.consumed(self.next);
            self.count_first(origin);
            self.next += 1;
            events += 1;
        }
        if events < budget {
            events += self.announce_end(sink);
        }
        events
    }

    /// Whether the next expected message is held (so [`Arbiter::drain`] has work).
    pub fn can_drain(&self) -> bool {
        self.held > 0
            && self
                .slots
                .get((self.next & self.mask) as usize)
                .is_some_and(|s| s.sequence == self.next)
    }

    /// Decides the open hole at `now_ns`: waits, asks for it (the [`Request`] returned, to be
    /// sent by the caller), or gives it up (a [`FeedEvent::Gap`] to `sink`; returns 1). Waits
    /// run out (the line wait, a request's backoff and timeout) only if `may_expire`: the
    /// caller found nothing more to read. Call it when [`Arbiter::can_drain`] is false.
    pub fn tick(
        &mut self,
        now_ns: u64,
        may_expire: bool,
        sink: &mut dyn FnMut(FeedEvent<'_>),
    ) -> (usize, Option<Request>) {
        let Some(end) = self.hole_end() else {
            self.hole = None;
            self.overflowed = false;
            return (0, None);
        };
        let next = self.next;
        let hole = match self.hole {
            Some(h) if h.first == next => h,
            // a new hole, or what is left of one partly filled (its request stands)
            _ => {
                let request = self.hole.and_then(|h| h.request.filter(|r| r.end > next));
                Hole {
                    first: next,
                    noticed_ns: now_ns,
                    request,
                }
            }
        };
        self.hole = Some(hole);
        if self.overflowed {
            self.stats.hold_full += 1;
            return (self.give_up(end, sink), None);
        }
        // time runs out only once nothing more was waiting to be read: what fills the hole
        // may be in a socket already
        let expire = |deadline: u64| may_expire && now_ns >= deadline;
        let waited = expire(hole.noticed_ns.saturating_add(self.options.line_wait_ns));
        let (Some(session), true) = (self.session, self.options.retransmit) else {
            // a line that has not passed the hole, or a packet reordered on one that has, may
            // still fill it: it is given up only after the wait
            return if waited {
                (self.give_up(end, sink), None)
            } else {
                (0, None)
            };
        };
        if !self.all_passed() && !waited && hole.request.is_none() {
            return (0, None);
        }
        // at most what the hold can take, so every answer fits
        let count = (end - next).min(MAX_REQUEST).min(self.mask + 1);
        let outstanding = |sent_ns, repeats, deadline_ns| Outstanding {
            end: next + count,
            sent_ns,
            repeats,
            deadline_ns,
        };
        match hole.request {
            Some(r) if expire(r.deadline_ns) => {
                self.stats.timeouts += 1;
                (self.give_up(end, sink), None)
            }
            Some(r) => {
                let backoff = self.options.retry_ns.saturating_mul(1 << r.repeats.min(20));
                if !expire(r.sent_ns.saturating_add(backoff)) {
                    return (0, None);
                }
                self.hole = Some(Hole {
                    request: Some(outstanding(now_ns, r.repeats + 1, r.deadline_ns)),
                    ..hole
                });
                (0, Some(self.request(session, next, count)))
            }
            None => {
                let deadline = now_ns.saturating_add(self.options.retransmit_timeout_ns);
                self.hole = Some(Hole {
                    request: Some(outstanding(now_ns, 0, deadline)),
                    ..hole
                });
                (0, Some(self.request(session, next, count)))
            }
        }
    }

    fn request(&mut self, session: [u8; 10], first: u64, count: u64) -> Request {
        self.stats.requests += 1;
        Request {
            session,
            first,
            // at most MAX_REQUEST
            count: u16::try_from(count).unwrap_or(u16::MAX - 1),
        }
    }

    /// Announces the hole `[next, end)` lost and moves past it.
    fn give_up(&mut self, end: u64, sink: &mut dyn FnMut(FeedEvent<'_>)) -> usize {
        let count = end - self.next;
        sink(FeedEvent::Gap {
            first: self.next,
            count,
        });
        self.stats.unrecovered += count;
        self.next = end;
        self.hole = None;
        self.overflowed = false;
        1
    }

    /// One past the open hole: the first sequence number after the next expected that is held
    /// or that a line that passed the next expected resumes at; `None` when nothing is known
    /// beyond it.
    fn hole_end(&mut self) -> Option<u64> {
        let mut end = u64::MAX;
        for line in &self.lines[..self.options.lines] {
            if line.session == self.session && self.session.is_some() && line.next > self.next {
                end = end.min(line.next);
            }
        }
        if self.held > 0 {
            let first = match self.first_held {
                Some(first) => first,
                None => {
                    // found again once after the lowest was handed over: from the next
                    // expected up, usually at once (held messages come in runs)
                    let found = (self.next..self.held_end)
                        .find(|&s| {
                            self.slots
                                .get((s & self.mask) as usize)
                                .is_some_and(|slot| slot.sequence == s)
                        })
                        .unwrap_or(u64::MAX);
                    self.first_held = Some(found);
                    found
                }
            };
            end = end.min(first);
        }
        if let Some(e) = self.end
            && e > self.next
        {
            end = end.min(e);
        }
        (end != u64::MAX && end > self.next).then_some(end)
    }

    /// Hands over the end of session if everything before it has been.
    fn announce_end(&mut self, sink: &mut dyn FnMut(FeedEvent<'_>)) -> usize {
        if !self.end_announced && self.end == Some(self.next) {
            self.end_announced = true;
            sink(FeedEvent::EndOfSession);
            return 1;
        }
        0
    }

    /// Follows `session` from its start: what was held or owed of the old one is dropped.
    fn restart(&mut self, session: [u8; 10]) {
        self.session = Some(session);
        self.next = 1;
        if self.held > 0 {
            self.slots.fill(EMPTY);
            self.held = 0;
        }
        self.held_end = 0;
        self.first_held = None;
        self.hole = None;
        self.overflowed = false;
        self.end = None;
        self.end_announced = false;
    }

    fn count_first(&mut self, origin: u8) {
        match self.line_stats.get_mut(usize::from(origin)) {
            Some(line) => line.first += 1,
            None => self.stats.recovered += 1,
        }
    }

    fn count_late(&mut self, origin: u8) {
        if let Some(line) = self.line_stats.get_mut(usize::from(origin)) {
            line.late += 1;
        }
    }
}

/// Hands a line's non-message event over as it is; true if it was.
fn forward(event: FeedEvent<'_>, sink: &mut dyn FnMut(FeedEvent<'_>)) -> bool {
    match event {
        FeedEvent::Message(_)
        | FeedEvent::Decoded { .. }
        | FeedEvent::Gap { .. }
        | FeedEvent::Restart
        | FeedEvent::EndOfSession => false,
        FeedEvent::Duplicate { .. }
        | FeedEvent::Malformed { .. }
        | FeedEvent::Heartbeat
        | FeedEvent::Rejected(_) => {
            sink(event);
            true
        }
    }
}
