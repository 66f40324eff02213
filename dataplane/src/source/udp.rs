//! [`UdpSource`]: MoldUDP64 packets from one or two non-blocking UDP sockets (lines A and B),
//! unicast or multicast, and optionally a retransmission (request) server.
//!
//! Each datagram is read (with its sender) into its line's preallocated 64 KiB buffer and judged
//! by the line's [`Receiver`](super::mold_receiver::Receiver), which decides what to believe;
//! the [`Arbiter`](super::arbiter::Arbiter) takes each sequence number once, in order, from
//! whichever line (or the request server) has it first, holding what comes early, and decides
//! when a stretch every line lost is asked for or given up (see [`super::lines`]). In-order
//! messages are handed over as slices of the buffer. With one line, the shard learns of every
//! gap, duplicate, heartbeat, end of session, restart and rejected datagram, in feed order (a
//! gap once it has waited `line_wait_ns` for a late packet, or a request server did not fill
//! it):
//!
//! | datagram                                            | events                                              |
//! |-----------------------------------------------------|-----------------------------------------------------|
//! | from another sender than `@SOURCE` (when given)     | `Rejected(ForeignSender)`                           |
//! | unreadable, or blocks that do not match its count   | `Malformed`; nothing of it delivered, the sequence does not move |
//! | next in order                                       | its messages                                        |
//! | ahead of the next expected, within the window       | `Gap { first, count }`, then its messages           |
//! | already seen                                        | `Duplicate { count }`                               |
//! | partly seen                                         | `Duplicate { count: skipped }`, then the new ones   |
//! | heartbeat                                           | `Heartbeat` (a `Gap` if it reveals lost messages)   |
//! | end of session                                      | a `Gap` if messages were lost before it, then `EndOfSession` |
//! | beyond the window (messages, heartbeat, end)        | held; once a next packet continues it: `Gap`, its events, the next packet's. If the session goes on instead: `Rejected(ImplausibleSequence)` |
//! | another session, before any or after an end of session, within the window from 1 | `Restart` (not for the first session), then its events |
//! | another session, while the current one is live      | held; once a next packet of it continues it: `Restart`, its events, the next packet's. If dropped: `Rejected(ForeignSession)` |
//!
//! The window defaults to [`DEFAULT_WINDOW`] messages; the [`mold_receiver`](super::mold_receiver)
//! docs give the exact rules and what they do not defend against.
//!
//! A UDP source never ends: after an end of session a new session may start. Its syscalls are
//! the reads of its sockets (the request server's only while an answer is awaited) and the
//! requests' sends; nothing is allocated after [`UdpSource::open`].

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

pub use super::arbiter::{ArbiterOptions, LineStats, RecoveryStats};
use super::lines::Lines;
pub use super::mold_receiver::{DEFAULT_WINDOW, ReceiverOptions, SenderFilter, UdpStats};
use super::{FeedEvent, FeedSource, FeedStats, Polled};
use crate::feed::moldudp64::encode_request;

/// Kernel receive buffer asked for, so a burst waits in the kernel rather than being dropped
/// while the shard is busy (the kernel may grant less; that is not an error).
const RECEIVE_BUFFER: usize = 8 << 20;

/// One line: its socket and what was asked for.
#[derive(Debug)]
struct Line {
    socket: UdpSocket,
    requested: SocketAddr,
    multicast: bool,
}

/// The request server's socket (connected, so only its answers are read) and its buffers.
#[derive(Debug)]
struct RequestServer {
    socket: UdpSocket,
    server: SocketAddr,
    answer: Box<[u8]>,
    request: Vec<u8>,
    /// Requests that could not be sent (the server's port closed, no route).
    send_errors: u64,
}

/// Where a UDP feed comes from: its lines, and the request server if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpFeedOptions {
    /// One or two lines (A, B): the address to bind and how its datagrams are judged.
    pub lines: Vec<(SocketAddr, ReceiverOptions)>,
    /// The MoldUDP64 request server to ask for what every line lost.
    pub retransmit: Option<SocketAddr>,
    /// How the lines are arbitrated (its `lines` and `retransmit` are set from the above).
    pub arbiter: ArbiterOptions,
}

/// A MoldUDP64 feed on one or two UDP sockets, with an optional request server; see the
/// [module docs](self).
#[derive(Debug)]
pub struct UdpSource {
    lines: Vec<Line>,
    core: Lines,
    retransmit: Option<RequestServer>,
    /// The line read first at the next poll (they take turns).
    turn: usize,
}

