//! `pinbook publish`: send an ITCH 5.0 BinaryFILE as a MoldUDP64 feed over UDP.
//!
//! The other end of [`dataplane::source::udp::UdpSource`]: a test feed for a shard, paced at a
//! fixed rate with no coordinated omission (see [`Pacer`]), on one line or two identical lines
//! (A and B), each failing on purpose as told ([`Faults`]: drops, bursts, reordering,
//! duplicates, seeded), and optionally a MoldUDP64 retransmission (request) server answering
//! from the file ([`RequestServer`]) — everything a receiver's arbitration and recovery must
//! survive, reproducibly.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dataplane::clock;
use dataplane::feed::binaryfile::{BinaryFile, FrameError};
use dataplane::feed::moldudp64::{self, encode_end_of_session, encode_heartbeat, encode_packet};
use dataplane::source::pacer::Pacer;

use super::faults::{FaultCounts, FaultPlan, Faults};
use super::request_server::RequestServer;

/// The largest packet built (header included), so a packet fits an Ethernet frame.
const MAX_PACKET: usize = 1400;

/// End-of-session packets sent at the end, since UDP may lose one.
const END_REPEATS: usize = 3;

/// A heartbeat goes out after this long without a packet.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// Arguments of `pinbook publish`.
#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// The BinaryFILE to send (u16 length, message, repeated), e.g. from `pinbook gen`.
    pub file: PathBuf,
    /// Where to send: HOST:PORT, unicast or an IPv4 multicast group (e.g. 239.1.1.1:26400);
    /// two, comma-separated, send the same packets on lines A and B.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT]")]
    pub udp: String,
    /// Messages per second; 0 sends as fast as possible.
    #[arg(long, default_value_t = 1_000_000)]
    pub rate: u64,
    /// Most messages per packet (a packet is also kept within 1400 bytes).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub batch: u16,
    /// Skip sending every K-th packet; its sequence numbers are still used, so receivers see
    /// a gap. 0 sends every packet.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub drop_every: u64,
    /// Per line (one value for both, or A,B): the share of packets lost, in bursts.
    #[arg(long, value_name = "P[,P]", value_delimiter = ',', value_parser = parse_probability)]
    pub drop: Vec<f64>,
    /// Per line: packets a drop burst takes.
    #[arg(long, value_name = "N[,N]", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub drop_burst: Vec<u32>,
    /// Per line: probability that a packet is sent after the next one.
    #[arg(long, value_name = "P[,P]", value_delimiter = ',', value_parser = parse_probability)]
    pub reorder: Vec<f64>,
    /// Per line: probability that a packet is sent twice.
    #[arg(long, value_name = "P[,P]", value_delimiter = ',', value_parser = parse_probability)]
    pub duplicate: Vec<f64>,
    /// Per line: the seed of its faults (default 1 for A, 2 for B; give the same seed to both
    /// lines to make them fail on the same packets).
    #[arg(long, value_name = "S[,S]", value_delimiter = ',')]
    pub seed: Vec<u64>,
    /// Answer MoldUDP64 retransmission requests on this address, from the file (what was sent
    /// of the current session).
    #[arg(long, value_name = "IP:PORT")]
    pub retransmit_listen: Option<SocketAddr>,
    /// With --retransmit-listen: keep answering requests this many seconds after the end.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub linger: f64,
    /// MoldUDP64 session name: at most 10 printable ASCII characters, space-padded.
    #[arg(long, default_value = "PINBOOK", value_parser = parse_session)]
    pub session: Session,
    /// Send the file again and again. Each pass ends its session and starts a new one, whose
    /// name carries the pass number in its last characters ("PINBOOK  1"), so receivers
    /// restart their books.
    #[arg(long = "loop")]
    pub looping: bool,
}

/// A MoldUDP64 session name, padded to its 10 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session(pub [u8; 10]);

