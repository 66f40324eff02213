//! [`UdpSource`]: MoldUDP64 packets from a non-blocking UDP socket, unicast or multicast.
//!
//! Each datagram is read into one preallocated 64 KiB buffer and its messages are handed over
//! as slices of it. A packet's sequence numbers go through a [`SequenceTracker`], so the shard
//! learns of every gap, duplicate, heartbeat and end of session, in feed order:
//!
//! | packet                       | events                                              |
//! |------------------------------|-----------------------------------------------------|
//! | next in order                | its messages                                        |
//! | ahead of the next expected   | `Gap { first, count }`, then its messages           |
//! | already seen                 | `Duplicate { count }`                               |
//! | partly seen                  | `Duplicate { count: skipped }`, then the new ones   |
//! | heartbeat                    | `Heartbeat` (a `Gap` if it reveals lost messages)   |
//! | end of session               | a `Gap` if messages were lost before it, then `EndOfSession` |
//! | new session id               | `Restart` first (the tracker starts over at 1)      |
//! | unreadable                   | `Malformed`; a bad block drops the rest of the packet |
//!
//! A UDP source never ends: after an end of session a new session may start.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use super::{FeedEvent, FeedSource, Polled};
use crate::feed::moldudp64::{MoldError, Observation, Packet, SequenceTracker};

/// The largest UDP payload, so no datagram is ever cut.
const DATAGRAM_BUFFER: usize = 64 * 1024;

/// Kernel receive buffer asked for, so a burst waits in the kernel rather than being dropped
/// while the shard is busy (the kernel may grant less; that is not an error).
const RECEIVE_BUFFER: usize = 8 << 20;

/// Control events one packet can cause before its messages: restart, gap, end of session.
const MAX_CONTROL: usize = 3;

/// Counters of a [`UdpSource`], since it was bound.
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
    /// Malformed packets (or message blocks) skipped.
    pub malformed: u64,
    /// Receive calls that failed with an error other than "would block".
    pub receive_errors: u64,
}

/// The messages of the packet in the buffer that are still to be handed over.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// The datagram's length in the buffer.
    len: usize,
    /// Index of the next message to hand over.
    next: u16,
}

