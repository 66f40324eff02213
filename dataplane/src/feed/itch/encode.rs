//! Builds ITCH 5.0 messages: for the synthetic-feed generator and for tests.
//!
//! One function per message type the book or the session logic needs, each returning the
//! exact bytes of one message (no length prefix). Not used on the hot path.
//!
//! ```
//! use dataplane::feed::itch::{self, Message, encode::{self, EncHeader}};
//!
//! let h = EncHeader { stock_locate: 3, tracking: 0, timestamp: 1 };
//! let bytes = encode::order_cancel(h, 42, 100);
//! let Ok(Message::OrderCancel(x)) = itch::parse(&bytes) else { panic!() };
//! assert_eq!((x.order_ref(), x.cancelled_shares()), (42, 100));
//! ```

use super::Side;

/// The header fields a caller chooses; the type byte comes from the function called.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncHeader {
    /// The symbol's stock locate.
    pub stock_locate: u16,
    /// Tracking number.
    pub tracking: u16,
    /// Nanoseconds since midnight; only the low 48 bits are sent.
    pub timestamp: u64,
}

/// A symbol as an 8-byte alpha field: left-justified, space-padded, cut to 8 bytes.
pub fn stock(name: &str) -> [u8; 8] {
    let mut out = [b' '; 8];
    for (dst, src) in out.iter_mut().zip(name.bytes()) {
        *dst = src;
    }
    out
}

/// Writes the fields of one message in order.
struct Writer<const N: usize> {
    buf: [u8; N],
    pos: usize,
}

impl<const N: usize> Writer<N> {
    fn new(kind: u8, h: EncHeader) -> Self {
        let mut w = Writer {
            buf: [0; N],
            pos: 0,
        };
        let ts = h.timestamp.to_be_bytes();
        w.put(&[kind])
            .put(&h.stock_locate.to_be_bytes())
            .put(&h.tracking.to_be_bytes())
            .put(&ts[2..]);
        w
    }

    fn put(&mut self, bytes: &[u8]) -> &mut Self {
        // Every message layout below is exercised by the round-trip tests, so a layout that
        // overran its array would fail there.
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
        self
    }

    fn u8(&mut self, v: u8) -> &mut Self {
        self.put(&[v])
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.put(&v.to_be_bytes())
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.put(&v.to_be_bytes())
    }

    fn finish(&self) -> [u8; N] {
        debug_assert_eq!(self.pos, N, "message layout does not fill its {N} bytes");
        self.buf
    }
}

/// `A` add order (when `attribution` is `None`, 36 bytes) or `F` add order with MPID
/// attribution (when `Some`, 40 bytes).
pub fn add_order(
    h: EncHeader,
    order_ref: u64,
    side: Side,
    shares: u32,
    stock: [u8; 8],
    price: u32,
    attribution: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    add_order_into(
        &mut out,
        h,
        order_ref,
        side,
        shares,
        stock,
        price,
        attribution,
    );
    out
}

/// [`add_order`] appended to `out`: allocates only if `out` has less than 40 bytes of spare
/// capacity, so a generator writing into a preallocated buffer never allocates.
#[allow(clippy::too_many_arguments)] // one per field of the message
pub fn add_order_into(
    out: &mut Vec<u8>,
    h: EncHeader,
    order_ref: u64,
    side: Side,
    shares: u32,
    stock: [u8; 8],
    price: u32,
    attribution: Option<[u8; 4]>,
) {
    let kind = if attribution.is_some() { b'F' } else { b'A' };
    let fixed: [u8; 36] = Writer::new(kind, h)
        .u64(order_ref)
        .u8(side.as_byte())
        .u32(shares)
        .put(&stock)
        .u32(price)
        .finish();
    out.extend_from_slice(&fixed);
    if let Some(mpid) = attribution {
        out.extend_from_slice(&mpid);
    }
}

/// `E` order executed.
pub fn order_executed(h: EncHeader, order_ref: u64, shares: u32, match_number: u64) -> [u8; 31] {
    Writer::new(b'E', h)
        .u64(order_ref)
        .u32(shares)
        .u64(match_number)
        .finish()
}

/// `C` order executed with price; `printable` is sent as `Y`/`N`.
pub fn order_executed_with_price(
    h: EncHeader,
    order_ref: u64,
    shares: u32,
    match_number: u64,
    printable: bool,
    price: u32,
) -> [u8; 36] {
    Writer::new(b'C', h)
        .u64(order_ref)
        .u32(shares)
        .u64(match_number)
        .u8(if printable { b'Y' } else { b'N' })
        .u32(price)
        .finish()
}

/// `X` order cancel (partial).
pub fn order_cancel(h: EncHeader, order_ref: u64, shares: u32) -> [u8; 23] {
    Writer::new(b'X', h).u64(order_ref).u32(shares).finish()
}