impl Session {
    /// The session of pass `pass` (0 is the first): the name itself, then the name with the
    /// pass number written over its last characters.
    fn for_pass(self, pass: u64) -> [u8; 10] {
        let mut name = self.0;
        if pass > 0 {
            let digits = pass.to_string();
            let digits = &digits.as_bytes()[digits.len().saturating_sub(name.len())..];
            let start = name.len() - digits.len();
            name[start..].copy_from_slice(digits);
        }
        name
    }
}

fn parse_session(text: &str) -> Result<Session, String> {
    if text.len() > 10 || !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(format!(
            "{text:?} is not a MoldUDP64 session name: use at most 10 printable ASCII characters"
        ));
    }
    let mut name = [b' '; 10];
    name[..text.len()].copy_from_slice(text.as_bytes());
    Ok(Session(name))
}

fn parse_probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "{text:?} is not a probability: give a number from 0 to 1, e.g. 0.01"
        )),
    }
}

/// The `index`th of a per-line list: its own value, else the only one, else `default`.
fn per_line<T: Copy>(values: &[T], index: usize, default: T) -> T {
    values
        .get(index)
        .or(if values.len() == 1 {
            values.first()
        } else {
            None
        })
        .copied()
        .unwrap_or(default)
}

/// The fault plan of line `index`.
fn plan(args: &PublishArgs, index: usize) -> FaultPlan {
    FaultPlan {
        drop: per_line(&args.drop, index, 0.0),
        drop_burst: per_line(&args.drop_burst, index, 1),
        reorder: per_line(&args.reorder, index, 0.0),
        duplicate: per_line(&args.duplicate, index, 0.0),
        seed: per_line(&args.seed, index, index as u64 + 1),
    }
}

fn resolve(udp: &str) -> Result<SocketAddr> {
    let context = || {
        format!(
            "cannot resolve --udp {udp:?} (expected HOST:PORT, e.g. 127.0.0.1:26400 or 239.1.1.1:26400)"
        )
    };
    udp.to_socket_addrs()
        .with_context(context)?
        .next()
        .with_context(context)
}

/// One line: its socket (connected, so a target not listening yet is reported), and what goes
/// wrong on it.
struct Line {
    socket: UdpSocket,
    target: SocketAddr,
    faults: Faults,
}

impl Line {
    fn open(target: SocketAddr, plan: FaultPlan) -> Result<Line> {
        let local: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket =
            UdpSocket::bind(local).context("cannot bind a local UDP socket to send from")?;
        socket
            .connect(target)
            .with_context(|| format!("cannot send to --udp {target} (no route?)"))?;
        Ok(Line {
            socket,
            target,
            faults: Faults::new(plan),
        })
    }
}

/// The lines and the counters of a run.
struct Sender {
    lines: Vec<Line>,
    drop_every: u64,
    packet: Vec<u8>,
    /// Message packets built, sent (on at least one line) or dropped (`--drop-every`).
    built: u64,
    /// Message packets every line's faults dropped (lost unless retransmitted), and their
    /// messages.
    dropped_on_all: u64,
    dropped_on_all_messages: u64,
    sent: u64,
    dropped: u64,
    /// Datagrams the kernel refused because nobody listens (a local target not up yet).
    refused: u64,
    messages: u64,
    last_send: Instant,
}

/// Sends `datagram` to `target`; a refusal (nobody listens yet) is counted, not an error.
fn send_to(
    socket: &UdpSocket,
    datagram: &[u8],
    target: SocketAddr,
    refused: &mut u64,
) -> Result<()> {
    match socket.send(datagram) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            *refused += 1;
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot send to {target}")),
    }
}

impl Sender {
    /// Sends the current packet on every line, through its faults: a packet of `Some(n)`
    /// messages, which faults may drop, hold back or repeat; else (`None`) a heartbeat or end
    /// of session, before which a held packet goes out.
    fn send_current(&mut self, messages: Option<usize>) -> Result<()> {
        self.last_send = Instant::now();
        let Sender {
            lines,
            packet,
            refused,
            ..
        } = self;
        let mut result = Ok(());
        let mut dropped = 0;
        for line in lines.iter_mut() {
            let (socket, target) = (&line.socket, line.target);
            let mut send = |d: &[u8]| {
                if result.is_ok() {
                    result = send_to(socket, d, target, refused);
                }
            };
            if messages.is_some() {
                dropped += usize::from(line.faults.message(packet, &mut send));
            } else {
                line.faults.flush(&mut send);
                send(packet);
            }
        }
        if let Some(n) = messages
            && dropped == lines.len()
        {
            self.dropped_on_all += 1;
            self.dropped_on_all_messages += n as u64;
        }
        result
    }