/// A MoldUDP64 feed on a UDP socket; see the [module docs](self).
#[derive(Debug)]
pub struct UdpSource {
    socket: UdpSocket,
    requested: SocketAddr,
    multicast: bool,
    buf: Box<[u8]>,
    tracker: SequenceTracker,
    session: Option<[u8; 10]>,
    control: [FeedEvent<'static>; MAX_CONTROL],
    control_len: usize,
    control_pos: usize,
    pending: Option<Pending>,
    stats: UdpStats,
}

impl UdpSource {
    /// Binds a non-blocking socket for `addr`.
    ///
    /// For an IPv4 multicast group, binds `0.0.0.0:port` with `SO_REUSEADDR` and joins the
    /// group on the default interface, so several shards (or processes) on one host each
    /// receive the whole feed. Any other address is bound as given (port 0 picks a free port;
    /// see [`UdpSource::local_addr`]).
    ///
    /// # Errors
    /// The socket cannot be created, bound (the port is taken, or the address is not local)
    /// or joined to the group; the message names the address.
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSource> {
        let context = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot {what} UDP feed socket for {addr}: {e}"),
            )
        };
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| context("create", e))?;
        let multicast = match addr.ip() {
            IpAddr::V4(group) if group.is_multicast() => {
                socket
                    .set_reuse_address(true)
                    .map_err(|e| context("set SO_REUSEADDR on", e))?;
                let any = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
                socket
                    .bind(&any.into())
                    .map_err(|e| context(&format!("bind (port {} in use?)", addr.port()), e))?;
                socket
                    .join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
                    .map_err(|e| context("join the multicast group with", e))?;
                true
            }
            _ => {
                socket.bind(&addr.into()).map_err(|e| {
                    context("bind (is the port in use, or the address not local?)", e)
                })?;
                false
            }
        };
        // Only a hint: a smaller buffer works, it just drops sooner under a burst.
        let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
        socket
            .set_nonblocking(true)
            .map_err(|e| context("make non-blocking the", e))?;
        Ok(UdpSource {
            socket: socket.into(),
            requested: addr,
            multicast,
            buf: vec![0; DATAGRAM_BUFFER].into_boxed_slice(),
            tracker: SequenceTracker::new(),
            session: None,
            control: [FeedEvent::Heartbeat; MAX_CONTROL],
            control_len: 0,
            control_pos: 0,
            pending: None,
            stats: UdpStats::default(),
        })
    }

    /// The address the socket is bound to (the port chosen, when bound to port 0).
    ///
    /// # Errors
    /// The operating system's error, if the socket's name cannot be read.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The counters so far.
    pub fn stats(&self) -> UdpStats {
        self.stats
    }

    /// The session id of the last packet read (`None` before the first).
    pub fn session(&self) -> Option<&[u8; 10]> {
        self.session.as_ref()
    }

    /// The next sequence number expected in the current session.
    pub fn next_expected(&self) -> u64 {
        self.tracker.next_expected()
    }

    fn push_control(&mut self, event: FeedEvent<'static>) {
        if let Some(slot) = self.control.get_mut(self.control_len) {
            *slot = event;
            self.control_len += 1;
        }
    }

    /// Classifies the datagram of `len` bytes in the buffer: queues its control events and
    /// marks its new messages pending.
    fn accept(&mut self, len: usize) {
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
        self.control_len = 0;
        self.control_pos = 0;
        self.pending = None;
        let packet = match Packet::parse(&self.buf[..len]) {
            Ok(packet) => packet,
            Err(e) => {
                self.stats.malformed += 1;
                return self.push_control(FeedEvent::Malformed { what: describe(&e) });
            }
        };
        let (session, sequence, count) = (*packet.session(), packet.sequence(), packet.count());
        let declared = packet.message_count();
        if self.session != Some(session) {
            if self.session.is_some() {
                self.tracker = SequenceTracker::new();
                self.push_control(FeedEvent::Restart);
            }
            self.session = Some(session);
        }
        let expected = self.tracker.next_expected();
        let mut first_new = 0;
        match self.tracker.observe(sequence, count) {
            Observation::InOrder => {}
            Observation::Gap {
                first_missing,
                missing,
            } => {
                self.stats.missed += missing;
                self.push_control(FeedEvent::Gap {
                    first: first_missing,
                    count: missing,
                });
            }
            Observation::Duplicate => {
                first_new = declared;
                self.stats.duplicates += u64::from(declared);
                self.push_control(FeedEvent::Duplicate {
                    count: u64::from(declared),
                });
            }
            Observation::Overlap { skip, .. } => {
                first_new = skip;
                self.stats.duplicates += u64::from(skip);
                self.push_control(FeedEvent::Duplicate {
                    count: u64::from(skip),
                });
            }
            Observation::Heartbeat => self.push_control(FeedEvent::Heartbeat),
            Observation::EndOfSession { missing } => {
                if missing > 0 {
                    self.stats.missed += missing;
                    self.push_control(FeedEvent::Gap {
                        first: expected,
                        count: missing,
                    });
                }
                self.push_control(FeedEvent::EndOfSession);
            }
        }
        if first_new < declared {
            self.pending = Some(Pending {
                len,
                next: first_new,
            });
        }
    }

    /// Hands over up to `budget` pending messages (a malformed block counts as one event and
    /// drops the rest); returns the events handed over.
    fn deliver(&mut self, budget: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> usize {
        let Some(Pending { len, next }) = self.pending else {
            return 0;
        };
        let Ok(packet) = Packet::parse(&self.buf[..len]) else {
            // `accept` parsed it already; nothing to deliver otherwise.
            self.pending = None;
            return 0;
        };
        let mut events = 0;
        let mut index = next;
        let mut finished = false;
        let mut messages = packet.messages().skip(usize::from(next));
        while events < budget {
            match messages.next() {
                Some(Ok(message)) => {
                    sink(FeedEvent::Message(message));
                    index += 1;
                    events += 1;
                }
                Some(Err(e)) => {
                    self.stats.malformed += 1;
                    sink(FeedEvent::Malformed { what: describe(&e) });
                    events += 1;
                    finished = true;
                    break;
                }
                None => {
                    finished = true;
                    break;
                }
            }
        }
        self.stats.messages += u64::from(index - next);
        self.pending = (!finished).then_some(Pending { len, next: index });
        events
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

impl FeedSource for UdpSource {
    /// Hands over queued events and pending messages, then reads datagrams until `max` events
    /// were handed over or the socket has nothing more (one `recv` syscall when idle). A
    /// packet larger than what is left of `max` is finished by the next polls.
    fn poll(&mut self, _now: u64, max: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> Polled {
        let mut events = 0;
        while events < max {
            while events < max && self.control_pos < self.control_len {
                sink(self.control[self.control_pos]);
                self.control_pos += 1;
                events += 1;
            }
            if events == max {
                break;
            }
            if self.pending.is_some() {
                events += self.deliver(max - events, sink);
                if self.pending.is_some() {
                    continue;
                }
            }
            match self.socket.recv(&mut self.buf) {
                Ok(len) => self.accept(len),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // Whatever the datagram held is gone: count it where the operator looks.
                    self.stats.receive_errors += 1;
                    sink(FeedEvent::Malformed {
                        what: "receiving from the feed socket failed",
                    });
                    events += 1;
                    break;
                }
            }
        }
        if events == 0 {
            Polled::Idle
        } else {
            Polled::Events(events)
        }
    }

    fn describe(&self) -> String {
        let local = self
            .local_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string());
        if self.multicast {
            format!(
                "udp multicast {} (bound {local}), MoldUDP64",
                self.requested
            )
        } else {
            format!("udp {local}, MoldUDP64")
        }
    }
}
