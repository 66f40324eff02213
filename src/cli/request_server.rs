//! [`RequestServer`]: the MoldUDP64 retransmission (request) server of `pinbook publish
//! --retransmit-listen`, answering from the file.
//!
//! A request is 20 bytes, `session(10) | first sequence u64 BE | count u16 BE`; the answer is
//! ordinary MoldUDP64 packets carrying those messages, sent to the requester's address. Only
//! what was already published in the current session is sent (a request for more is cut to
//! it); a request of another session, or malformed, is refused and counted. Polled from the
//! publisher's loop, never blocking.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use anyhow::{Context, Result};
use dataplane::feed::moldudp64::{self, RequestPacket, encode_packet};

/// Requests taken per [`RequestServer::answer`] call at most, so publishing goes on.
const PER_CALL: usize = 64;

/// The request server; see the [module docs](self).
pub struct RequestServer<'a> {
    socket: UdpSocket,
    /// The messages of the current session published so far: sequence `n` at `n - 1`.
    messages: Vec<&'a [u8]>,
    batch: usize,
    max_packet: usize,
    buffer: Vec<u8>,
    packet: Vec<u8>,
    requests: u64,
    resent: u64,
    refused: u64,
}

impl<'a> RequestServer<'a> {
    /// Listens on `addr`; answers in packets of at most `batch` messages and `max_packet` bytes.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub fn bind(addr: SocketAddr, batch: usize, max_packet: usize) -> Result<RequestServer<'a>> {
        let socket = UdpSocket::bind(addr).with_context(|| {
            format!("cannot listen for retransmission requests on {addr} (port in use?)")
        })?;
        socket
            .set_nonblocking(true)
            .context("cannot make the request server's socket non-blocking")?;
        Ok(RequestServer {
            socket,
            messages: Vec::new(),
            batch: batch.clamp(1, moldudp64::MAX_MESSAGES),
            max_packet,
            buffer: vec![0; 1 << 16],
            packet: Vec::with_capacity(1 << 16),
            requests: 0,
            resent: 0,
            refused: 0,
        })
    }

    /// Records messages just published, in order.
    pub fn record(&mut self, messages: &[&'a [u8]]) {
        self.messages.extend_from_slice(messages);
    }

    /// A new session begins: what was recorded is forgotten.
    pub fn new_session(&mut self) {
        self.messages.clear();
    }

    /// Answers the requests waiting (at most [`PER_CALL`]) for `session`; returns whether there
    /// were any.
    ///
    /// # Errors
    /// The socket fails other than by having nothing to read or a requester gone.
    pub fn answer(&mut self, session: &[u8; 10]) -> Result<bool> {
        let mut any = false;
        for _ in 0..PER_CALL {
            let (len, from) = match self.socket.recv_from(&mut self.buffer) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e).context("the request server cannot receive"),
            };
            any = true;
            match RequestPacket::parse(&self.buffer[..len]) {
                Ok(request) if &request.session == session && request.first > 0 => {
                    self.requests += 1;
                    self.send(request, from)?;
                }
                _ => self.refused += 1,
            }
        }
        Ok(any)
    }

    /// Sends the messages `request` asks for that were published, to `to`.
    fn send(&mut self, request: RequestPacket, to: SocketAddr) -> Result<()> {
        let published = self.messages.len() as u64;
        let first = request.first;
        let end = first
            .saturating_add(u64::from(request.count))
            .min(published + 1);
        let mut next = first;
        while next < end {
            let mut size = moldudp64::HEADER_LEN;
            let mut batch: Vec<&[u8]> = Vec::with_capacity(self.batch);
            while next + (batch.len() as u64) < end && batch.len() < self.batch {
                // `next + len - 1 < published`: within the recorded messages
                let Some(&message) = self.messages.get((next - 1) as usize + batch.len()) else {
                    break;
                };
                if !batch.is_empty() && size + 2 + message.len() > self.max_packet {
                    break;
                }
                size += 2 + message.len();
                batch.push(message);
            }
            if batch.is_empty() {
                break;
            }
            self.packet.clear();
            encode_packet(&request.session, next, &batch, &mut self.packet)?;
            match self.socket.send_to(&self.packet, to) {
                Ok(_) => {}
                // the requester went away: nothing more to do for it
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Ok(()),
                Err(e) => return Err(e).with_context(|| format!("cannot answer {to}")),
            }
            self.resent += batch.len() as u64;
            next += batch.len() as u64;
        }
        Ok(())
    }

    /// One line for the end of the run.
    pub fn summary(&self) -> String {
        format!(
            "retransmission: {} requests answered with {} messages, {} refused",
            self.requests, self.resent, self.refused
        )
    }
}
