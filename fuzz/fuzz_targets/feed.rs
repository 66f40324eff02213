//! Feeds arbitrary bytes to every feed decoder: BinaryFILE framing, ITCH parsing (reading
//! every field through `Debug`), MoldUDP64 packets and their message blocks, retransmission
//! requests, and two arbitrated lines with a request server (`Lines`), the input cut into
//! datagrams for each.
//!
//! Run: `cargo +nightly fuzz run feed -- -max_total_time=300` from the repository root.

#![no_main]

use std::fmt::Write as _;

use dataplane::feed::binaryfile::{FrameError, Frames};
use dataplane::feed::itch::{self, Message, length_of};
use dataplane::feed::moldudp64::{Packet, PacketKind, RequestPacket, SequenceTracker};
use dataplane::source::FeedEvent;
use dataplane::source::arbiter::{ArbiterOptions, MAX_REQUEST};
use dataplane::source::lines::Lines;
use dataplane::source::mold_receiver::ReceiverOptions;
use libfuzzer_sys::fuzz_target;

/// Parses one ITCH frame; on success checks the invariants and reads every field.
fn itch_frame(frame: &[u8], sink: &mut String) {
    match itch::parse(frame) {
        Ok(m) => {
            assert_eq!(Some(frame.len()), length_of(frame[0]));
            assert_eq!(m.kind(), frame[0]);
            let h = m.header();
            assert_eq!(h.kind, frame[0]);
            assert_eq!(h.stock_locate, u16::from_be_bytes([frame[1], frame[2]]));
            assert!(h.timestamp < 1 << 48);
            if let Message::AddOrder(a) = m {
                assert_eq!(a.side().as_byte(), a.side_byte());
                assert_eq!(a.attribution().is_some(), frame[0] == b'F');
            }
            sink.clear();
            let _ = write!(sink, "{m:?}");
            assert!(!sink.is_empty());
        }
        Err(e) => {
            sink.clear();
            let _ = write!(sink, "{e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut sink = String::new();

    // The input as one bare ITCH message.
    itch_frame(data, &mut sink);

    // The input as a BinaryFILE stream.
    let mut end = 0;
    for frame in Frames::new(data) {
        match frame {
            Ok(f) => {
                end += 2 + f.len();
                itch_frame(f, &mut sink);
            }
            Err(FrameError::ZeroLength { offset }) => {
                assert_eq!(offset, end);
                end += 2;
            }
            Err(FrameError::Truncated {
                offset,
                needed,
                available,
            }) => {
                assert_eq!(offset, end);
                assert_eq!(offset + available, data.len());
                assert!(needed > available);
                end = data.len();
            }
        }
    }
    assert_eq!(end, data.len());

    // The input as a MoldUDP64 datagram.
    if let Ok(packet) = Packet::parse(data) {
        let _ = write!(sink, "{packet:?}");
        let mut ok = 0u32;
        for message in packet.messages() {
            match message {
                Ok(m) => {
                    ok += 1;
                    if !m.is_empty() {
                        itch_frame(m, &mut sink);
                    }
                }
                Err(e) => {
                    let _ = write!(sink, "{e}");
                }
            }
        }
        assert!(ok <= u32::from(packet.message_count()));
        if packet.kind() != PacketKind::Messages {
            assert_eq!(ok, 0);
        }
        let mut tracker = SequenceTracker::new();
        let _ = tracker.observe(packet.sequence(), packet.count());
        assert!(tracker.next_expected() >= 1);
    }

    let _ = RequestPacket::parse(data);

    // The input as datagrams (cut at each 0xFE 0xFE) for line A, line B or the request
    // server (the first byte of each says which, or that time passes): nothing panics, every
    // gap starts where the stream is, a poll keeps to its budget, requests are bounded.
    let mut lines = Lines::new(
        &[ReceiverOptions::default(); 2],
        ArbiterOptions {
            hold: 64,
            retransmit: true,
            line_wait_ns: 10,
            retransmit_timeout_ns: 1_000,
            retry_ns: 100,
            ..ArbiterOptions::default()
        },
    );
    let from = "127.0.0.1:9".parse().expect("an address");
    let mut now = 0u64;
    let mut next = lines.arbiter().next_expected();
    let check = |lines: &mut Lines, now: u64, next: &mut u64| {
        for _ in 0..1000 {
            let mut n = 0;
            let got = lines.deliver(3, now, true, &mut |e| {
                n += 1;
                match e {
                    // a new session numbers from 1 again
                    FeedEvent::Restart => *next = 1,
                    FeedEvent::Message(_) => *next += 1,
                    FeedEvent::Gap { first, count } => {
                        assert_eq!(first, *next, "a gap where the stream is");
                        assert!(count > 0);
                        *next = first + count;
                    }
                    _ => {}
                }
            });
            assert!(got <= 3 && n <= 3, "{got} events for a budget of 3");
            if let Some(r) = lines.take_request() {
                assert!(r.count > 0 && u64::from(r.count) <= MAX_REQUEST);
            }
            if got == 0 && lines.is_drained() {
                break;
            }
        }
    };
    for datagram in data.split(|&b| b == 0xFE).filter(|d| !d.is_empty()) {
        let (&kind, rest) = datagram.split_first().expect("not empty");
        match kind % 4 {
            0 | 1 => {
                let line = usize::from(kind % 4);
                if lines.ready(line) {
                    lines.push(line, rest, from);
                }
            }
            2 => {
                let _ = lines.accept_retransmitted(rest, &mut |_| {});
            }
            _ => now += u64::from(kind),
        }
        check(&mut lines, now, &mut next);
    }
});
