//! Feed arbitration and recovery: what taking a MoldUDP64 feed from two lines costs against one,
//! and how long a 1,000-message gap takes to come back from a request server over loopback.
//!
//! 1. In memory (no sockets, so only the code is measured): generated ITCH messages in packets
//!    of 20, through the bare `Receiver` (the single-line path before arbitration, the peer),
//!    `Lines` with one line, and `Lines` with two lines carrying every packet (A first, then
//!    B's late copy; and the first line alternating). ns per message, HDR over batches of 500
//!    packets, ratios against the bare receiver; the arbitration's extra cost per message is
//!    the two-line p50 minus the one-line p50.
//! 2. Over loopback: a `UdpSource` with one line and a request server (a thread answering
//!    MoldUDP64 requests). Each trial sends a packet, skips 1,000 messages, sends the next: the
//!    time from that send until the source has handed over the last missing message. Beside it,
//!    1,000 messages in 50 packets delivered without loss, sent back to back.
//!
//! `cargo bench --bench feed`.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dataplane::clock;
use dataplane::feed::generator::{Generator, GeneratorConfig};
use dataplane::feed::moldudp64::{RequestPacket, encode_packet};
use dataplane::source::arbiter::ArbiterOptions;
use dataplane::source::lines::Lines;
use dataplane::source::mold_receiver::{Receiver, ReceiverOptions};
use dataplane::source::udp::{UdpFeedOptions, UdpSource};
use dataplane::source::{FeedEvent, FeedSource};
use hdrhistogram::Histogram;

const SESSION: &[u8; 10] = b"BENCH00001";
const PER_PACKET: usize = 20;
const BATCH_PACKETS: usize = 500;
const GAP: u64 = 1_000;

fn messages(n: usize) -> Vec<Vec<u8>> {
    Generator::new(GeneratorConfig {
        symbols: 500,
        seed: 7,
    })
    .messages(n)
}

/// The packets of `messages`, `PER_PACKET` each, numbered from 1.
fn packets(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut sequence = 1u64;
    for chunk in messages.chunks(PER_PACKET) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let mut packet = Vec::new();
        encode_packet(SESSION, sequence, &refs, &mut packet).expect("encodable");
        sequence += chunk.len() as u64;
        out.push(packet);
    }
    out
}

fn from() -> SocketAddr {
    "127.0.0.1:9000".parse().expect("an address")
}

/// How the packets are fed.
#[derive(Clone, Copy)]
enum Feeding {
    Receiver,
    OneLine,
    TwoLinesAFirst,
    TwoLinesAlternating,
}

/// ns per message of each batch of `BATCH_PACKETS` packets, every way of feeding taking its
/// turn in each round (so the machine's drift falls on all of them alike).
fn in_memory(packets: &[Vec<u8>], rounds: usize) -> Vec<Histogram<u64>> {
    let hows = [
        Feeding::Receiver,
        Feeding::OneLine,
        Feeding::TwoLinesAFirst,
        Feeding::TwoLinesAlternating,
    ];
    let mut histograms: Vec<Histogram<u64>> = hows.iter().map(|_| common::histogram()).collect();
    for _ in 0..rounds {
        for (how, h) in hows.iter().zip(&mut histograms) {
            one_round(packets, *how, h);
        }
    }
    histograms
}

