//! Market-data feed decoding: NASDAQ TotalView-ITCH 5.0 messages and the two framings they
//! arrive in.
//!
//! - [`itch`] decodes one ITCH 5.0 message into a zero-copy typed view (and, in
//!   [`itch::encode`], builds messages for generators and tests).
//! - [`binaryfile`] splits NASDAQ's daily BinaryFILE (`u16 BE length | message` repeated) into
//!   frames, over a memory-mapped file or any byte slice.
//! - [`moldudp64`] reads MoldUDP64 packets (the UDP framing of the live feed) and tracks their
//!   sequence numbers for gaps, duplicates and overlaps.
//!
//! Nothing here allocates, panics or reads out of bounds on malformed input: every error is a
//! value. Accessors on a parsed view are infallible because `parse` validated the length (and
//! the side byte of add orders) up front.
//!
//! ```
//! use dataplane::feed::binaryfile::{Frames, write_frame};
//! use dataplane::feed::itch::{self, Message, Side, encode::{self, EncHeader}};
//!
//! let h = EncHeader { stock_locate: 1, tracking: 0, timestamp: 34_200_000_000_000 };
//! let add = encode::add_order(h, 42, Side::Buy, 100, encode::stock("AAPL"), 1_500_000, None);
//! let mut file = Vec::new();
//! write_frame(&mut file, &add).unwrap();
//!
//! for frame in Frames::new(&file) {
//!     match itch::parse(frame.unwrap()).unwrap() {
//!         Message::AddOrder(a) => {
//!             assert_eq!((a.order_ref(), a.side(), a.price()), (42, Side::Buy, 1_500_000));
//!             assert_eq!(a.stock_str(), Ok("AAPL"));
//!         }
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! ```

pub mod binaryfile;
pub mod dbn;
pub mod generator;
pub mod itch;
pub mod moldudp64;