/// `D` order delete.
pub fn order_delete(h: EncHeader, order_ref: u64) -> [u8; 19] {
    Writer::new(b'D', h).u64(order_ref).finish()
}

/// `U` order replace.
pub fn order_replace(
    h: EncHeader,
    original_ref: u64,
    new_ref: u64,
    shares: u32,
    price: u32,
) -> [u8; 35] {
    Writer::new(b'U', h)
        .u64(original_ref)
        .u64(new_ref)
        .u32(shares)
        .u32(price)
        .finish()
}

/// `S` system event (`code`: `O` `S` `Q` `M` `E` `C`).
pub fn system_event(h: EncHeader, code: u8) -> [u8; 12] {
    Writer::new(b'S', h).u8(code).finish()
}

/// `R` stock directory with plausible constants: NASDAQ Global Select (`Q`), normal financial
/// status (`N`), round lot 100, not round-lots-only, common stock (`C`), sub-type `Z `,
/// production (`P`), not a threshold security, not an IPO, LULD tier 1, not an ETP, leverage 0,
/// not inverse.
pub fn stock_directory(h: EncHeader, stock: [u8; 8]) -> [u8; 39] {
    Writer::new(b'R', h)
        .put(&stock)
        .u8(b'Q')
        .u8(b'N')
        .u32(100)
        .u8(b'N')
        .u8(b'C')
        .put(b"Z ")
        .u8(b'P')
        .u8(b'N')
        .u8(b'N')
        .u8(b'1')
        .u8(b'N')
        .u32(0)
        .u8(b'N')
        .finish()
}

/// `H` stock trading action (`state`: `H` halted, `P` paused, `Q` quotation only,
/// `T` trading); the reserved byte is a space.
pub fn trading_action(h: EncHeader, stock: [u8; 8], state: u8, reason: [u8; 4]) -> [u8; 25] {
    Writer::new(b'H', h)
        .put(&stock)
        .u8(state)
        .u8(b' ')
        .put(&reason)
        .finish()
}

/// `P` trade (non-cross).
pub fn trade(
    h: EncHeader,
    order_ref: u64,
    side: Side,
    shares: u32,
    stock: [u8; 8],
    price: u32,
    match_number: u64,
) -> [u8; 44] {
    Writer::new(b'P', h)
        .u64(order_ref)
        .u8(side.as_byte())
        .u32(shares)
        .put(&stock)
        .u32(price)
        .u64(match_number)
        .finish()
}

/// `Q` cross trade.
pub fn cross_trade(
    h: EncHeader,
    shares: u64,
    stock: [u8; 8],
    price: u32,
    match_number: u64,
    cross_type: u8,
) -> [u8; 40] {
    Writer::new(b'Q', h)
        .u64(shares)
        .put(&stock)
        .u32(price)
        .u64(match_number)
        .u8(cross_type)
        .finish()
}

/// `B` broken trade.
pub fn broken_trade(h: EncHeader, match_number: u64) -> [u8; 19] {
    Writer::new(b'B', h).u64(match_number).finish()
}

/// `Y` Reg SHO short sale price test restricted indicator.
pub fn reg_sho(h: EncHeader, stock: [u8; 8], action: u8) -> [u8; 20] {
    Writer::new(b'Y', h).put(&stock).u8(action).finish()
}

/// `J` LULD auction collar.
pub fn luld_collar(
    h: EncHeader,
    stock: [u8; 8],
    reference: u32,
    upper: u32,
    lower: u32,
    extension: u32,
) -> [u8; 35] {
    Writer::new(b'J', h)
        .put(&stock)
        .u32(reference)
        .u32(upper)
        .u32(lower)
        .u32(extension)
        .finish()
}

/// `K` IPO quoting period update.
pub fn ipo_quoting(
    h: EncHeader,
    stock: [u8; 8],
    release_time: u32,
    qualifier: u8,
    price: u32,
) -> [u8; 28] {
    Writer::new(b'K', h)
        .put(&stock)
        .u32(release_time)
        .u8(qualifier)
        .u32(price)
        .finish()
}

/// `V` MWCB decline levels (8 implied decimals).
pub fn mwcb_levels(h: EncHeader, levels: [u64; 3]) -> [u8; 35] {
    Writer::new(b'V', h)
        .u64(levels[0])
        .u64(levels[1])
        .u64(levels[2])
        .finish()
}

/// `W` MWCB status: `level` (`1`, `2`, `3`) breached.
pub fn mwcb_breach(h: EncHeader, level: u8) -> [u8; 12] {
    Writer::new(b'W', h).u8(level).finish()
}

