//! [`Lines`]: a MoldUDP64 feed taken from one or two lines and a request server, without the
//! sockets — each line's [`Receiver`] judges its datagrams, the [`Arbiter`] merges what they
//! believe into one stream.
//!
//! [`UdpSource`](super::udp::UdpSource) is sockets around a `Lines`: it receives a line's
//! datagram into [`Lines::buffer`] and calls [`Lines::accept`], hands a request server's answer
//! to [`Lines::accept_retransmitted`], sends what [`Lines::take_request`] returns, and calls
//! [`Lines::deliver`] for the events. Being pure, the whole is tested against a model over
//! random interleavings of two lossy, reordering, duplicating lines (the tests at the end).
//!
//! A packet a line's receiver would drop as behind its own position (reordered on that line)
//! is still worth having while the arbiter has a hole: when one is open, such a packet (from
//! the line's admitted sender, well-formed, of the session followed) has its messages held by
//! the arbiter before the receiver drops it. Answers of the request server are believed the
//! same way: whole packets of the session followed, each message where its sequence number
//! puts it.

use std::net::SocketAddr;

use super::FeedEvent;
use super::arbiter::{Arbiter, ArbiterOptions, LineStats, Origin, RecoveryStats, Request};
use super::mold_receiver::{Receiver, ReceiverOptions, UdpStats};
use crate::feed::moldudp64::{Packet, PacketKind};

/// Lines and their arbiter; see the [module docs](self).
#[derive(Debug)]
pub struct Lines {
    receivers: Vec<Receiver>,
    arbiter: Arbiter,
    /// A request the arbiter decided on, for the caller to send.
    request: Option<Request>,
    /// Answers of the request server received, and those that were malformed or of another
    /// session.
    retransmitted: u64,
    retransmit_refused: u64,
}

impl Lines {
    /// `receivers.len()` lines (1 or 2; more are ignored), each judged by its options, and an
    /// arbiter deciding by `options` (its `lines` is set to the number of receivers).
    /// Allocates everything here.
    pub fn new(receivers: &[ReceiverOptions], options: ArbiterOptions) -> Lines {
        let receivers: Vec<Receiver> = receivers
            .iter()
            .take(super::arbiter::MAX_LINES)
            .map(|o| Receiver::new(*o))
            .collect();
        let lines = receivers.len().max(1);
        Lines {
            receivers,
            arbiter: Arbiter::new(ArbiterOptions { lines, ..options }),
            request: None,
            retransmitted: 0,
            retransmit_refused: 0,
        }
    }

    /// The arbiter.
    pub fn arbiter(&self) -> &Arbiter {
        &self.arbiter
    }

    /// Line `line`'s receiver.
    pub fn receiver(&self, line: usize) -> Option<&Receiver> {
        self.receivers.get(line)
    }

    /// Line `line`'s receiver, to count what its socket did.
    pub fn receiver_mut(&mut self, line: usize) -> Option<&mut Receiver> {
        self.receivers.get_mut(line)
    }

    /// Line `line`'s socket counters and arbitration counters.
    pub fn line_stats(&self, line: usize) -> (UdpStats, LineStats) {
        (
            self.receivers
                .get(line)
                .map(Receiver::stats)
                .unwrap_or_default(),
            self.arbiter.line_stats(line),
        )
    }

    /// The recovery counters, with the request server's packets received and refused.
    pub fn recovery_stats(&self) -> (RecoveryStats, u64, u64) {
        (
            self.arbiter.stats(),
            self.retransmitted,
            self.retransmit_refused,
        )
    }

    /// Whether line `line` may receive its next datagram into [`Lines::buffer`]: everything
    /// its last one caused was handed over.
    pub fn ready(&self, line: usize) -> bool {
        self.receivers.get(line).is_some_and(Receiver::is_drained)
    }

