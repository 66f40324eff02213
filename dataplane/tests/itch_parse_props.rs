//! `itch::parse` never panics on any input, and accepts a frame only at its type's length.

use dataplane::feed::binaryfile::{FrameError, Frames};
use dataplane::feed::itch::{self, Message, ParseError, length_of as message_len};
use proptest::prelude::*;

/// Every ITCH 5.0 type byte.
const KINDS: &[u8] = b"SRHYLVWKJhAFECXDUPQBINO";

/// A type byte: usually a valid one, sometimes any byte.
fn kind() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(KINDS),
        1 => any::<u8>(),
    ]
}

/// A frame: a type byte, then a body whose length is near the type's own (or anything).
fn frame() -> impl Strategy<Value = Vec<u8>> {
    (kind(), -3i64..=3, any::<bool>()).prop_flat_map(|(kind, delta, near)| {
        let spec = message_len(kind).unwrap_or(20) as i64;
        let len = if near {
            (spec + delta).max(0) as usize
        } else {
            ((spec + delta) * 3).rem_euclid(80) as usize
        };
        // Bias the side byte of add orders towards valid values so Ok paths are exercised.
        let side = prop_oneof![3 => prop::sample::select(&b"BS"[..]), 1 => any::<u8>()];
        (
            Just(kind),
            prop::collection::vec(any::<u8>(), len.saturating_sub(1)),
            side,
        )
            .prop_map(move |(kind, mut body, side)| {
                if body.len() > 18 {
                    body[18] = side;
                }
                let mut frame = Vec::with_capacity(body.len() + 1);
                if len > 0 {
                    frame.push(kind);
                }
                frame.extend_from_slice(&body);
                frame
            })
    })
}

/// Reads every field of a parsed message through its `Debug` output.
fn touch(m: &Message<'_>) -> usize {
    format!("{m:?}").len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn parse_never_panics_and_ok_means_exact_length(frame in frame()) {
        match itch::parse(&frame) {
            Ok(m) => {
                prop_assert_eq!(Some(frame.len()), message_len(frame[0]));
                prop_assert_eq!(m.kind(), frame[0]);
                prop_assert_eq!(m.header().kind, frame[0]);
                if let Message::AddOrder(a) = m {
                    prop_assert!(matches!(a.side_byte(), b'B' | b'S'));
                    prop_assert_eq!(a.attribution().is_some(), frame[0] == b'F');
                }
                prop_assert!(touch(&m) > 0);
            }
            Err(ParseError::Empty) => prop_assert!(frame.is_empty()),
            Err(ParseError::UnknownType { kind }) => {
                prop_assert_eq!(kind, frame[0]);
                prop_assert_eq!(message_len(kind), None);
            }
            Err(ParseError::WrongLength { kind, expected, got }) => {
                prop_assert_eq!(kind, frame[0]);
                prop_assert_eq!(Some(expected), message_len(kind));
                prop_assert_eq!(got, frame.len());
                prop_assert_ne!(got, expected);
            }
            Err(ParseError::InvalidField { kind, field, value }) => {
                prop_assert!(kind == b'A' || kind == b'F');
                prop_assert_eq!(field, "side");
                prop_assert_eq!(value, frame[19]);
                prop_assert_eq!(Some(frame.len()), message_len(kind));
            }
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(m) = itch::parse(&bytes) {
            prop_assert_eq!(Some(bytes.len()), message_len(m.kind()));
            prop_assert!(touch(&m) > 0);
        }
    }

    #[test]
    fn framed_stream_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // Frames tile the input: each starts where the last ended; a truncated tail covers
        // the rest; otherwise the frames end exactly at the end.
        let mut consumed = 0;
        let mut truncated = false;
        for frame in Frames::new(&bytes) {
            prop_assert!(!truncated, "nothing follows a truncated tail");
            match frame {
                Ok(f) => {
                    consumed += 2 + f.len();
                    if let Ok(m) = itch::parse(f) {
                        prop_assert_eq!(Some(f.len()), message_len(m.kind()));
                    }
                }
                Err(FrameError::ZeroLength { offset }) => {
                    prop_assert_eq!(offset, consumed);
                    consumed += 2;
                }
                Err(FrameError::Truncated { offset, needed, available }) => {
                    prop_assert_eq!(offset, consumed);
                    prop_assert_eq!(offset + available, bytes.len());
                    prop_assert!(needed > available);
                    consumed += available;
                    truncated = true;
                }
            }
        }
        prop_assert_eq!(consumed, bytes.len());
    }
}