/// Binds a non-blocking socket for `addr`: see [`UdpSource::bind_with`].
fn bind_line(addr: SocketAddr) -> io::Result<Line> {
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
            // Linux delivers every group joined on the port to every socket bound to it unless
            // told not to: lines A and B on one port would each get both
            #[cfg(target_os = "linux")]
            socket
                .set_multicast_all_v4(false)
                .map_err(|e| context("set IP_MULTICAST_ALL off on", e))?;
            true
        }
        _ => {
            socket
                .bind(&addr.into())
                .map_err(|e| context("bind (is the port in use, or the address not local?)", e))?;
            false
        }
    };
    // Only a hint: a smaller buffer works, it just drops sooner under a burst.
    let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER);
    socket
        .set_nonblocking(true)
        .map_err(|e| context("make non-blocking the", e))?;
    Ok(Line {
        socket: socket.into(),
        requested: addr,
        multicast,
    })
}

/// A non-blocking socket connected to the request server `server`.
fn connect_request_server(server: SocketAddr) -> io::Result<RequestServer> {
    let context = |what: &str, e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot {what} the socket for the retransmission server {server}: {e}"),
        )
    };
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(|e| context("bind", e))?;
    socket
        .connect(server)
        .map_err(|e| context("connect (no route?)", e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| context("make non-blocking", e))?;
    Ok(RequestServer {
        socket,
        server,
        answer: vec![0; super::mold_receiver::DATAGRAM_BUFFER].into_boxed_slice(),
        request: Vec::with_capacity(crate::feed::moldudp64::HEADER_LEN),
        send_errors: 0,
    })
}

impl UdpSource {
    /// Binds a non-blocking socket for `addr`, reading from any sender with the default
    /// window; see [`UdpSource::bind_with`].
    ///
    /// # Errors
    /// As [`UdpSource::bind_with`].
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSource> {
        Self::bind_with(addr, ReceiverOptions::default())
    }

    /// One line: binds a non-blocking socket for `addr`, judging datagrams by `options`, with
    /// no request server.
    ///
    /// For an IPv4 multicast group, binds `0.0.0.0:port` with `SO_REUSEADDR` and joins the
    /// group on the default interface, so several shards (or processes) on one host each
    /// receive the whole feed. Any other address is bound as given (port 0 picks a free port;
    /// see [`UdpSource::local_addr`]). Allocates its buffers here and never after.
    ///
    /// # Errors
    /// The socket cannot be created, bound (the port is taken, or the address not local)
    /// or joined to the group; the message names the address.
    pub fn bind_with(addr: SocketAddr, options: ReceiverOptions) -> io::Result<UdpSource> {
        Self::open(&UdpFeedOptions {
            lines: vec![(addr, options)],
            retransmit: None,
            arbiter: ArbiterOptions::default(),
        })
    }