/// One pass over `packets`, fed `how`, recording ns per message of each batch into `h`.
fn one_round(packets: &[Vec<u8>], how: Feeding, h: &mut Histogram<u64>) {
    let from = from();
    let mut sum = 0u64;
    let mut count = |e: FeedEvent<'_>| {
        if let FeedEvent::Message(m) = e {
            sum = sum.wrapping_add(u64::from(m[0]));
        }
    };
    {
        // a fresh session each round, so every round sees the same sequence numbers
        let mut receiver = Receiver::new(ReceiverOptions::default());
        let lines_n = match how {
            Feeding::TwoLinesAFirst | Feeding::TwoLinesAlternating => 2,
            _ => 1,
        };
        let mut lines = Lines::new(
            &vec![ReceiverOptions::default(); lines_n],
            ArbiterOptions::default(),
        );
        let now = clock::now_ns();
        for batch in packets.chunks(BATCH_PACKETS) {
            let started = Instant::now();
            let mut delivered = 0usize;
            for (i, packet) in batch.iter().enumerate() {
                match how {
                    Feeding::Receiver => {
                        receiver.push(packet, from);
                        // through a `dyn` sink, as a source hands the shard its events
                        let sink: &mut dyn FnMut(FeedEvent<'_>) = &mut count;
                        while !receiver.is_drained() {
                            delivered += receiver.deliver(64, sink);
                        }
                    }
                    Feeding::OneLine => {
                        lines.push(0, packet, from);
                        delivered += lines.deliver(64, now, true, &mut count);
                    }
                    Feeding::TwoLinesAFirst | Feeding::TwoLinesAlternating => {
                        let first = match how {
                            Feeding::TwoLinesAlternating => i % 2,
                            _ => 0,
                        };
                        for line in [first, 1 - first] {
                            lines.push(line, packet, from);
                            delivered += lines.deliver(64, now, true, &mut count);
                        }
                    }
                }
            }
            let ns = started.elapsed().as_nanos() as f64;
            let messages = (batch.len() * PER_PACKET) as f64;
            assert!(delivered as f64 >= messages, "{delivered} of {messages}");
            common::record_ns(h, ns / messages);
        }
    }
    std::hint::black_box(sum);
}

/// A request server on a thread: answers every request for `messages` (numbered from 1).
fn request_server(messages: Arc<Vec<Vec<u8>>>, stop: Arc<AtomicBool>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the request server");
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("a read timeout");
    let addr = socket.local_addr().expect("its address");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 64];
        let mut packet = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let Ok((len, to)) = socket.recv_from(&mut buffer) else {
                continue;
            };
            let Ok(request) = RequestPacket::parse(&buffer[..len]) else {
                continue;
            };
            let end = (request.first + u64::from(request.count)).min(messages.len() as u64 + 1);
            let mut next = request.first;
            while next < end {
                let upto = (next + PER_PACKET as u64).min(end);
                let refs: Vec<&[u8]> = (next..upto)
                    .map(|s| messages[(s - 1) as usize].as_slice())
                    .collect();
                packet.clear();
                encode_packet(SESSION, next, &refs, &mut packet).expect("encodable");
                let _ = socket.send_to(&packet, to);
                next = upto;
            }
        }
    });
    addr
}

