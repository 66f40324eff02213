//! Zero-copy decoding of NASDAQ TotalView-ITCH 5.0 messages.
//!
//! [`parse`] takes exactly one message (no length prefix: see
//! [`binaryfile`](crate::feed::binaryfile) and [`moldudp64`](crate::feed::moldudp64) for the
//! framings) and returns a [`Message`] holding a typed view that borrows the input. It costs
//! one `match` on the type byte and one length comparison; nothing is copied or allocated.
//! All validation happens there (length, type, and the side byte of `A`/`F` add orders), so
//! every accessor on a view is infallible.
//!
//! Every ITCH 5.0 type is decoded: the 22 of the original specification plus `O` (Direct
//! Listing with Capital Raise Price Discovery, added in 2020). [`encode`] builds messages for
//! generators and tests.
//!
//! ```
//! use dataplane::feed::itch::{self, Message, ParseError};
//!
//! // D: type, stock locate 7, tracking 0, timestamp 1 ns, order reference 42.
//! let delete = [b'D', 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42];
//! let Ok(Message::OrderDelete(d)) = itch::parse(&delete) else { panic!() };
//! assert_eq!((d.header().stock_locate, d.order_ref()), (7, 42));
//!
//! assert_eq!(
//!     itch::parse(&delete[..18]).unwrap_err(),
//!     ParseError::WrongLength { kind: b'D', expected: 19, got: 18 }
//! );
//! ```

use std::fmt;

pub mod encode;
mod messages;

pub(crate) use messages::header_of;
pub use messages::{
    AddOrder, BrokenTrade, CrossTrade, DirectListingPriceDiscovery, IpoQuotingPeriod,
    LuldAuctionCollar, MarketParticipantPosition, MwcbDeclineLevel, MwcbStatus, Noii,
    OperationalHalt, OrderCancel, OrderDelete, OrderExecuted, OrderExecutedWithPrice, OrderReplace,
    RegShoRestriction, Rpii, StockDirectory, SystemEvent, Trade, TradingAction,
};

/// The 11-byte header common to every message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The message type byte (`b'A'`, `b'E'`, …).
    pub kind: u8,
    /// Dense per-day id of the symbol (0 for messages not tied to one); usable as an index.
    pub stock_locate: u16,
    /// NASDAQ internal tracking number.
    pub tracking: u16,
    /// Nanoseconds since midnight (48 bits on the wire).
    pub timestamp: u64,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("kind", &char::from(self.kind))
            .field("stock_locate", &self.stock_locate)
            .field("tracking", &self.tracking)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// The side of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// A bid (`B`).
    Buy,
    /// An offer (`S`).
    Sell,
}

impl Side {
    /// `B` → `Buy`, `S` → `Sell`, anything else → `None`.
    #[inline]
    pub const fn from_byte(byte: u8) -> Option<Side> {
        match byte {
            b'B' => Some(Side::Buy),
            b'S' => Some(Side::Sell),
            _ => None,
        }
    }

    /// The other side.
    #[inline]
    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// The wire byte: `B` or `S`.
    #[inline]
    pub const fn as_byte(self) -> u8 {
        match self {
            Side::Buy => b'B',
            Side::Sell => b'S',
        }
    }
}

/// Why a frame is not a valid ITCH 5.0 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The frame has no bytes at all, not even a type.
    #[error("empty frame: an ITCH message needs at least its type byte")]
    Empty,
    /// The type byte names no ITCH 5.0 message.
    #[error("unknown ITCH 5.0 message type {} (is this ITCH 5.0, and is the framing right?)", show(.kind))]
    UnknownType {
        /// The type byte found.
        kind: u8,
    },
    /// The frame is not the fixed length of its type.
    #[error("ITCH message type {} must be {expected} bytes long, got {got} (framing error?)", show(.kind))]
    WrongLength {
        /// The type byte.
        kind: u8,
        /// The length the specification fixes for that type.
        expected: usize,
        /// The frame's length.
        got: usize,
    },
    /// A field that the book relies on holds a value outside the specification.
    #[error("invalid {field} {} in ITCH message type {}", show(.value), show(.kind))]
    InvalidField {
        /// The type byte.
        kind: u8,
        /// The field's name.
        field: &'static str,
        /// The byte found.
        value: u8,
    },
}