    /// One or two lines, each bound as [`UdpSource::bind_with`] binds one, arbitrated, and the
    /// request server's socket if one is named. Allocates everything here (the hold of
    /// `options.arbiter.hold` messages included) and never after.
    ///
    /// # Errors
    /// A socket cannot be made (the message names the address), or no line or more than two
    /// are given.
    pub fn open(options: &UdpFeedOptions) -> io::Result<UdpSource> {
        if options.lines.is_empty() || options.lines.len() > super::arbiter::MAX_LINES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a UDP feed has one or two lines (A and B), not {}",
                    options.lines.len()
                ),
            ));
        }
        let lines = options
            .lines
            .iter()
            .map(|(addr, _)| bind_line(*addr))
            .collect::<io::Result<Vec<Line>>>()?;
        let retransmit = options.retransmit.map(connect_request_server).transpose()?;
        let receivers: Vec<ReceiverOptions> = options.lines.iter().map(|(_, o)| *o).collect();
        Ok(UdpSource {
            lines,
            core: Lines::new(
                &receivers,
                ArbiterOptions {
                    retransmit: retransmit.is_some(),
                    ..options.arbiter
                },
            ),
            retransmit,
            turn: 0,
        })
    }

    /// The address the first line's socket is bound to (the port chosen, when bound to port 0).
    ///
    /// # Errors
    /// The operating system's error, if the socket's name cannot be read.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.line_addr(0)
    }

    /// The address line `line`'s socket is bound to.
    ///
    /// # Errors
    /// The operating system's error, or `NotFound` for a line that does not exist.
    pub fn line_addr(&self, line: usize) -> io::Result<SocketAddr> {
        match self.lines.get(line) {
            Some(l) => l.socket.local_addr(),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no such line")),
        }
    }

    /// The first line's receiver counters.
    pub fn stats(&self) -> UdpStats {
        self.core.line_stats(0).0
    }

    /// Line `line`'s receiver and arbitration counters.
    pub fn line_stats(&self, line: usize) -> (UdpStats, LineStats) {
        self.core.line_stats(line)
    }

    /// The recovery counters.
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.core.recovery_stats().0
    }

    /// The session followed (`None` before the first).
    pub fn session(&self) -> Option<&[u8; 10]> {
        self.core.arbiter().session()
    }

    /// The next sequence number handed over.
    pub fn next_expected(&self) -> u64 {
        self.core.arbiter().next_expected()
    }

    /// Sends the request the arbiter decided on, if any (a failed send is counted; the request
    /// is repeated after its backoff anyway).
    fn send_request(&mut self) {
        let (Some(request), Some(server)) = (self.core.take_request(), &mut self.retransmit) else {
            return;
        };
        server.request.clear();
        encode_request(
            &request.session,
            request.first,
            request.count,
            &mut server.request,
        );
        if server.socket.send(&server.request).is_err() {
            server.send_errors += 1;
        }
    }

    /// Receives one datagram: an answer of the request server first while one is awaited (it
    /// fills a hole), else the next line's — the line behind an open hole first, the lines in
    /// turn otherwise. Returns false when no socket had one.
    fn receive(&mut self, sink: &mut dyn FnMut(FeedEvent<'_>), events: &mut usize) -> bool {
        if self.core.awaiting_answers()
            && let Some(server) = &mut self.retransmit
        {
            loop {
                match server.socket.recv(&mut server.answer) {
                    Ok(len) => {
                        *events += self.core.accept_retransmitted(&server.answer[..len], sink);
                        return true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // would block, or the server's port is closed (an ICMP error): nothing
                    _ => break,
                }
            }
        }
        let first = self.core.behind().unwrap_or(self.turn);
        for k in 0..self.lines.len() {
            let line = (first + k) % self.lines.len();
            if !self.core.ready(line) {
                continue;
            }
            let Some(socket) = self.lines.get(line).map(|l| &l.socket) else {
                continue;
            };
            loop {
                match socket.recv_from(self.core.buffer(line)) {
                    Ok((len, from)) => {
                        self.core.accept(line, len, from);
                        self.turn = line + 1;
                        return true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        // Whatever the datagram held is gone: count it where the operator looks.
                        if let Some(r) = self.core.receiver_mut(line) {
                            r.count_receive_error();
                        }
                        sink(FeedEvent::Malformed {
                            what: "receiving from the feed socket failed",
                        });
                        *events += 1;
                        self.turn = line + 1;
                        return true;
                    }
                }
            }
        }
        false
    }
}

impl FeedSource for UdpSource {
    /// Hands over what was received and can be (see [`Lines::deliver`]), then reads datagrams
    /// until `max` events were handed over or no socket has anything more (one `recv` syscall
    /// per socket when idle). A packet larger than what is left of `max` is finished by the
    /// next polls.
    fn poll(&mut self, now: u64, max: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> Polled {
        let mut events = 0;
        // datagrams read, bounded like events: ones that hand nothing over (held, late, or
        // refused answers) must not keep the poll going forever
        let mut datagrams = 0;
        loop {
            events += self
                .core
                .deliver(max.saturating_sub(events), now, false, sink);
            self.send_request();
            if events >= max || !self.core.is_drained() {
                break;
            }
            if datagrams < max && self.receive(sink, &mut events) {
                datagrams += 1;
                continue;
            }
            // every socket is empty (or the poll read its share): now a hole's time may run out
            let gave_up = self
                .core
                .deliver(max.saturating_sub(events), now, true, sink);
            self.send_request();
            events += gave_up;
            if gave_up == 0 || datagrams >= max {
                break;
            }
        }
        if events == 0 {
            Polled::Idle
        } else {
            Polled::Events(events)
        }
    }

    fn feed_stats(&self) -> Option<FeedStats> {
        let (a, a_line) = self.core.line_stats(0);
        let (b, b_line) = self.core.line_stats(1);
        let (recovery, answers, _) = self.core.recovery_stats();
        Some(FeedStats {
            a_packets: a.packets,
            b_packets: b.packets,
            a_first: a_line.first,
            b_first: b_line.first,
            a_late: a_line.late,
            b_late: b_line.late,
            a_missed: a_line.missed,
            b_missed: b_line.missed,
            retransmit_requests: recovery.requests,
            retransmit_send_errors: self.retransmit.as_ref().map_or(0, |r| r.send_errors),
            retransmit_packets: answers,
            recovered: recovery.recovered,
            timeouts: recovery.timeouts,
            hold_full: recovery.hold_full,
        })
    }

    fn describe(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.lines.iter().enumerate() {
            let local = line
                .socket
                .local_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string());
            if i > 0 {
                out.push_str("; ");
            }
            if self.lines.len() > 1 {
                out.push_str(if i == 0 { "line A " } else { "line B " });
            }
            if line.multicast {
                out.push_str(&format!(
                    "udp multicast {} (bound {local}), MoldUDP64",
                    line.requested
                ));
            } else {
                out.push_str(&format!("udp {local}, MoldUDP64"));
            }
            if let Some(source) = self.core.receiver(i).and_then(|r| r.options().source) {
                out.push_str(&format!(", from {source} only"));
            }
        }
        if let Some(server) = &self.retransmit {
            out.push_str(&format!("; retransmission from {}", server.server));
        }
        out
    }
}