    fn messages(&mut self, session: &[u8; 10], sequence: u64, batch: &[&[u8]]) -> Result<()> {
        self.built += 1;
        self.messages += batch.len() as u64;
        if self.drop_every > 0 && self.built.is_multiple_of(self.drop_every) {
            self.dropped += 1;
            return Ok(());
        }
        self.packet.clear();
        encode_packet(session, sequence, batch, &mut self.packet)?;
        self.sent += 1;
        self.send_current(Some(batch.len()))
    }

    fn heartbeat(&mut self, session: &[u8; 10], next_sequence: u64) -> Result<()> {
        self.packet.clear();
        encode_heartbeat(session, next_sequence, &mut self.packet);
        self.send_current(None)
    }

    fn end_of_session(&mut self, session: &[u8; 10], next_sequence: u64) -> Result<()> {
        self.packet.clear();
        encode_end_of_session(session, next_sequence, &mut self.packet);
        for _ in 0..END_REPEATS {
            self.send_current(None)?;
        }
        Ok(())
    }

    /// What the faults did, summed over the lines.
    fn fault_counts(&self) -> Vec<FaultCounts> {
        self.lines.iter().map(|l| l.faults.counts).collect()
    }
}

/// Waits for the pacer's next message: sleeps when it is far, yields when it is near.
fn wait_for(pacer: &Pacer) {
    let wait = pacer.scheduled_ns().saturating_sub(clock::now_ns());
    if wait > 200_000 {
        std::thread::sleep(Duration::from_nanos(wait.min(1_000_000) - 100_000));
    } else {
        std::thread::yield_now();
    }
}