/// Shows a byte as `'A'` when printable, else as `0x00`.
fn show(byte: &u8) -> impl fmt::Display {
    struct Show(u8);
    impl fmt::Display for Show {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if self.0.is_ascii_graphic() {
                write!(f, "'{}'", char::from(self.0))
            } else {
                write!(f, "{:#04x}", self.0)
            }
        }
    }
    Show(*byte)
}

/// The ITCH 5.0 message types, listed once by their views (each view declares its type byte
/// `KIND` and fixed length `LEN` in `messages.rs`). From the list come [`Message`],
/// [`Message::header`], [`Message::kind`], [`length_of`] and [`parse`]. The add order, two type
/// bytes (`A`, and `F` with attribution) of two lengths with a side to check, is written out
/// beside it.
macro_rules! messages {
    ($($view:ident: $what:literal;)*) => {
        /// One decoded ITCH 5.0 message, borrowing the frame it was parsed from.
        #[derive(Clone, Copy, Debug)]
        pub enum Message<'a> {
            /// `A` add order, or `F` add order with MPID attribution.
            AddOrder(AddOrder<'a>),
            $(
                #[doc = concat!("[`", stringify!($view), "`]: ", $what, ".")]
                $view($view<'a>),
            )*
        }

        impl Message<'_> {
            /// The common header.
            #[inline]
            pub fn header(&self) -> Header {
                match self {
                    Message::AddOrder(m) => m.header(),
                    $(Message::$view(m) => m.header(),)*
                }
            }

            /// The type byte (`A` or `F` for [`Message::AddOrder`]).
            #[inline]
            pub fn kind(&self) -> u8 {
                match self {
                    Message::AddOrder(m) => m.kind(),
                    $(Message::$view(_) => $view::KIND,)*
                }
            }
        }

        /// The fixed length of an ITCH 5.0 message of type `kind`, or `None` for a type byte
        /// that ITCH 5.0 does not define (`F`, an add with attribution, is 40 bytes; `A` is 36).
        #[inline]
        pub const fn length_of(kind: u8) -> Option<usize> {
            Some(match kind {
                b'A' => AddOrder::LEN_A,
                b'F' => AddOrder::LEN_F,
                $($view::KIND => $view::LEN,)*
                _ => return None,
            })
        }

        /// Decodes one ITCH 5.0 message. `frame` is exactly the message: no length prefix,
        /// nothing after it.
        ///
        /// Never panics, whatever the input.
        ///
        /// # Errors
        /// [`ParseError::Empty`] for an empty frame, [`ParseError::UnknownType`] for a type
        /// byte that ITCH 5.0 does not define, [`ParseError::WrongLength`] for a length other
        /// than the type's fixed one, and [`ParseError::InvalidField`] for an add order
        /// (`A`/`F`) whose side is not `B` or `S`.
        #[inline]
        pub fn parse(frame: &[u8]) -> Result<Message<'_>, ParseError> {
            let Some(&kind) = frame.first() else {
                return Err(ParseError::Empty);
            };
            Ok(match kind {
                b'A' | b'F' => Message::AddOrder(add_order(kind, frame)?),
                $($view::KIND => Message::$view($view(exact(kind, frame)?)),)*
                _ => return Err(ParseError::UnknownType { kind }),
            })
        }
    };
}

messages! {
    SystemEvent: "system event";
    StockDirectory: "stock directory";
    TradingAction: "stock trading action";
    RegShoRestriction: "Reg SHO short sale price test restriction";
    MarketParticipantPosition: "market participant position";
    MwcbDeclineLevel: "MWCB decline level";
    MwcbStatus: "MWCB status";
    IpoQuotingPeriod: "IPO quoting period update";
    LuldAuctionCollar: "LULD auction collar";
    OperationalHalt: "operational halt";
    OrderExecuted: "order executed";
    OrderExecutedWithPrice: "order executed with price";
    OrderCancel: "order cancel";
    OrderDelete: "order delete";
    OrderReplace: "order replace";
    Trade: "trade (non-cross)";
    CrossTrade: "cross trade";
    BrokenTrade: "broken trade";
    Noii: "net order imbalance indicator";
    Rpii: "retail price improvement indicator";
    DirectListingPriceDiscovery: "direct listing with capital raise price discovery";
}