    /// The buffer line `line`'s next datagram is received into (empty for a line that does not
    /// exist).
    pub fn buffer(&mut self, line: usize) -> &mut [u8] {
        match self.receivers.get_mut(line) {
            Some(r) => r.buffer(),
            None => &mut [],
        }
    }

    /// Judges the datagram of `len` bytes in line `line`'s buffer, from `from`; call it only
    /// when [`Lines::ready`]. Its events come out of [`Lines::deliver`].
    pub fn accept(&mut self, line: usize, len: usize, from: SocketAddr) {
        let Some(receiver) = self.receivers.get_mut(line) else {
            return;
        };
        let admitted = receiver.options().source.is_none_or(|f| f.admits(from));
        let packet = Packet::parse(receiver.received(len)).ok();
        if let Some(packet) = packet
            && admitted
            && packet.kind() == PacketKind::Messages
            && !receiver.has_candidate()
            && receiver.session() == Some(packet.session())
            && packet.sequence() == receiver.next_expected()
            && self.arbiter.skip_delivered(
                line,
                packet.sequence(),
                u64::from(packet.message_count()),
            )
        {
            // the later line's copy of what was handed over: its header is all that is read
            return receiver.skip_to(packet.next_sequence(), len);
        }
        if let Some(packet) = packet
            && admitted
            && self.arbiter.hole_open()
            && self.arbiter.session() == Some(packet.session())
            && packet.sequence() < receiver.next_expected()
            && packet.validate().is_ok()
        {
            // behind this line's own position: its receiver drops it, but the hole may need it
            let behind = receiver.next_expected();
            for (sequence, message) in (packet.sequence()..behind).zip(packet.messages().flatten())
            {
                if sequence >= self.arbiter.next_expected() {
                    self.arbiter.hold(sequence, message, Origin::Line(line));
                }
            }
        }
        receiver.accept(len, from);
    }

    /// Copies `datagram` into line `line`'s buffer and accepts it (tests, benches).
    pub fn push(&mut self, line: usize, datagram: &[u8], from: SocketAddr) {
        let buffer = self.buffer(line);
        let len = datagram.len().min(buffer.len());
        buffer[..len].copy_from_slice(&datagram[..len]);
        self.accept(line, len, from);
    }