/// `I` net order imbalance indicator. Far and near prices are set to `reference_price`; the
/// price variation indicator is `L` (under 1%).
pub fn noii(
    h: EncHeader,
    stock: [u8; 8],
    paired_shares: u64,
    imbalance_shares: u64,
    direction: u8,
    reference_price: u32,
    cross_type: u8,
) -> [u8; 50] {
    Writer::new(b'I', h)
        .u64(paired_shares)
        .u64(imbalance_shares)
        .u8(direction)
        .put(&stock)
        .u32(reference_price)
        .u32(reference_price)
        .u32(reference_price)
        .u8(cross_type)
        .u8(b'L')
        .finish()
}

#[cfg(test)]
mod tests {
    use super::super::{Message, Side, parse};
    use super::*;

    const H: EncHeader = EncHeader {
        stock_locate: 0xBEEF,
        tracking: 0x0102,
        timestamp: 0x0000_A1B2_C3D4_E5F6,
    };

    fn check_header(m: &Message<'_>, kind: u8) {
        let h = m.header();
        assert_eq!(h.kind, kind);
        assert_eq!(h.stock_locate, H.stock_locate);
        assert_eq!(h.tracking, H.tracking);
        assert_eq!(h.timestamp, H.timestamp);
    }

    #[test]
    fn feed_encode_stock_pads_and_truncates() {
        assert_eq!(&stock("AAPL"), b"AAPL    ");
        assert_eq!(&stock(""), b"        ");
        assert_eq!(&stock("ABCDEFGHIJ"), b"ABCDEFGH");
    }

    #[test]
    fn feed_encode_timestamp_keeps_low_48_bits() {
        let h = EncHeader {
            timestamp: 0xFFFF_0000_0000_0001,
            ..H
        };
        let m = order_delete(h, 1);
        assert_eq!(parse(&m).map(|m| m.header().timestamp), Ok(1));
    }

    #[test]
    fn feed_encode_add_order_a_round_trips() {
        let bytes = add_order(
            H,
            u64::MAX - 1,
            Side::Sell,
            300,
            stock("MSFT"),
            4_217_500,
            None,
        );
        assert_eq!(bytes.len(), 36);
        let m = parse(&bytes).expect("valid A");
        check_header(&m, b'A');
        let Message::AddOrder(a) = m else {
            panic!("{m:?}")
        };
        assert_eq!(a.kind(), b'A');
        assert_eq!(a.order_ref(), u64::MAX - 1);
        assert_eq!(a.side(), Side::Sell);
        assert_eq!(a.shares(), 300);
        assert_eq!(a.stock_str(), Ok("MSFT"));
        assert_eq!(a.price(), 4_217_500);
        assert_eq!(a.attribution(), None);
    }

    #[test]
    fn feed_encode_add_order_into_appends_without_allocating() {
        let mut out = Vec::with_capacity(80);
        let ptr = out.as_ptr();
        add_order_into(&mut out, H, 1, Side::Buy, 2, stock("A"), 3, None);
        add_order_into(&mut out, H, 1, Side::Buy, 2, stock("A"), 3, Some(*b"GSCO"));
        assert_eq!(out.len(), 76);
        assert_eq!(out.as_ptr(), ptr, "appended in place");
        assert_eq!(
            out[..36],
            add_order(H, 1, Side::Buy, 2, stock("A"), 3, None)
        );
        assert_eq!(
            out[36..],
            add_order(H, 1, Side::Buy, 2, stock("A"), 3, Some(*b"GSCO"))
        );
    }

    #[test]
    fn feed_encode_add_order_f_round_trips() {
        let bytes = add_order(H, 9, Side::Buy, 1, stock("QQQ"), 1, Some(*b"GSCO"));
        assert_eq!(bytes.len(), 40);
        let m = parse(&bytes).expect("valid F");
        check_header(&m, b'F');
        let Message::AddOrder(a) = m else {
            panic!("{m:?}")
        };
        assert_eq!(a.kind(), b'F');
        assert_eq!(
            (a.order_ref(), a.side(), a.shares(), a.price()),
            (9, Side::Buy, 1, 1)
        );
        assert_eq!(a.stock(), b"QQQ     ");
        assert_eq!(a.attribution(), Some(b"GSCO"));
    }

    #[test]
    fn feed_encode_order_executed_round_trips() {
        let bytes = order_executed(H, 77, 25, 0x0102_0304_0506_0708);
        let m = parse(&bytes).expect("valid E");
        check_header(&m, b'E');
        let Message::OrderExecuted(e) = m else {
            panic!("{m:?}")
        };
        assert_eq!(e.order_ref(), 77);
        assert_eq!(e.executed_shares(), 25);
        assert_eq!(e.match_number(), 0x0102_0304_0506_0708);
    }