/// An alpha field without its right-hand space padding: `Ok` if it is ASCII, else `Err` with
/// the (trimmed) raw bytes. Never panics.
#[inline]
pub fn alpha_str(field: &[u8]) -> Result<&str, &[u8]> {
    let mut trimmed = field;
    while let [rest @ .., b' '] = trimmed {
        trimmed = rest;
    }
    if trimmed.is_ascii() {
        std::str::from_utf8(trimmed).map_err(|_| trimmed)
    } else {
        Err(trimmed)
    }
}

/// The longest ITCH 5.0 message (NOII, `I`, 50 bytes): a frame longer than this holds none.
pub const MAX_MESSAGE_LEN: usize = Noii::LEN;

/// ITCH prices are integers with 4 implied decimals: price × 10^-4 dollars.
pub const PRICE_EXPONENT: i8 = -4;

/// True if `frame` has a type byte ITCH 5.0 defines and that type's exact length: what every
/// frame of a soundly framed stream holds. (Field values are not checked; see [`parse`].)
#[inline]
pub fn is_message_shaped(frame: &[u8]) -> bool {
    match frame.first() {
        Some(&kind) => length_of(kind) == Some(frame.len()),
        None => false,
    }
}

/// `frame` as a `[u8; N]`, or the length error for `kind`.
#[inline(always)]
fn exact<const N: usize>(kind: u8, frame: &[u8]) -> Result<&[u8; N], ParseError> {
    <&[u8; N]>::try_from(frame).map_err(|_| ParseError::WrongLength {
        kind,
        expected: N,
        got: frame.len(),
    })
}

/// Checks the side byte of an add order.
#[inline(always)]
fn check_side(kind: u8, base: &[u8; 36]) -> Result<(), ParseError> {
    match base[19] {
        b'B' | b'S' => Ok(()),
        value => Err(ParseError::InvalidField {
            kind,
            field: "side",
            value,
        }),
    }
}

