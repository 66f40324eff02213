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

    /// How many lines there are.
    pub fn len(&self) -> usize {
        self.receivers.len()
    }

    /// Whether there are no lines (never, when made with at least one).
    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
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
        if self.arbiter.hole_open()
            && receiver.options().source.is_none_or(|f| f.admits(from))
            && let Some(session) = self.arbiter.session()
            && let Ok(packet) = Packet::parse(receiver.received(len))
            && packet.session() == session
            && packet.sequence() < receiver.next_expected()
            && packet.validate().is_ok()
        {
            // behind this line's own position: its receiver drops it, but the hole may need it
            let behind = receiver.next_expected();
            for (i, message) in packet.messages().flatten().enumerate() {
                let sequence = packet.sequence() + i as u64;
                if sequence >= behind {
                    break;
                }
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
        if self.arbiter.session() != Some(packet.session()) {
            self.retransmit_refused += 1;
            return 0;
        }
        if packet.kind() == PacketKind::Messages {
            for (i, message) in packet.messages().flatten().enumerate() {
                self.arbiter
                    .hold(packet.sequence() + i as u64, message, Origin::Retransmit);
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
        sink: &mut dyn FnMut(FeedEvent<'_>),
    ) -> usize {
        let mut events = 0;
        loop {
            events += self.arbiter.drain(budget - events, sink);
            if events >= budget {
                return events;
            }
            if let Some((line, receiver)) = self
                .receivers
                .iter_mut()
                .enumerate()
                .find(|(_, r)| !r.is_drained())
            {
                let session = receiver.session().copied();
                let arbiter = &mut self.arbiter;
                let mut emitted = 0;
                receiver.deliver(budget - events, &mut |event| {
                    emitted += arbiter.on_line(line, session.as_ref(), event, sink);
                });
                events += emitted;
                continue;
            }
            if self.arbiter.can_drain() {
                continue;
            }
            let (gave_up, request) = self.arbiter.tick(now_ns, sink);
            if request.is_some() {
                self.request = request;
            }
            events += gave_up;
            if gave_up == 0 {
                return events;
            }
        }
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
