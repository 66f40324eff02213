//! Feeds arbitrary bytes to every feed decoder: BinaryFILE framing, ITCH parsing (reading
//! every field through `Debug`), and MoldUDP64 packets and their message blocks.
//!
//! Run: `cargo +nightly fuzz run feed -- -max_total_time=300` from the repository root.

#![no_main]

use std::fmt::Write as _;

use dataplane::feed::binaryfile::{FrameError, Frames};
use dataplane::feed::itch::{self, Message, length_of};
use dataplane::feed::moldudp64::{Packet, PacketKind, SequenceTracker};
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
});