/// An add order: `A` (36 bytes) or `F` (40, with attribution), its side checked.
#[inline(always)]
fn add_order(kind: u8, frame: &[u8]) -> Result<AddOrder<'_>, ParseError> {
    if kind == b'A' {
        let base = exact::<36>(kind, frame)?;
        check_side(kind, base)?;
        return Ok(AddOrder {
            base,
            attribution: None,
        });
    }
    let wrong = ParseError::WrongLength {
        kind,
        expected: AddOrder::LEN_F,
        got: frame.len(),
    };
    let (base, rest) = frame.split_first_chunk::<36>().ok_or(wrong)?;
    let attribution = <&[u8; 4]>::try_from(rest).map_err(|_| wrong)?;
    check_side(kind, base)?;
    Ok(AddOrder {
        base,
        attribution: Some(attribution),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every type byte with its specified length.
    const ALL: [(u8, usize); 23] = [
        (b'S', 12),
        (b'R', 39),
        (b'H', 25),
        (b'Y', 20),
        (b'L', 26),
        (b'V', 35),
        (b'W', 12),
        (b'K', 28),
        (b'J', 35),
        (b'h', 21),
        (b'A', 36),
        (b'F', 40),
        (b'E', 31),
        (b'C', 36),
        (b'X', 23),
        (b'D', 19),
        (b'U', 35),
        (b'P', 44),
        (b'Q', 40),
        (b'B', 19),
        (b'I', 50),
        (b'N', 20),
        (b'O', 48),
    ];

    #[test]
    fn length_of_names_every_type_and_nothing_else() {
        for (kind, len) in ALL {
            assert_eq!(length_of(kind), Some(len), "{}", kind as char);
        }
        for kind in 0..=u8::MAX {
            if !ALL.iter().any(|&(k, _)| k == kind) {
                assert_eq!(length_of(kind), None, "{kind}");
            }
        }
        assert_eq!(ALL.iter().map(|&(_, len)| len).max(), Some(MAX_MESSAGE_LEN));
        assert!(is_message_shaped(&valid(b'D', 19)));
        assert!(!is_message_shaped(&valid(b'D', 20)));
        assert!(!is_message_shaped(b""));
    }

    /// A well-formed frame of `kind`: right length, valid side where one is checked.
    fn valid(kind: u8, len: usize) -> Vec<u8> {
        let mut v = vec![b' '; len];
        v[0] = kind;
        v
    }

    #[test]
    fn feed_itch_every_type_parses_at_its_length_and_reports_kind() {
        for (kind, len) in ALL {
            let mut frame = valid(kind, len);
            if kind == b'A' || kind == b'F' {
                frame[19] = b'S';
            }
            let m = parse(&frame).unwrap_or_else(|e| panic!("{}: {e}", char::from(kind)));
            assert_eq!(m.kind(), kind);
            assert_eq!(m.header().kind, kind);
        }
    }

    #[test]
    fn feed_itch_empty_frame_is_an_error() {
        assert_eq!(parse(&[]).unwrap_err(), ParseError::Empty);
    }

    #[test]
    fn feed_itch_unknown_types_are_errors() {
        for kind in [0u8, b'Z', b'a', b'G', b'M', b'T', 0xFF] {
            assert_eq!(
                parse(&valid(kind, 36)).unwrap_err(),
                ParseError::UnknownType { kind }
            );
            assert_eq!(
                parse(&[kind]).unwrap_err(),
                ParseError::UnknownType { kind }
            );
        }
    }

    #[test]
    fn feed_itch_every_type_rejects_one_byte_short_and_long() {
        for (kind, len) in ALL {
            for got in [1, len - 1, len + 1, len * 2] {
                let mut frame = valid(kind, got);
                if got > 19 {
                    frame[19] = b'B';
                }
                assert_eq!(
                    parse(&frame).unwrap_err(),
                    ParseError::WrongLength {
                        kind,
                        expected: len,
                        got
                    },
                    "{} with {got} bytes",
                    char::from(kind)
                );
            }
        }
    }

    #[test]
    fn feed_itch_add_order_side_must_be_b_or_s() {
        for (kind, len) in [(b'A', 36), (b'F', 40)] {
            for value in [b' ', b'b', b's', 0, b'X'] {
                let mut frame = valid(kind, len);
                frame[19] = value;
                assert_eq!(
                    parse(&frame).unwrap_err(),
                    ParseError::InvalidField {
                        kind,
                        field: "side",
                        value
                    }
                );
            }
        }
    }

    #[test]
    fn feed_itch_error_messages_are_lowercase_and_name_the_type() {
        let e = ParseError::WrongLength {
            kind: b'A',
            expected: 36,
            got: 35,
        };
        assert_eq!(
            e.to_string(),
            "ITCH message type 'A' must be 36 bytes long, got 35 (framing error?)"
        );
        assert!(
            ParseError::UnknownType { kind: 0 }
                .to_string()
                .contains("0x00")
        );
        let e = ParseError::InvalidField {
            kind: b'F',
            field: "side",
            value: b'x',
        };
        assert_eq!(e.to_string(), "invalid side 'x' in ITCH message type 'F'");
        assert!(ParseError::Empty.to_string().starts_with("empty"));
    }

    #[test]
    fn feed_itch_side_bytes_round_trip() {
        for side in [Side::Buy, Side::Sell] {
            assert_eq!(Side::from_byte(side.as_byte()), Some(side));
        }
        assert_eq!(Side::from_byte(b'X'), None);
    }

    #[test]
    fn feed_itch_alpha_str_trims_padding_and_never_panics() {
        assert_eq!(alpha_str(b"AAPL    "), Ok("AAPL"));
        assert_eq!(alpha_str(b"BRK A   "), Ok("BRK A"));
        assert_eq!(alpha_str(b"        "), Ok(""));
        assert_eq!(alpha_str(b""), Ok(""));
        assert_eq!(alpha_str(b"\xffAB  "), Err(&b"\xffAB"[..]));
    }

    #[test]
    fn feed_itch_header_debug_shows_kind_as_a_character() {
        let h = Header {
            kind: b'A',
            stock_locate: 1,
            tracking: 2,
            timestamp: 3,
        };
        assert_eq!(
            format!("{h:?}"),
            "Header { kind: 'A', stock_locate: 1, tracking: 2, timestamp: 3 }"
        );
    }
}