/// Sends the file and prints a summary on stderr.
pub fn run(args: &PublishArgs) -> Result<()> {
    let file = BinaryFile::open(&args.file)?;
    if file.is_empty() {
        bail!(
            "{} is empty: there is nothing to publish (write a file with `pinbook gen`)",
            args.file.display()
        );
    }
    let targets = args
        .udp
        .split(',')
        .map(resolve)
        .collect::<Result<Vec<SocketAddr>>>()?;
    if targets.len() > 2 {
        bail!(
            "--udp {} names {} lines; a feed has one line or two (A and B)",
            args.udp,
            targets.len()
        );
    }
    let lines = targets
        .iter()
        .enumerate()
        .map(|(i, &target)| Line::open(target, plan(args, i)))
        .collect::<Result<Vec<Line>>>()?;
    let mut server = args
        .retransmit_listen
        .map(|addr| RequestServer::bind(addr, usize::from(args.batch), MAX_PACKET))
        .transpose()?;
    let batch_max = usize::from(args.batch).min(moldudp64::MAX_MESSAGES);
    let mut pacer = (args.rate > 0).then(|| Pacer::new(args.rate));
    let mut sender = Sender {
        lines,
        drop_every: args.drop_every,
        packet: Vec::with_capacity(1 << 16),
        built: 0,
        dropped_on_all: 0,
        dropped_on_all_messages: 0,
        sent: 0,
        dropped: 0,
        refused: 0,
        messages: 0,
        last_send: Instant::now(),
    };
    let started = Instant::now();
    let mut pass = 0u64;
    let mut session = args.session.for_pass(pass);
    let mut sequence = 1u64;
    let mut pass_messages = 0u64;
    let mut frame_errors = 0u64;
    let mut frames = file.frames();
    let mut held: Option<&[u8]> = None;
    let mut batch: Vec<&[u8]> = Vec::with_capacity(batch_max);
    loop {
        if let Some(server) = &mut server {
            server.answer(&session)?;
        }
        let allowed = match &mut pacer {
            Some(pacer) => pacer.allowance(clock::now_ns(), batch_max),
            None => batch_max,
        };
        if allowed == 0 {
            if sender.last_send.elapsed() >= HEARTBEAT_EVERY {
                sender.heartbeat(&session, sequence)?;
            }
            if let Some(pacer) = &pacer {
                wait_for(pacer);
            }
            continue;
        }
        batch.clear();
        let mut size = moldudp64::HEADER_LEN;
        let mut end_of_pass = false;
        while batch.len() < allowed {
            match held.take().map(Ok).or_else(|| frames.next()) {
                None => {
                    end_of_pass = true;
                    break;
                }
                Some(Ok(message)) => {
                    if !batch.is_empty() && size + 2 + message.len() > MAX_PACKET {
                        held = Some(message);
                        break;
                    }
                    size += 2 + message.len();
                    batch.push(message);
                }
                Some(Err(FrameError::ZeroLength { .. })) => frame_errors += 1,
                Some(Err(e @ FrameError::Truncated { .. })) => {
                    if pass == 0 {
                        eprintln!("pinbook publish: {e}; the rest of the file is skipped");
                    }
                    frame_errors += 1;
                    end_of_pass = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            if let Some(server) = &mut server {
                server.record(&batch);
            }
            sender.messages(&session, sequence, &batch)?;
            sequence += batch.len() as u64;
            pass_messages += batch.len() as u64;
            if let Some(pacer) = &mut pacer {
                pacer.release(batch.len());
            }
        }
        if end_of_pass {
            sender.end_of_session(&session, sequence)?;
            if !args.looping || pass_messages == 0 {
                break;
            }
            pass += 1;
            session = args.session.for_pass(pass);
            sequence = 1;
            pass_messages = 0;
            frames = file.frames();
            if let Some(server) = &mut server {
                server.new_session();
            }
        }
    }
    let elapsed = started.elapsed();
    let targets: Vec<String> = targets.iter().map(SocketAddr::to_string).collect();
    eprintln!(
        "published {} messages in {} packets to {} ({} packets dropped on purpose, {} \
         refused, {} bad frames, {} passes) in {elapsed:.2?}: {:.0} msg/s",
        sender.messages,
        sender.sent,
        targets.join(" and "),
        sender.dropped,
        sender.refused,
        frame_errors,
        pass + 1,
        sender.messages as f64 / elapsed.as_secs_f64().max(1e-9),
    );
    if sender.lines.len() > 1 {
        eprintln!(
            "lines A and B both dropped {} packets ({} messages)",
            sender.dropped_on_all, sender.dropped_on_all_messages
        );
    }
    for (name, counts) in ["A", "B"].iter().zip(sender.fault_counts()) {
        if sender.lines.len() > 1 || counts != FaultCounts::default() {
            eprintln!(
                "line {name}: {} packets dropped, {} reordered, {} duplicated",
                counts.dropped, counts.reordered, counts.duplicated
            );
        }
    }
    if let Some(server) = &mut server {
        // receivers may still be asking for what they lost at the end
        let until = Instant::now() + Duration::from_secs_f64(args.linger.max(0.0));
        while Instant::now() < until {
            if !server.answer(&session)? {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        eprintln!("{}", server.summary());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_padded_and_checked() {
        assert_eq!(parse_session("PINBOOK"), Ok(Session(*b"PINBOOK   ")));
        assert_eq!(parse_session("ABCDEFGHIJ"), Ok(Session(*b"ABCDEFGHIJ")));
        assert!(parse_session("ABCDEFGHIJK").is_err());
        assert!(parse_session("tab\there").is_err());
    }

    #[test]
    fn each_pass_has_its_own_session() {
        let s = Session(*b"PINBOOK   ");
        assert_eq!(&s.for_pass(0), b"PINBOOK   ");
        assert_eq!(&s.for_pass(1), b"PINBOOK  1");
        assert_eq!(&s.for_pass(123), b"PINBOOK123");
        assert_eq!(&s.for_pass(12_345_678_901), b"2345678901");
    }
}