/// Loopback: the time to recover a 1,000-message gap, and to take 1,000 messages without one.
fn loopback(trials: u64) -> (Histogram<u64>, Histogram<u64>) {
    let per_trial = GAP + 2 * PER_PACKET as u64;
    let all = Arc::new(messages((trials * per_trial + 1) as usize));
    let stop = Arc::new(AtomicBool::new(false));
    let server = request_server(Arc::clone(&all), Arc::clone(&stop));
    let mut source = UdpSource::open(&UdpFeedOptions {
        lines: vec![(
            "127.0.0.1:0".parse().expect("addr"),
            ReceiverOptions::default(),
        )],
        retransmit: Some(server),
        arbiter: ArbiterOptions {
            retry_ns: 5_000_000,
            ..ArbiterOptions::default()
        },
    })
    .expect("a UDP source");
    let target = source.local_addr().expect("its address");
    let sender = UdpSocket::bind("127.0.0.1:0").expect("a sender");
    let send = |first: u64, count: u64| {
        let refs: Vec<&[u8]> = (first..first + count)
            .map(|s| all[(s - 1) as usize].as_slice())
            .collect();
        let mut packet = Vec::new();
        encode_packet(SESSION, first, &refs, &mut packet).expect("encodable");
        sender.send_to(&packet, target).expect("send");
    };
    let mut delivered = 0u64;
    let mut poll_until = |source: &mut UdpSource, upto: u64| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while delivered < upto {
            source.poll(clock::now_ns(), 256, &mut |e| {
                if let FeedEvent::Message(_) = e {
                    delivered += 1;
                }
            });
            assert!(Instant::now() < deadline, "stuck at {delivered} of {upto}");
        }
    };
    let mut recovery = common::histogram();
    let mut plain = common::histogram();
    let mut next = 1u64;
    for _ in 0..trials {
        // the packet before the gap, then the one after it: the hole is 1,000 messages
        send(next, PER_PACKET as u64);
        poll_until(&mut source, next + PER_PACKET as u64 - 1);
        let after = next + PER_PACKET as u64 + GAP;
        let started = Instant::now();
        send(after, PER_PACKET as u64);
        poll_until(&mut source, after + PER_PACKET as u64 - 1);
        common::record_ns(&mut recovery, started.elapsed().as_nanos() as f64);
        next = after + PER_PACKET as u64;
    }
    assert_eq!(source.recovery_stats().recovered, trials * GAP);
    // the same 1,000 messages without a gap, for scale
    let mut source = UdpSource::bind("127.0.0.1:0".parse().expect("addr")).expect("a source");
    let target = source.local_addr().expect("its address");
    let mut delivered_plain = 0u64;
    let mut sequence = 1u64;
    for _ in 0..trials {
        let started = Instant::now();
        for _ in 0..GAP / PER_PACKET as u64 {
            let refs: Vec<&[u8]> = (sequence..sequence + PER_PACKET as u64)
                .map(|s| all[(s - 1) as usize].as_slice())
                .collect();
            let mut packet = Vec::new();
            encode_packet(SESSION, sequence, &refs, &mut packet).expect("encodable");
            sender.send_to(&packet, target).expect("send");
            sequence += PER_PACKET as u64;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while delivered_plain < sequence - 1 {
            source.poll(clock::now_ns(), 256, &mut |e| {
                if let FeedEvent::Message(_) = e {
                    delivered_plain += 1;
                }
            });
            assert!(Instant::now() < deadline, "plain delivery stuck");
        }
        common::record_ns(&mut plain, started.elapsed().as_nanos() as f64);
    }
    stop.store(true, Ordering::Relaxed);
    (recovery, plain)
}

fn report() {
    let packets = packets(&messages(common::scale(200_000, 20_000) as usize));
    let rounds = common::scale(40, 1) as usize;
    let [receiver, one, two, alternating] =
        <[Histogram<u64>; 4]>::try_from(in_memory(&packets, rounds)).expect("four ways of feeding");
    common::print_table(
        "MoldUDP64 in memory, packets of 20 generated messages (ns per message; ratio vs the bare receiver)",
        "ns/msg",
        &[
            ("Receiver alone (no arbitration)", &receiver),
            ("Lines, one line", &one),
            ("Lines, two lines, A first", &two),
            ("Lines, two lines, first alternating", &alternating),
        ],
    );
    let p50 = |h: &Histogram<u64>| h.value_at_quantile(0.5) as f64 / 1000.0;
    println!(
        "  arbitration's extra cost per message (two lines p50 - one line p50): {:.2} ns (A first), {:.2} ns (alternating)",
        p50(&two) - p50(&one),
        p50(&alternating) - p50(&one)
    );
    let (recovery, plain) = loopback(common::scale(300, 10));
    common::print_table(
        "Loopback, one line and a request server (µs per 1,000 messages)",
        "µs",
        &[
            ("1,000 messages sent in 50 packets", &scaled(&plain)),
            ("a 1,000-message gap recovered", &scaled(&recovery)),
        ],
    );
}

/// The histogram in thousands of its unit (ns → µs).
fn scaled(h: &Histogram<u64>) -> Histogram<u64> {
    let mut out = common::histogram();
    for v in h.iter_recorded() {
        let value = (v.value_iterated_to() / 1000).max(1);
        let _ = out.record_n(value, v.count_at_value());
    }
    out
}

fn main() {
    common::main(common::no_criterion, Duration::from_secs(1), report);
}