    #[test]
    fn feed_encode_order_executed_with_price_round_trips() {
        for printable in [true, false] {
            let bytes = order_executed_with_price(H, 5, 6, 7, printable, 8_000);
            let m = parse(&bytes).expect("valid C");
            check_header(&m, b'C');
            let Message::OrderExecutedWithPrice(c) = m else {
                panic!("{m:?}")
            };
            assert_eq!(
                (c.order_ref(), c.executed_shares(), c.match_number()),
                (5, 6, 7)
            );
            assert_eq!(c.is_printable(), printable);
            assert_eq!(c.printable(), if printable { b'Y' } else { b'N' });
            assert_eq!(c.execution_price(), 8_000);
        }
    }

    #[test]
    fn feed_encode_order_cancel_delete_replace_round_trip() {
        let bytes = order_cancel(H, 11, 12);
        let m = parse(&bytes).expect("valid X");
        check_header(&m, b'X');
        let Message::OrderCancel(x) = m else {
            panic!("{m:?}")
        };
        assert_eq!((x.order_ref(), x.cancelled_shares()), (11, 12));

        let bytes = order_delete(H, 13);
        let m = parse(&bytes).expect("valid D");
        check_header(&m, b'D');
        let Message::OrderDelete(d) = m else {
            panic!("{m:?}")
        };
        assert_eq!(d.order_ref(), 13);

        let bytes = order_replace(H, 14, 15, 16, 17);
        let m = parse(&bytes).expect("valid U");
        check_header(&m, b'U');
        let Message::OrderReplace(u) = m else {
            panic!("{m:?}")
        };
        assert_eq!(
            (
                u.original_order_ref(),
                u.new_order_ref(),
                u.shares(),
                u.price()
            ),
            (14, 15, 16, 17)
        );
    }

    #[test]
    fn feed_encode_session_messages_round_trip() {
        let bytes = system_event(H, b'Q');
        let m = parse(&bytes).expect("valid S");
        check_header(&m, b'S');
        let Message::SystemEvent(s) = m else {
            panic!("{m:?}")
        };
        assert_eq!(s.event_code(), b'Q');

        let bytes = stock_directory(H, stock("AAPL"));
        let m = parse(&bytes).expect("valid R");
        check_header(&m, b'R');
        let Message::StockDirectory(r) = m else {
            panic!("{m:?}")
        };
        assert_eq!(r.stock_str(), Ok("AAPL"));
        assert_eq!((r.market_category(), r.financial_status()), (b'Q', b'N'));
        assert_eq!(r.round_lot_size(), 100);
        assert_eq!(r.issue_subtype(), b"Z ");
        assert_eq!(
            (r.authenticity(), r.luld_reference_price_tier()),
            (b'P', b'1')
        );
        assert_eq!((r.etp_leverage_factor(), r.inverse_indicator()), (0, b'N'));

        let bytes = trading_action(H, stock("GME"), b'H', *b"LUDP");
        let m = parse(&bytes).expect("valid H");
        check_header(&m, b'H');
        let Message::TradingAction(t) = m else {
            panic!("{m:?}")
        };
        assert_eq!(t.stock_str(), Ok("GME"));
        assert_eq!((t.trading_state(), t.reserved()), (b'H', b' '));
        assert_eq!(t.reason(), b"LUDP");
    }

    #[test]
    fn feed_encode_trade_and_noii_round_trip() {
        let bytes = trade(H, 0, Side::Buy, 500, stock("SPY"), 5_000_000, 99);
        let m = parse(&bytes).expect("valid P");
        check_header(&m, b'P');
        let Message::Trade(p) = m else {
            panic!("{m:?}")
        };
        assert_eq!(
            (p.order_ref(), p.side(), p.shares()),
            (0, Some(Side::Buy), 500)
        );
        assert_eq!(
            (p.stock_str(), p.price(), p.match_number()),
            (Ok("SPY"), 5_000_000, 99)
        );

        let bytes = noii(H, stock("IBM"), 1_000, 200, b'S', 1_234_500, b'C');
        let m = parse(&bytes).expect("valid I");
        check_header(&m, b'I');
        let Message::Noii(i) = m else { panic!("{m:?}") };
        assert_eq!((i.paired_shares(), i.imbalance_shares()), (1_000, 200));
        assert_eq!((i.imbalance_direction(), i.stock_str()), (b'S', Ok("IBM")));
        assert_eq!(
            (i.far_price(), i.near_price(), i.current_reference_price()),
            (1_234_500, 1_234_500, 1_234_500)
        );
        assert_eq!(
            (i.cross_type(), i.price_variation_indicator()),
            (b'C', b'L')
        );
    }
}
