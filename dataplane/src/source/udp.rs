//! [`UdpSource`]: MoldUDP64 packets from a non-blocking UDP socket, unicast or multicast.
//!
//! Each datagram is read (with its sender) into a preallocated 64 KiB buffer and judged by a
//! [`Receiver`], which decides what to believe; its messages are handed over as slices of the
//! buffer. The shard learns of every gap, duplicate, heartbeat, end of session, restart and
//! rejected datagram, in feed order:
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
//! A UDP source never ends: after an end of session a new session may start.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use super::mold_receiver::Receiver;
pub use super::mold_receiver::{DEFAULT_WINDOW, ReceiverOptions, SenderFilter, UdpStats};
use super::{FeedEvent, FeedSource, Polled};

/// Kernel receive buffer asked for, so a burst waits in the kernel rather than being dropped
/// while the shard is busy (the kernel may grant less; that is not an error).
const RECEIVE_BUFFER: usize = 8 << 20;

/// A MoldUDP64 feed on a UDP socket; see the [module docs](self).
#[derive(Debug)]
pub struct UdpSource {
    socket: UdpSocket,
    requested: SocketAddr,
    multicast: bool,
    receiver: Receiver,
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

    /// Binds a non-blocking socket for `addr`, judging datagrams by `options`.
    ///
    /// For an IPv4 multicast group, binds `0.0.0.0:port` with `SO_REUSEADDR` and joins the
    /// group on the default interface, so several shards (or processes) on one host each
    /// receive the whole feed. Any other address is bound as given (port 0 picks a free port;
    /// see [`UdpSource::local_addr`]). Allocates its buffers here and never after.
    ///
    /// # Errors
    /// The socket cannot be created, bound (the port is taken, or the address is not local)
    /// or joined to the group; the message names the address.
    pub fn bind_with(addr: SocketAddr, options: ReceiverOptions) -> io::Result<UdpSource> {
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
            receiver: Receiver::new(options),
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
        self.receiver.stats()
    }

    /// The session believed (`None` before the first).
    pub fn session(&self) -> Option<&[u8; 10]> {
        self.receiver.session()
    }

    /// The next sequence number expected in the session believed.
    pub fn next_expected(&self) -> u64 {
        self.receiver.next_expected()
    }
}

impl FeedSource for UdpSource {
    /// Hands over queued events and pending messages, then reads datagrams until `max` events
    /// were handed over or the socket has nothing more (one `recv` syscall when idle). A
    /// packet larger than what is left of `max` is finished by the next polls.
    /// Hands over what the last datagram caused, then reads datagrams until `max` events were
    /// handed over or the socket has nothing more (one `recv_from` syscall when idle). A
    /// packet larger than what is left of `max` is finished by the next polls.
    fn poll(&mut self, _now: u64, max: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> Polled {
        let mut events = 0;
        loop {
            events += self.receiver.deliver(max - events, sink);
            if events >= max || !self.receiver.is_drained() {
                break;
            }
            match self.socket.recv_from(self.receiver.buffer()) {
                Ok((len, from)) => self.receiver.accept(len, from),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // Whatever the datagram held is gone: count it where the operator looks.
                    self.receiver.count_receive_error();
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
        let line = if self.multicast {
            format!(
                "udp multicast {} (bound {local}), MoldUDP64",
                self.requested
            )
        } else {
            format!("udp {local}, MoldUDP64")
        };
        match self.receiver.options().source {
            Some(source) => format!("{line}, from {source} only"),
            None => line,
        }
    }
}