    /// An answer of the request server: a MoldUDP64 packet whose messages are held where their
    /// sequence numbers put them. A malformed one is reported to `sink`
    /// ([`FeedEvent::Malformed`]; returns 1); one of another session, or a heartbeat or end of
    /// session, is ignored (counted as refused when of another session).
    pub fn accept_retransmitted(
        &mut self,
        datagram: &[u8],
        sink: &mut dyn FnMut(FeedEvent<'_>),
    ) -> usize {
        self.retransmitted += 1;
        let packet = match Packet::parse(datagram).and_then(|p| p.validate().map(|()| p)) {
            Ok(p) => p,
            Err(_) => {
                self.retransmit_refused += 1;
                sink(FeedEvent::Malformed {
                    what: "malformed packet from the request server",
                });
                return 1;
            }
        };
        // only the session followed, and only what was asked for and is still missing
        let range = self.arbiter.answer_range();
        let Some((from, to)) = range.filter(|_| self.arbiter.session() == Some(packet.session()))
        else {
            self.retransmit_refused += 1;
            return 0;
        };
        if packet.kind() == PacketKind::Messages {
            let first = packet.sequence();
            for (sequence, message) in (first..first.saturating_add(u64::from(packet.count())))
                .zip(packet.messages().flatten())
            {
                if (from..to).contains(&sequence) {
                    self.arbiter.hold(sequence, message, Origin::Retransmit);
                }
            }
        }
        0
    }

    /// Hands over up to `budget` events in feed order: held messages that are next, what the
    /// lines' last datagrams caused, and the arbiter's decisions on an open hole at `now_ns` (a
    /// request it makes waits in [`Lines::take_request`]). Returns how many events.
    pub fn deliver(
        &mut self,
        budget: usize,
        now_ns: u64,
        may_expire: bool,
        sink: &mut dyn FnMut(FeedEvent<'_>),
    ) -> usize {
        let mut events = 0;
        loop {
            events += self.arbiter.drain(budget.saturating_sub(events), sink);
            if events >= budget {
                return events;
            }
            if let Some((line, receiver)) = self
                .receivers
                .iter_mut()
                .enumerate()
                .find(|(_, r)| !r.is_drained())
            {
                let (current, restarted) = self.arbiter.sync_line(line, receiver.session(), sink);
                events += restarted;
                if events >= budget {
                    return events;
                }
                let arbiter = &mut self.arbiter;
                let mut emitted = 0;
                // `current` holds for the whole datagram: only this line's own restart could
                // change it, and that is handled by `on_line`
                receiver.deliver(budget - events, &mut |event| {
                    emitted += match event {
                        FeedEvent::Message(bytes) if current => {
                            arbiter.on_current_message(line, bytes, sink)
                        }
                        _ => arbiter.on_line(line, event, sink),
                    };
                });
                events += emitted;
                continue;
            }
            if self.arbiter.can_drain() {
                continue;
            }
            let (gave_up, request) = self.arbiter.tick(now_ns, may_expire, sink);
            if request.is_some() {
                self.request = request;
            }
            events += gave_up;
            if gave_up == 0 {
                return events;
            }
        }
    }

    /// A line that has not passed an open hole, to be read first: it is the one that may fill
    /// it.
    pub fn behind(&self) -> Option<usize> {
        if !self.arbiter.hole_open() {
            return None;
        }
        (0..self.receivers.len()).find(|&l| !self.arbiter.passed(l))
    }

    /// Whether an answer of the request server is awaited (only then is its socket read).
    pub fn awaiting_answers(&self) -> bool {
        self.arbiter.answer_range().is_some()
    }

    /// The request the arbiter decided on since the last call, to be sent to the request
    /// server.
    pub fn take_request(&mut self) -> Option<Request> {
        self.request.take()
    }

    /// Whether everything received was handed over or is held waiting for a hole.
    pub fn is_drained(&self) -> bool {
        self.receivers.iter().all(Receiver::is_drained) && !self.arbiter.can_drain()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::feed::moldudp64::{encode_end_of_session, encode_packet};
    use crate::source::arbiter::{DEFAULT_RETRY_NS, MAX_REQUEST};

    const SESSION: &[u8; 10] = b"SESSION001";

    fn sender() -> SocketAddr {
        "127.0.0.1:9000".parse().expect("an address")
    }

    /// Message `sequence` of the stream: its number, so each is unique and checkable.
    fn message(sequence: u64) -> Vec<u8> {
        let mut m = vec![b'M'];
        m.extend_from_slice(&sequence.to_be_bytes());
        m
    }

    /// An owned copy of what the shard would see.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Msg(Vec<u8>),
        Gap(u64, u64),
        End,
        Other(String),
    }

    fn owned(e: FeedEvent<'_>) -> Ev {
        match e {
            FeedEvent::Message(m) => Ev::Msg(m.to_vec()),
            FeedEvent::Gap { first, count } => Ev::Gap(first, count),
            FeedEvent::EndOfSession => Ev::End,
            other => Ev::Other(format!("{other:?}")),
        }
    }

    /// The packets of a stream of `messages` messages, `sizes` messages each (cycled), then an
    /// end of session.
    fn packets(messages: u64, sizes: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut next = 1;
        let mut i = 0;
        while next <= messages {
            let n = u64::from(sizes[i % sizes.len()]).clamp(1, messages - next + 1);
            i += 1;
            let owned: Vec<Vec<u8>> = (next..next + n).map(message).collect();
            let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            let mut bytes = Vec::new();
            encode_packet(SESSION, next, &refs, &mut bytes).expect("encodable");
            out.push((next, n, bytes));
            next += n;
        }
        let mut end = Vec::new();
        encode_end_of_session(SESSION, next, &mut end);
        out.push((next, 0, end));
        out
    }

    /// What happens to each packet on one line.
    #[derive(Debug, Clone)]
    struct LinePlan {
        /// Packet indexes lost on this line (a burst from each start, of its length).
        drops: Vec<(u16, u8)>,
        /// Packets sent twice (index, then how many packets later the copy comes).
        duplicates: Vec<(u16, u8)>,
        /// Adjacent packets swapped (the index of the first).
        swaps: Vec<u16>,
    }

    fn line_plan() -> impl Strategy<Value = LinePlan> {
        (
            prop::collection::vec((any::<u16>(), 1u8..8), 0..4),
            prop::collection::vec((any::<u16>(), 0u8..4), 0..4),
            prop::collection::vec(any::<u16>(), 0..4),
        )
            .prop_map(|(drops, duplicates, swaps)| LinePlan {
                drops,
                duplicates,
                swaps,
            })
    }

    /// The datagrams one line carries, in its order, as packet indexes.
    fn line_order(plan: &LinePlan, shared: &[(u16, u8)], n: usize) -> Vec<usize> {
        let lost = |i: usize| {
            plan.drops.iter().chain(shared).any(|&(start, len)| {
                let start = usize::from(start) % n;
                i >= start && i < start + usize::from(len)
            })
        };
        let mut order: Vec<usize> = (0..n).filter(|&i| !lost(i)).collect();
        for &s in &plan.swaps {
            if order.len() >= 2 {
                let s = usize::from(s) % (order.len() - 1);
                order.swap(s, s + 1);
            }
        }
        for &(at, later) in &plan.duplicates {
            if !order.is_empty() {
                let at = usize::from(at) % order.len();
                let copy = order[at];
                let to = (at + 1 + usize::from(later)).min(order.len());
                order.insert(to, copy);
            }
        }
        order
    }

    /// Runs the datagrams of both lines, interleaved by `picks`, through `Lines`, answering
    /// requests at once if `server_up`; then lets time pass until nothing is left open.
    fn run(
        packets: &[(u64, u64, Vec<u8>)],
        orders: [&[usize]; 2],
        picks: &[bool],
        server: Option<bool>,
        budget: usize,
        hold: usize,
    ) -> (Vec<Ev>, Lines) {
        let options = ArbiterOptions {
            hold,
            // the stream itself takes no time: only the flush at the end lets holes time out
            line_wait_ns: 1_000_000,
            retransmit: server.is_some(),
            ..ArbiterOptions::default()
        };
        let mut lines = Lines::new(&[ReceiverOptions::default(); 2], options);
        let mut out = Vec::new();
        let mut now = 1u64;
        let mut pos = [0usize; 2];
        let mut pick = picks.iter().cycle();
        let answer = |lines: &mut Lines, out: &mut Vec<Ev>| {
            while let Some(r) = lines.take_request() {
                assert!(u64::from(r.count) <= MAX_REQUEST && r.count > 0);
                if server != Some(true) {
                    continue;
                }
                let end = r.first + u64::from(r.count);
                for (first, n, bytes) in packets {
                    if *n > 0 && first + n > r.first && *first < end {
                        lines.accept_retransmitted(bytes, &mut |e| out.push(owned(e)));
                    }
                }
            }
        };
        let step = |lines: &mut Lines, out: &mut Vec<Ev>, now: u64| {
            loop {
                let n = lines.deliver(budget, now, true, &mut |e| out.push(owned(e)));
                assert!(n <= budget + 1, "{n} events for a budget of {budget}");
                answer(lines, out);
                if n == 0 && lines.is_drained() {
                    break;
                }
            }
        };
        while pos[0] < orders[0].len() || pos[1] < orders[1].len() {
            let line = match (pos[0] < orders[0].len(), pos[1] < orders[1].len()) {
                (true, true) => usize::from(*pick.next().unwrap_or(&false)),
                (true, false) => 0,
                _ => 1,
            };
            let index = orders[line][pos[line]];
            pos[line] += 1;
            assert!(lines.ready(line));
            lines.push(line, &packets[index].2, sender());
            step(&mut lines, &mut out, now);
        }
        // time passes: every hole is decided
        for _ in 0..64 {
            now += DEFAULT_RETRY_NS * 1000;
            step(&mut lines, &mut out, now);
        }
        (out, lines)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

        /// Any interleaving of two lossy, reordering, duplicating lines, with or without a
        /// request server: every message once, in order, or inside one announced gap; a message
        /// some line carried, or the up server had, is never lost.
        #[test]
        fn lines_deliver_the_stream_or_announce_its_gaps(
            messages in 1u64..200,
            sizes in prop::collection::vec(1u8..6, 1..5),
            plans in (line_plan(), line_plan()),
            shared in prop::collection::vec((any::<u16>(), 1u8..6), 0..3),
            picks in prop::collection::vec(any::<bool>(), 1..64),
            server in prop_oneof![Just(None), Just(Some(true)), Just(Some(false))],
            budget in 1usize..8,
            small_hold in any::<bool>(),
        ) {
            let packets = packets(messages, &sizes);
            let n = packets.len();
            let a = line_order(&plans.0, &shared, n);
            let b = line_order(&plans.1, &shared, n);
            let hold = if small_hold { 4 } else { 1024 };
            let (out, lines) = run(&packets, [&a, &b], &picks, server, budget, hold);

            // every sequence number once, in order: as its message or inside a gap
            let mut next = 1u64;
            let mut ended = false;
            let mut gaps = 0u64;
            for e in &out {
                prop_assert!(
                    !ended || matches!(e, Ev::Other(_)),
                    "{e:?} after the end of session"
                );
                match e {
                    Ev::Msg(m) => {
                        prop_assert_eq!(m, &message(next), "message {} out of place", next);
                        next += 1;
                    }
                    Ev::Gap(first, count) => {
                        prop_assert_eq!(*first, next);
                        prop_assert!(*count > 0);
                        next += count;
                        gaps += count;
                    }
                    Ev::End => ended = true,
                    Ev::Other(o) => prop_assert!(o.starts_with("Duplicate"), "{}", o),
                }
            }
            let carried = |i: usize| a.contains(&i) || b.contains(&i);
            let end_carried = carried(n - 1);
            if end_carried {
                prop_assert!(ended, "the end of session was carried but not handed over");
                prop_assert_eq!(next, messages + 1);
            }
            prop_assert_eq!(lines.recovery_stats().0.unrecovered, gaps);
            if !small_hold {
                if server == Some(true) && end_carried {
                    prop_assert_eq!(gaps, 0, "the server had every message: {:?}", out);
                }
                // a message a line carried is never given up
                for (i, (first, count, _)) in packets.iter().enumerate() {
                    if carried(i) && *count > 0 {
                        for s in *first..first + count {
                            prop_assert!(
                                out.contains(&Ev::Msg(message(s))) || s >= next,
                                "message {} was carried but lost", s
                            );
                        }
                    }
                }
            }
        }
    }

    /// A datagram of the hostile stream: where it goes, and what it is.
    #[derive(Debug, Clone)]
    enum Hostile {
        /// A well-formed packet of `session` (0: the genuine one) at `sequence`.
        Packet {
            to: u8,
            session: u8,
            sequence: u64,
            count: u8,
        },
        /// A heartbeat or end of session.
        Control { to: u8, sequence: u64, end: bool },
        /// Arbitrary bytes.
        Bytes { to: u8, bytes: Vec<u8> },
        /// Time passes.
        Wait(u32),
    }

    fn hostile() -> impl Strategy<Value = Hostile> {
        let sequence = prop_oneof![1u64..300, any::<u64>()];
        prop_oneof![
            4 => (0u8..3, 0u8..2, sequence.clone(), 0u8..6).prop_map(|(to, session, sequence, count)| {
                Hostile::Packet { to, session, sequence, count }
            }),
            1 => (0u8..3, sequence, any::<bool>())
                .prop_map(|(to, sequence, end)| Hostile::Control { to, sequence, end }),
            1 => (0u8..3, prop::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(to, bytes)| Hostile::Bytes { to, bytes }),
            1 => any::<u32>().prop_map(Hostile::Wait),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

        /// Anything on either line or from the request server: no panic, a poll keeps to its
        /// budget, every gap starts where the stream is, requests stay bounded, and the
        /// arbiter never runs away (every call returns).
        #[test]
        fn hostile_datagrams_never_break_the_stream(
            datagrams in prop::collection::vec(hostile(), 1..80),
            budget in 1usize..5,
        ) {
            let options = ArbiterOptions {
                hold: 32,
                retransmit: true,
                line_wait_ns: 100,
                retransmit_timeout_ns: 10_000,
                retry_ns: 1_000,
                ..ArbiterOptions::default()
            };
            let mut lines = Lines::new(&[ReceiverOptions::default(); 2], options);
            let mut now = 0u64;
            let mut next = 1u64;
            let sessions = [SESSION, b"FORGED0001"];
            for d in &datagrams {
                let (to, bytes) = match d {
                    Hostile::Packet { to, session, sequence, count } => {
                        let owned: Vec<Vec<u8>> = (0..u64::from(*count))
                            .map(|i| message(sequence.wrapping_add(i)))
                            .collect();
                        let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
                        let mut bytes = Vec::new();
                        encode_packet(sessions[usize::from(*session)], *sequence, &refs, &mut bytes)
                            .expect("encodable");
                        (*to, bytes)
                    }
                    Hostile::Control { to, sequence, end } => {
                        let mut bytes = Vec::new();
                        if *end {
                            encode_end_of_session(SESSION, *sequence, &mut bytes);
                        } else {
                            crate::feed::moldudp64::encode_heartbeat(SESSION, *sequence, &mut bytes);
                        }
                        (*to, bytes)
                    }
                    Hostile::Bytes { to, bytes } => (*to, bytes.clone()),
                    Hostile::Wait(ns) => {
                        now += u64::from(*ns);
                        (u8::MAX, Vec::new())
                    }
                };
                match to {
                    0 | 1 if lines.ready(usize::from(to)) => lines.push(usize::from(to), &bytes, sender()),
                    2 => {
                        let _ = lines.accept_retransmitted(&bytes, &mut |_| {});
                    }
                    _ => {}
                }
                let mut settled = false;
                for _ in 0..10_000 {
                    let mut seen = 0;
                    let mut bad = None;
                    let n = lines.deliver(budget, now, true, &mut |e| {
                        seen += 1;
                        match e {
                            FeedEvent::Restart => next = 1,
                            FeedEvent::Message(_) => next += 1,
                            FeedEvent::Gap { first, count } => {
                                if first != next || count == 0 {
                                    bad = Some((first, count, next));
                                }
                                next = first + count;
                            }
                            _ => {}
                        }
                    });
                    prop_assert!(bad.is_none(), "a gap not where the stream is: {:?}", bad);
                    prop_assert!(n <= budget && seen == n, "{} events ({} seen) for {}", n, seen, budget);
                    if let Some(r) = lines.take_request() {
                        prop_assert!(r.count > 0 && u64::from(r.count) <= MAX_REQUEST);
                        prop_assert_eq!(r.first, lines.arbiter().next_expected());
                    }
                    if n == 0 && lines.is_drained() {
                        settled = true;
                        break;
                    }
                }
                prop_assert!(settled, "deliver never settled");
            }
        }
    }

    #[test]
    fn a_shared_hole_is_requested_and_filled() {
        let packets = packets(10, &[2]);
        let options = ArbiterOptions {
            retransmit: true,
            ..ArbiterOptions::default()
        };
        let mut lines = Lines::new(&[ReceiverOptions::default(); 2], options);
        let mut out = Vec::new();
        for line in 0..2 {
            lines.push(line, &packets[0].2, sender());
            lines.deliver(64, 0, true, &mut |e| out.push(owned(e)));
        }
        // both lines lose packet 1 (messages 3, 4)
        for line in 0..2 {
            lines.push(line, &packets[2].2, sender());
            lines.deliver(64, 0, true, &mut |e| out.push(owned(e)));
        }
        let request = lines
            .take_request()
            .expect("a request once both lines passed it");
        assert_eq!((request.first, request.count), (3, 2));
        assert_eq!(out.len(), 2, "messages 5 and 6 wait in the hold: {out:?}");
        lines.accept_retransmitted(&packets[1].2, &mut |e| out.push(owned(e)));
        lines.deliver(64, 0, true, &mut |e| out.push(owned(e)));
        let want: Vec<Ev> = (1..=6).map(|s| Ev::Msg(message(s))).collect();
        assert_eq!(out, want);
        let (stats, answers, refused) = lines.recovery_stats();
        assert_eq!(
            (stats.requests, stats.recovered, answers, refused),
            (1, 2, 1, 0)
        );
        assert_eq!(lines.line_stats(0).1.first + lines.line_stats(1).1.first, 4);
    }

    #[test]
    fn an_unanswered_request_is_repeated_then_given_up() {
        let packets = packets(6, &[2]);
        let options = ArbiterOptions {
            retransmit: true,
            retry_ns: 10,
            retransmit_timeout_ns: 100,
            ..ArbiterOptions::default()
        };
        let mut lines = Lines::new(&[ReceiverOptions::default()], options);
        let mut out = Vec::new();
        for packet in [&packets[0], &packets[2]] {
            lines.push(0, &packet.2, sender());
            lines.deliver(64, 0, true, &mut |e| out.push(owned(e)));
        }
        let mut requests = 0;
        for now in (0..=100).step_by(5) {
            lines.deliver(64, now, true, &mut |e| out.push(owned(e)));
            requests += usize::from(lines.take_request().is_some());
        }
        // at 0, then after 10, 20 and 40 more: 0, 10, 30, 70; given up at 100
        assert_eq!(requests, 4);
        assert_eq!(
            out,
            [
                Ev::Msg(message(1)),
                Ev::Msg(message(2)),
                Ev::Gap(3, 2),
                Ev::Msg(message(5)),
                Ev::Msg(message(6))
            ]
        );
        assert_eq!(lines.recovery_stats().0.timeouts, 1);
    }

    #[test]
    fn a_forged_answer_of_another_session_is_refused() {
        let packets = packets(4, &[2]);
        let options = ArbiterOptions {
            retransmit: true,
            ..ArbiterOptions::default()
        };
        let mut lines = Lines::new(&[ReceiverOptions::default()], options);
        let mut out = Vec::new();
        lines.push(0, &packets[0].2, sender());
        lines.deliver(64, 0, true, &mut |e| out.push(owned(e)));
        let mut forged = Vec::new();
        encode_packet(b"FORGED0001", 3, &[b"x"], &mut forged).expect("encodable");
        lines.accept_retransmitted(&forged, &mut |e| out.push(owned(e)));
        lines.accept_retransmitted(&[1, 2, 3], &mut |e| out.push(owned(e)));
        lines.deliver(64, 0, true, &mut |e| out.push(owned(e)));
        assert_eq!(lines.arbiter().next_expected(), 3);
        assert_eq!(lines.recovery_stats().2, 2);
        assert_eq!(out.len(), 3, "two messages and one malformed: {out:?}");
    }
}
