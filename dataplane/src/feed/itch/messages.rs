//! Zero-copy typed views, one per ITCH 5.0 message type.
//!
//! A view is a borrowed fixed-size array (`&[u8; LEN]`) that [`parse`](super::parse) has
//! already length-checked, so every accessor is an infallible big-endian load at a constant
//! offset. Field offsets and widths follow the NASDAQ TotalView-ITCH 5.0 specification; every
//! one is checked against the message length at compile time (`const { assert!(..) }` in
//! [`view!`]), so an accessor can neither panic nor read past its message.
//!
//! Conventions: integers are big-endian; prices are `u32` integer ticks with 4 implied decimals
//! (`1_500_000` is $150.0000), except the MWCB levels, which are `u64` with 8 implied decimals;
//! timestamps are nanoseconds since midnight; alpha fields are returned as raw
//! `&[u8; N]` (left-justified, space-padded ASCII), with `*_str()` helpers that trim the padding.

use std::fmt;

use super::{Header, Side, alpha_str};

/// The `K` bytes of `bytes` starting at `at`.
///
/// Every call site is const-asserted to lie inside its message (see [`view!`]), so after
/// inlining the bounds test folds away and the fallback is dead code; it exists so that no
/// accessor carries a panic path.
#[inline(always)]
fn chunk<const K: usize>(bytes: &[u8], at: usize) -> &[u8; K] {
    match bytes.get(at..).and_then(<[u8]>::first_chunk::<K>) {
        Some(c) => c,
        None => const { &[0; K] },
    }
}

/// The 11-byte header every message starts with.
#[inline(always)]
pub(crate) fn header_of(bytes: &[u8]) -> Header {
    let h: &[u8; 11] = chunk(bytes, 0);
    Header {
        kind: h[0],
        stock_locate: u16::from_be_bytes([h[1], h[2]]),
        tracking: u16::from_be_bytes([h[3], h[4]]),
        timestamp: u64::from_be_bytes([0, 0, h[5], h[6], h[7], h[8], h[9], h[10]]),
    }
}

/// How a field prints in `Debug`: one-byte codes as characters, alpha fields as strings.
trait DebugAs {
    /// The printable form.
    type Out: fmt::Debug;
    /// Converts to the printable form.
    fn debug_as(self) -> Self::Out;
}

/// A one-byte alpha code, printed as `'B'` (or `'\x00'` when not printable).
struct Code(u8);

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.escape_ascii())
    }
}

/// An alpha field, printed as `"AAPL    "` with non-ASCII bytes escaped.
struct Alpha<'a>(&'a [u8]);

impl fmt::Debug for Alpha<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl DebugAs for u8 {
    type Out = Code;
    fn debug_as(self) -> Code {
        Code(self)
    }
}

impl<'a, const N: usize> DebugAs for &'a [u8; N] {
    type Out = Alpha<'a>;
    fn debug_as(self) -> Alpha<'a> {
        Alpha(self)
    }
}

macro_rules! debug_as_self {
    ($($t:ty),*) => {$(
        impl DebugAs for $t {
            type Out = $t;
            fn debug_as(self) -> $t {
                self
            }
        }
    )*};
}
debug_as_self!(u16, u32, u64);

/// Generates one accessor; `$len` is the message length the offset is checked against.
macro_rules! accessor {
    ($(#[$m:meta])* $field:ident: u8 @ $at:literal / $len:literal) => {
        $(#[$m])*
        #[inline]
        pub fn $field(&self) -> u8 {
            // A constant index into an array: out of range would not compile.
            self.0[$at]
        }
    };
    ($(#[$m:meta])* $field:ident: [u8; $n:literal] @ $at:literal / $len:literal) => {
        $(#[$m])*
        #[inline]
        pub fn $field(&self) -> &'a [u8; $n] {
            const { assert!($at + $n <= $len, "field runs past the end of the message") };
            chunk(self.0, $at)
        }
    };
    ($(#[$m:meta])* $field:ident: $int:ident @ $at:literal / $len:literal) => {
        $(#[$m])*
        #[inline]
        pub fn $field(&self) -> $int {
            const {
                assert!(
                    $at + size_of::<$int>() <= $len,
                    "field runs past the end of the message"
                )
            };
            <$int>::from_be_bytes(*chunk(self.0, $at))
        }
    };
}

/// Defines a view: the struct, `KIND`/`LEN`, `header()`, `as_bytes()`, one accessor per field
/// and a `Debug` that prints the header and every field.
macro_rules! view {
    (
        $(#[$meta:meta])*
        $name:ident = $kind:literal, $len:literal {
            $( $(#[$fmeta:meta])* $field:ident: $ty:tt @ $at:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        pub struct $name<'a>(pub(super) &'a [u8; $len]);

        impl<'a> $name<'a> {
            /// The message type byte.
            pub const KIND: u8 = $kind;
            /// The message length in bytes.
            pub const LEN: usize = $len;

            /// The common header: type, stock locate, tracking number, timestamp.
            #[inline]
            pub fn header(&self) -> Header {
                header_of(self.0)
            }

            /// The raw message bytes.
            #[inline]
            pub fn as_bytes(&self) -> &'a [u8; $len] {
                self.0
            }

            $( accessor!($(#[$fmeta])* $field: $ty @ $at / $len); )*
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("header", &self.header())
                    $( .field(stringify!($field), &DebugAs::debug_as(self.$field())) )*
                    .finish()
            }
        }
    };
}

/// Adds `stock_str()` to views with a `stock` field.
macro_rules! stock_str {
    ($($name:ident),*) => {$(
        impl<'a> $name<'a> {
            /// The stock symbol without its space padding: `Ok` if ASCII, else the raw bytes.
            #[inline]
            pub fn stock_str(&self) -> Result<&'a str, &'a [u8]> {
                alpha_str(self.stock())
            }
        }
    )*};
}

view! {
    /// `S` System Event: a session-wide state change.
    SystemEvent = b'S', 12 {
        /// `O` start of messages, `S` start of system hours, `Q` start of market hours,
        /// `M` end of market hours, `E` end of system hours, `C` end of messages.
        event_code: u8 @ 11,
    }
}

view! {
    /// `R` Stock Directory: binds a stock locate to a symbol, sent before the symbol trades.
    StockDirectory = b'R', 39 {
        /// The symbol, space-padded.
        stock: [u8; 8] @ 11,
        /// Listing market: `Q` Global Select, `G` Global Market, `S` Capital Market, `N` NYSE,
        /// `A` NYSE American, `P` NYSE Arca, `Z` BATS, `V` IEX, space not available.
        market_category: u8 @ 19,
        /// Financial status for NASDAQ-listed issues (`N` normal, `D` deficient, …; space
        /// otherwise).
        financial_status: u8 @ 20,
        /// Shares in one round lot.
        round_lot_size: u32 @ 21,
        /// `Y` if only round lots are accepted, `N` otherwise.
        round_lots_only: u8 @ 25,
        /// Security class (`C` common stock, `E` ETF, …).
        issue_classification: u8 @ 26,
        /// Security sub-type, two alpha characters.
        issue_subtype: [u8; 2] @ 27,
        /// `P` live/production, `T` test.
        authenticity: u8 @ 29,
        /// Reg SHO short sale threshold: `Y`, `N`, or space if not available.
        short_sale_threshold: u8 @ 30,
        /// `Y` new IPO, `N` not, space if not available.
        ipo_flag: u8 @ 31,
        /// LULD reference price tier: `1`, `2`, or space.
        luld_reference_price_tier: u8 @ 32,
        /// Exchange traded product: `Y`, `N`, or space.
        etp_flag: u8 @ 33,
        /// Leverage factor of the ETP (integer).
        etp_leverage_factor: u32 @ 34,
        /// `Y` inverse ETP, `N` not.
        inverse_indicator: u8 @ 38,
    }
}

view! {
    /// `H` Stock Trading Action: the symbol's trading state changed.
    TradingAction = b'H', 25 {
        /// The symbol, space-padded.
        stock: [u8; 8] @ 11,
        /// `H` halted, `P` paused, `Q` quotation only, `T` trading.
        trading_state: u8 @ 19,
        /// Reserved.
        reserved: u8 @ 20,
        /// Reason code, four alpha characters (space-padded).
        reason: [u8; 4] @ 21,
    }
}

view! {
    /// `Y` Reg SHO Short Sale Price Test Restricted Indicator.
    RegShoRestriction = b'Y', 20 {
        /// The symbol, space-padded.
        stock: [u8; 8] @ 11,
        /// `0` no price test, `1` in effect (intra-day drop), `2` remains in effect.
        reg_sho_action: u8 @ 19,
    }
}

view! {
    /// `L` Market Participant Position: a market maker's status in one symbol.
    MarketParticipantPosition = b'L', 26 {
        /// The market participant identifier, four alpha characters.
        mpid: [u8; 4] @ 11,
        /// The symbol, space-padded.
        stock: [u8; 8] @ 15,
        /// `Y` primary market maker, `N` not.
        primary_market_maker: u8 @ 23,
        /// `N` normal, `P` passive, `S` syndicate, `R` pre-syndicate, `L` penalty.
        market_maker_mode: u8 @ 24,
        /// `A` active, `E` excused, `W` withdrawn, `S` suspended, `D` deleted.
        market_participant_state: u8 @ 25,
    }
}

view! {
    /// `V` MWCB Decline Level: the market-wide circuit breaker levels for the day.
    MwcbDeclineLevel = b'V', 35 {
        /// Level 1, a price with 8 implied decimals.
        level1: u64 @ 11,
        /// Level 2, a price with 8 implied decimals.
        level2: u64 @ 19,
        /// Level 3, a price with 8 implied decimals.
        level3: u64 @ 27,
    }
}

view! {
    /// `W` MWCB Status: a market-wide circuit breaker level was breached.
    MwcbStatus = b'W', 12 {
        /// The level breached: `1`, `2` or `3`.
        breached_level: u8 @ 11,
    }
}

view! {
    /// `K` IPO Quoting Period Update: anticipated quotation release time of an IPO.
    IpoQuotingPeriod = b'K', 28 {
        /// The symbol, space-padded.
        stock: [u8; 8] @ 11,
        /// Quotation release time, seconds since midnight.
        release_time: u32 @ 19,
        /// `A` anticipated release time, `C` IPO release cancelled or postponed.
        release_qualifier: u8 @ 23,
        /// The IPO price, ticks with 4 implied decimals.
        ipo_price: u32 @ 24,
    }
}

view! {
    /// `J` LULD Auction Collar: collars for the re-opening auction after a LULD pause.
    LuldAuctionCollar = b'J', 35 {
        /// The symbol, space-padded.
        stock: [u8; 8] @ 11,
        /// Reference price for the collars, ticks with 4 implied decimals.
        reference_price: u32 @ 19,
        /// Upper collar, ticks with 4 implied decimals.
        upper_collar_price: u32 @ 23,
        /// Lower collar, ticks with 4 implied decimals.
        lower_collar_price: u32 @ 27,
        /// How many times the collar has been extended.
        extension: u32 @ 31,
    }
}

view! {
    /// `h` Operational Halt: a symbol is halted on one market centre for operational reasons.
    OperationalHalt = b'h', 21 {
        /// The symbol, space-padded.
        stock: [u8; 8] @ 11,
        /// `Q` NASDAQ, `B` BX, `X` PSX.
        market_code: u8 @ 19,
        /// `H` halted, `T` halt lifted.
        action: u8 @ 20,
    }
}

view! {
    /// `E` Order Executed: part or all of a resting order traded at its own price.
    OrderExecuted = b'E', 31 {
        /// The resting order's reference number.
        order_ref: u64 @ 11,
        /// Shares executed (subtract from the order).
        executed_shares: u32 @ 19,
        /// Match number (shared with a later broken-trade message, if any).
        match_number: u64 @ 23,
    }
}

view! {
    /// `C` Order Executed With Price: part or all of a resting order traded at a price that
    /// differs from its displayed one. The resting order keeps its own price in the book.
    OrderExecutedWithPrice = b'C', 36 {
        /// The resting order's reference number.
        order_ref: u64 @ 11,
        /// Shares executed (subtract from the order).
        executed_shares: u32 @ 19,
        /// Match number.
        match_number: u64 @ 23,
        /// `Y` printable (counts for volume), `N` not.
        printable: u8 @ 31,
        /// The execution price, ticks with 4 implied decimals.
        execution_price: u32 @ 32,
    }
}

view! {
    /// `X` Order Cancel: shares removed from a resting order (partial cancel).
    OrderCancel = b'X', 23 {
        /// The resting order's reference number.
        order_ref: u64 @ 11,
        /// Shares cancelled (subtract from the order).
        cancelled_shares: u32 @ 19,
    }
}

view! {
    /// `D` Order Delete: a resting order left the book.
    OrderDelete = b'D', 19 {
        /// The deleted order's reference number.
        order_ref: u64 @ 11,
    }
}

view! {
    /// `U` Order Replace: the original order leaves the book and the new one joins with the
    /// same side and stock (losing time priority).
    OrderReplace = b'U', 35 {
        /// The replaced order's reference number.
        original_order_ref: u64 @ 11,
        /// The new order's reference number.
        new_order_ref: u64 @ 19,
        /// Shares of the new order.
        shares: u32 @ 27,
        /// Price of the new order, ticks with 4 implied decimals.
        price: u32 @ 31,
    }
}

view! {
    /// `P` Trade (non-cross): a match against a non-displayed order. No book effect.
    Trade = b'P', 44 {
        /// The non-displayed order's reference number (NASDAQ sends 0 for these).
        order_ref: u64 @ 11,
        /// Side byte as sent (`B`/`S`; NASDAQ has sent `B` only since 2014). See
        /// [`Trade::side`].
        side_byte: u8 @ 19,
        /// Shares traded.
        shares: u32 @ 20,
        /// The symbol, space-padded.
        stock: [u8; 8] @ 24,
        /// Trade price, ticks with 4 implied decimals.
        price: u32 @ 32,
        /// Match number.
        match_number: u64 @ 36,
    }
}

view! {
    /// `Q` Cross Trade: the result of an opening, closing, IPO or halt cross.
    CrossTrade = b'Q', 40 {
        /// Shares matched in the cross (8 bytes in ITCH 5.0).
        shares: u64 @ 11,
        /// The symbol, space-padded.
        stock: [u8; 8] @ 19,
        /// Cross price, ticks with 4 implied decimals.
        cross_price: u32 @ 27,
        /// Match number.
        match_number: u64 @ 31,
        /// `O` opening, `C` closing, `H` halt/IPO, `I` intraday (extended hours).
        cross_type: u8 @ 39,
    }
}

view! {
    /// `B` Broken Trade: an earlier execution was broken (cancelled as erroneous).
    BrokenTrade = b'B', 19 {
        /// Match number of the broken execution.
        match_number: u64 @ 11,
    }
}

view! {
    /// `I` Net Order Imbalance Indicator (NOII): imbalance data ahead of a cross.
    Noii = b'I', 50 {
        /// Shares paired at the current reference price.
        paired_shares: u64 @ 11,
        /// Shares not paired at the current reference price.
        imbalance_shares: u64 @ 19,
        /// `B` buy, `S` sell, `N` none, `O` insufficient orders to calculate.
        imbalance_direction: u8 @ 27,
        /// The symbol, space-padded.
        stock: [u8; 8] @ 28,
        /// Far (crossing-only) clearing price, ticks with 4 implied decimals.
        far_price: u32 @ 36,
        /// Near (crossing plus continuous) clearing price, ticks with 4 implied decimals.
        near_price: u32 @ 40,
        /// Current reference price, ticks with 4 implied decimals.
        current_reference_price: u32 @ 44,
        /// `O` opening, `C` closing, `H` halt/IPO, `A` extended trading close.
        cross_type: u8 @ 48,
        /// Deviation of the near price from the reference: `L` < 1%, `1`..`9`, `A`, `B`, `C`,
        /// or space when it cannot be calculated.
        price_variation_indicator: u8 @ 49,
    }
}

view! {
    /// `N` Retail Price Improvement Indicator (RPII): retail interest on a side.
    Rpii = b'N', 20 {
        /// The symbol, space-padded.
        stock: [u8; 8] @ 11,
        /// `B` buy side, `S` sell side, `A` both, `N` none.
        interest_flag: u8 @ 19,
    }
}

view! {
    /// `O` Direct Listing with Capital Raise Price Discovery (added to ITCH 5.0 in 2020).
    DirectListingPriceDiscovery = b'O', 48 {
        /// The symbol, space-padded.
        stock: [u8; 8] @ 11,
        /// `Y` eligible to open, `N` not.
        open_eligibility_status: u8 @ 19,
        /// Minimum allowable price, ticks with 4 implied decimals.
        minimum_allowable_price: u32 @ 20,
        /// Maximum allowable price, ticks with 4 implied decimals.
        maximum_allowable_price: u32 @ 24,
        /// Near execution price, ticks with 4 implied decimals.
        near_execution_price: u32 @ 28,
        /// Near execution time, as sent (the specification gives 8 bytes and no unit).
        near_execution_time: u64 @ 32,
        /// Lower price range collar, ticks with 4 implied decimals.
        lower_price_range_collar: u32 @ 40,
        /// Upper price range collar, ticks with 4 implied decimals.
        upper_price_range_collar: u32 @ 44,
    }
}

stock_str!(
    StockDirectory,
    TradingAction,
    RegShoRestriction,
    MarketParticipantPosition,
    IpoQuotingPeriod,
    LuldAuctionCollar,
    OperationalHalt,
    Trade,
    CrossTrade,
    Noii,
    Rpii,
    DirectListingPriceDiscovery
);

impl<'a> MarketParticipantPosition<'a> {
    /// The MPID without its space padding: `Ok` if ASCII, else the raw bytes.
    #[inline]
    pub fn mpid_str(&self) -> Result<&'a str, &'a [u8]> {
        alpha_str(self.mpid())
    }
}

impl Trade<'_> {
    /// The side, if the side byte is `B` or `S`. `P` messages are not validated at parse time:
    /// the field has no book effect and NASDAQ fixed it to `B` in 2014.
    #[inline]
    pub fn side(&self) -> Option<Side> {
        Side::from_byte(self.side_byte())
    }
}

impl OrderExecutedWithPrice<'_> {
    /// Whether the execution counts towards volume (`printable() == b'Y'`).
    #[inline]
    pub fn is_printable(&self) -> bool {
        self.printable() == b'Y'
    }
}

/// `A` Add Order (no attribution) or `F` Add Order with MPID attribution: a new displayed
/// order joins the book. The side byte was validated by [`parse`](super::parse).
#[derive(Clone, Copy)]
pub struct AddOrder<'a> {
    /// The 36 bytes common to `A` and `F`.
    pub(super) base: &'a [u8; 36],
    /// The 4 attribution bytes that follow in an `F`.
    pub(super) attribution: Option<&'a [u8; 4]>,
}

impl<'a> AddOrder<'a> {
    /// Type byte of an add order without attribution.
    pub const KIND_A: u8 = b'A';
    /// Type byte of an add order with MPID attribution.
    pub const KIND_F: u8 = b'F';
    /// Length of an `A` message.
    pub const LEN_A: usize = 36;
    /// Length of an `F` message.
    pub const LEN_F: usize = 40;

    /// The common header: type (`A` or `F`), stock locate, tracking number, timestamp.
    #[inline]
    pub fn header(&self) -> Header {
        header_of(self.base)
    }

    /// `A` or `F`.
    #[inline]
    pub fn kind(&self) -> u8 {
        self.base[0]
    }

    /// The new order's reference number (unique for the day).
    #[inline]
    pub fn order_ref(&self) -> u64 {
        u64::from_be_bytes(*chunk(self.base, 11))
    }

    /// The side byte as sent: `B` or `S` (checked by `parse`).
    #[inline]
    pub fn side_byte(&self) -> u8 {
        self.base[19]
    }

    /// Buy or sell.
    #[inline]
    pub fn side(&self) -> Side {
        // `parse` admitted only `B` and `S`.
        if self.base[19] == b'B' {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    /// Displayed shares.
    #[inline]
    pub fn shares(&self) -> u32 {
        u32::from_be_bytes(*chunk(self.base, 20))
    }

    /// The symbol, space-padded.
    #[inline]
    pub fn stock(&self) -> &'a [u8; 8] {
        chunk(self.base, 24)
    }

    /// The symbol without its space padding: `Ok` if ASCII, else the raw bytes.
    #[inline]
    pub fn stock_str(&self) -> Result<&'a str, &'a [u8]> {
        alpha_str(self.stock())
    }

    /// The limit price, ticks with 4 implied decimals.
    #[inline]
    pub fn price(&self) -> u32 {
        u32::from_be_bytes(*chunk(self.base, 32))
    }

    /// The MPID attribution of an `F` message; `None` for an `A`.
    #[inline]
    pub fn attribution(&self) -> Option<&'a [u8; 4]> {
        self.attribution
    }

    /// The attribution without its space padding (`None` for an `A`).
    #[inline]
    pub fn attribution_str(&self) -> Option<Result<&'a str, &'a [u8]>> {
        self.attribution.map(|a| alpha_str(a))
    }
}

impl fmt::Debug for AddOrder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddOrder")
            .field("header", &self.header())
            .field("order_ref", &self.order_ref())
            .field("side", &self.side())
            .field("shares", &self.shares())
            .field("stock", &Alpha(self.stock()))
            .field("price", &self.price())
            .field("attribution", &self.attribution.map(|a| Alpha(a)))
            .finish()
    }
}

/// Per-type tests from byte vectors laid out by hand after the specification's tables (not
/// from the encoder), checking every accessor.
#[cfg(test)]
mod tests {
    use super::super::{Message, parse};
    use super::*;

    /// Stock locate 0x0102, tracking 0x0304, timestamp 0x0A0B0C0D0E0F.
    const LOCATE: [u8; 2] = [0x01, 0x02];
    const TRACKING: [u8; 2] = [0x03, 0x04];
    const TS: [u8; 6] = [0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F];

    /// Concatenates a message's fields: the type byte, the common header, then `body`.
    fn frame(kind: u8, body: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![kind];
        v.extend_from_slice(&LOCATE);
        v.extend_from_slice(&TRACKING);
        v.extend_from_slice(&TS);
        for part in body {
            v.extend_from_slice(part);
        }
        v
    }

    /// Parses `bytes`, expecting message variant `$variant`, and returns its view.
    macro_rules! parse_as {
        ($bytes:expr, $variant:ident) => {
            match parse(&$bytes) {
                Ok(Message::$variant(m)) => m,
                other => panic!("expected {}, got {other:?}", stringify!($variant)),
            }
        };
    }

    fn check_header(h: Header, kind: u8) {
        assert_eq!(h.kind, kind);
        assert_eq!(h.stock_locate, 0x0102);
        assert_eq!(h.tracking, 0x0304);
        assert_eq!(h.timestamp, 0x0A0B_0C0D_0E0F);
    }

    #[test]
    fn feed_itch_system_event() {
        let bytes = frame(b'S', &[b"Q"]);
        assert_eq!(bytes.len(), 12);
        let m = parse_as!(bytes, SystemEvent);
        check_header(m.header(), b'S');
        assert_eq!(m.event_code(), b'Q');
        assert_eq!(m.as_bytes()[..], bytes[..]);
    }

    #[test]
    fn feed_itch_stock_directory() {
        let bytes = frame(
            b'R',
            &[
                b"AAPL    ",
                b"Q",
                b"N",
                &[0x00, 0x00, 0x00, 0x64],
                b"N",
                b"C",
                b"Z ",
                b"P",
                b"N",
                b"N",
                b"1",
                b"Y",
                &[0x00, 0x00, 0x00, 0x03],
                b"Y",
            ],
        );
        assert_eq!(bytes.len(), 39);
        let m = parse_as!(bytes, StockDirectory);
        check_header(m.header(), b'R');
        assert_eq!(m.stock(), b"AAPL    ");
        assert_eq!(m.stock_str(), Ok("AAPL"));
        assert_eq!(m.market_category(), b'Q');
        assert_eq!(m.financial_status(), b'N');
        assert_eq!(m.round_lot_size(), 100);
        assert_eq!(m.round_lots_only(), b'N');
        assert_eq!(m.issue_classification(), b'C');
        assert_eq!(m.issue_subtype(), b"Z ");
        assert_eq!(m.authenticity(), b'P');
        assert_eq!(m.short_sale_threshold(), b'N');
        assert_eq!(m.ipo_flag(), b'N');
        assert_eq!(m.luld_reference_price_tier(), b'1');
        assert_eq!(m.etp_flag(), b'Y');
        assert_eq!(m.etp_leverage_factor(), 3);
        assert_eq!(m.inverse_indicator(), b'Y');
    }

    #[test]
    fn feed_itch_trading_action() {
        let bytes = frame(b'H', &[b"ZVZZT   ", b"H", b" ", b"IPO1"]);
        assert_eq!(bytes.len(), 25);
        let m = parse_as!(bytes, TradingAction);
        check_header(m.header(), b'H');
        assert_eq!(m.stock_str(), Ok("ZVZZT"));
        assert_eq!(m.trading_state(), b'H');
        assert_eq!(m.reserved(), b' ');
        assert_eq!(m.reason(), b"IPO1");
    }

    #[test]
    fn feed_itch_reg_sho_restriction() {
        let bytes = frame(b'Y', &[b"TSLA    ", b"1"]);
        assert_eq!(bytes.len(), 20);
        let m = parse_as!(bytes, RegShoRestriction);
        check_header(m.header(), b'Y');
        assert_eq!(m.stock_str(), Ok("TSLA"));
        assert_eq!(m.reg_sho_action(), b'1');
    }

    #[test]
    fn feed_itch_market_participant_position() {
        let bytes = frame(b'L', &[b"GSCO", b"MSFT    ", b"Y", b"N", b"A"]);
        assert_eq!(bytes.len(), 26);
        let m = parse_as!(bytes, MarketParticipantPosition);
        check_header(m.header(), b'L');
        assert_eq!(m.mpid(), b"GSCO");
        assert_eq!(m.mpid_str(), Ok("GSCO"));
        assert_eq!(m.stock_str(), Ok("MSFT"));
        assert_eq!(m.primary_market_maker(), b'Y');
        assert_eq!(m.market_maker_mode(), b'N');
        assert_eq!(m.market_participant_state(), b'A');
    }

    #[test]
    fn feed_itch_mwcb_decline_level() {
        // 3,000.00000000, 2,800.00000000 and 2,500.12345678 with 8 implied decimals.
        let l1: [u8; 8] = [0x00, 0x00, 0x00, 0x45, 0xD9, 0x64, 0xB8, 0x00];
        let l2: [u8; 8] = [0x00, 0x00, 0x00, 0x41, 0x31, 0x4C, 0xF0, 0x00];
        let l3: [u8; 8] = [0x00, 0x00, 0x00, 0x3A, 0x35, 0xE5, 0xA5, 0x4E];
        let bytes = frame(b'V', &[&l1, &l2, &l3]);
        assert_eq!(bytes.len(), 35);
        let m = parse_as!(bytes, MwcbDeclineLevel);
        check_header(m.header(), b'V');
        assert_eq!(m.level1(), 300_000_000_000);
        assert_eq!(m.level2(), 280_000_000_000);
        assert_eq!(m.level3(), 250_012_345_678);
    }

    #[test]
    fn feed_itch_mwcb_status() {
        let bytes = frame(b'W', &[b"2"]);
        assert_eq!(bytes.len(), 12);
        let m = parse_as!(bytes, MwcbStatus);
        check_header(m.header(), b'W');
        assert_eq!(m.breached_level(), b'2');
    }

    #[test]
    fn feed_itch_ipo_quoting_period() {
        // Release at 34,200 s (09:30:00), IPO price $17.5000.
        let bytes = frame(
            b'K',
            &[
                b"ARM     ",
                &[0x00, 0x00, 0x85, 0x98],
                b"A",
                &[0x00, 0x02, 0xAB, 0x98],
            ],
        );
        assert_eq!(bytes.len(), 28);
        let m = parse_as!(bytes, IpoQuotingPeriod);
        check_header(m.header(), b'K');
        assert_eq!(m.stock_str(), Ok("ARM"));
        assert_eq!(m.release_time(), 34_200);
        assert_eq!(m.release_qualifier(), b'A');
        assert_eq!(m.ipo_price(), 175_000);
    }

    #[test]
    fn feed_itch_luld_auction_collar() {
        let bytes = frame(
            b'J',
            &[
                b"AMC     ",
                &[0x00, 0x01, 0x86, 0xA0],
                &[0x00, 0x01, 0xAD, 0xB0],
                &[0x00, 0x01, 0x5F, 0x90],
                &[0x00, 0x00, 0x00, 0x02],
            ],
        );
        assert_eq!(bytes.len(), 35);
        let m = parse_as!(bytes, LuldAuctionCollar);
        check_header(m.header(), b'J');
        assert_eq!(m.stock_str(), Ok("AMC"));
        assert_eq!(m.reference_price(), 100_000);
        assert_eq!(m.upper_collar_price(), 110_000);
        assert_eq!(m.lower_collar_price(), 90_000);
        assert_eq!(m.extension(), 2);
    }

    #[test]
    fn feed_itch_operational_halt() {
        let bytes = frame(b'h', &[b"QQQ     ", b"Q", b"H"]);
        assert_eq!(bytes.len(), 21);
        let m = parse_as!(bytes, OperationalHalt);
        check_header(m.header(), b'h');
        assert_eq!(m.stock_str(), Ok("QQQ"));
        assert_eq!(m.market_code(), b'Q');
        assert_eq!(m.action(), b'H');
    }

    const ORDER_REF: [u8; 8] = [0x00, 0x00, 0x00, 0x00, 0x0B, 0xAD, 0xF0, 0x0D];
    const MATCH: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF];
    /// 100 shares; $150.2500 = 1,502,500 ticks.
    const SHARES: [u8; 4] = [0x00, 0x00, 0x00, 0x64];
    const PRICE: [u8; 4] = [0x00, 0x16, 0xED, 0x24];

    #[test]
    fn feed_itch_add_order_a() {
        let bytes = frame(b'A', &[&ORDER_REF, b"B", &SHARES, b"AAPL    ", &PRICE]);
        assert_eq!(bytes.len(), 36);
        let m = parse_as!(bytes, AddOrder);
        check_header(m.header(), b'A');
        assert_eq!(m.kind(), b'A');
        assert_eq!(m.order_ref(), 0x0BAD_F00D);
        assert_eq!(m.side_byte(), b'B');
        assert_eq!(m.side(), Side::Buy);
        assert_eq!(m.shares(), 100);
        assert_eq!(m.stock(), b"AAPL    ");
        assert_eq!(m.stock_str(), Ok("AAPL"));
        assert_eq!(m.price(), 1_502_500);
        assert_eq!(m.attribution(), None);
        assert_eq!(m.attribution_str(), None);
    }

    #[test]
    fn feed_itch_add_order_f() {
        let bytes = frame(
            b'F',
            &[&ORDER_REF, b"S", &SHARES, b"AAPL    ", &PRICE, b"NITE"],
        );
        assert_eq!(bytes.len(), 40);
        let m = parse_as!(bytes, AddOrder);
        check_header(m.header(), b'F');
        assert_eq!(m.kind(), b'F');
        assert_eq!(m.order_ref(), 0x0BAD_F00D);
        assert_eq!(m.side(), Side::Sell);
        assert_eq!(m.shares(), 100);
        assert_eq!(m.stock_str(), Ok("AAPL"));
        assert_eq!(m.price(), 1_502_500);
        assert_eq!(m.attribution(), Some(b"NITE"));
        assert_eq!(m.attribution_str(), Some(Ok("NITE")));
    }

    #[test]
    fn feed_itch_order_executed() {
        let bytes = frame(b'E', &[&ORDER_REF, &[0x00, 0x00, 0x00, 0x28], &MATCH]);
        assert_eq!(bytes.len(), 31);
        let m = parse_as!(bytes, OrderExecuted);
        check_header(m.header(), b'E');
        assert_eq!(m.order_ref(), 0x0BAD_F00D);
        assert_eq!(m.executed_shares(), 40);
        assert_eq!(m.match_number(), 0x0123_4567_89AB_CDEF);
    }

    #[test]
    fn feed_itch_order_executed_with_price() {
        let bytes = frame(b'C', &[&ORDER_REF, &SHARES, &MATCH, b"N", &PRICE]);
        assert_eq!(bytes.len(), 36);
        let m = parse_as!(bytes, OrderExecutedWithPrice);
        check_header(m.header(), b'C');
        assert_eq!(m.order_ref(), 0x0BAD_F00D);
        assert_eq!(m.executed_shares(), 100);
        assert_eq!(m.match_number(), 0x0123_4567_89AB_CDEF);
        assert_eq!(m.printable(), b'N');
        assert!(!m.is_printable());
        assert_eq!(m.execution_price(), 1_502_500);
    }

    #[test]
    fn feed_itch_order_cancel() {
        let bytes = frame(b'X', &[&ORDER_REF, &[0x00, 0x00, 0x01, 0x00]]);
        assert_eq!(bytes.len(), 23);
        let m = parse_as!(bytes, OrderCancel);
        check_header(m.header(), b'X');
        assert_eq!(m.order_ref(), 0x0BAD_F00D);
        assert_eq!(m.cancelled_shares(), 256);
    }

    #[test]
    fn feed_itch_order_delete() {
        let bytes = frame(b'D', &[&ORDER_REF]);
        assert_eq!(bytes.len(), 19);
        let m = parse_as!(bytes, OrderDelete);
        check_header(m.header(), b'D');
        assert_eq!(m.order_ref(), 0x0BAD_F00D);
    }

    #[test]
    fn feed_itch_order_replace() {
        let new_ref = [0x00, 0x00, 0x00, 0x00, 0x0B, 0xAD, 0xF0, 0x0E];
        let bytes = frame(
            b'U',
            &[&ORDER_REF, &new_ref, &[0x00, 0x00, 0x00, 0xC8], &PRICE],
        );
        assert_eq!(bytes.len(), 35);
        let m = parse_as!(bytes, OrderReplace);
        check_header(m.header(), b'U');
        assert_eq!(m.original_order_ref(), 0x0BAD_F00D);
        assert_eq!(m.new_order_ref(), 0x0BAD_F00E);
        assert_eq!(m.shares(), 200);
        assert_eq!(m.price(), 1_502_500);
    }

    #[test]
    fn feed_itch_trade() {
        let bytes = frame(b'P', &[&[0; 8], b"B", &SHARES, b"SPY     ", &PRICE, &MATCH]);
        assert_eq!(bytes.len(), 44);
        let m = parse_as!(bytes, Trade);
        check_header(m.header(), b'P');
        assert_eq!(m.order_ref(), 0);
        assert_eq!(m.side_byte(), b'B');
        assert_eq!(m.side(), Some(Side::Buy));
        assert_eq!(m.shares(), 100);
        assert_eq!(m.stock_str(), Ok("SPY"));
        assert_eq!(m.price(), 1_502_500);
        assert_eq!(m.match_number(), 0x0123_4567_89AB_CDEF);
    }

    #[test]
    fn feed_itch_trade_side_is_not_validated() {
        let bytes = frame(b'P', &[&[0; 8], b" ", &SHARES, b"SPY     ", &PRICE, &MATCH]);
        let m = parse_as!(bytes, Trade);
        assert_eq!(m.side(), None);
    }

    #[test]
    fn feed_itch_cross_trade() {
        let shares = [0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00];
        let bytes = frame(b'Q', &[&shares, b"AAPL    ", &PRICE, &MATCH, b"O"]);
        assert_eq!(bytes.len(), 40);
        let m = parse_as!(bytes, CrossTrade);
        check_header(m.header(), b'Q');
        assert_eq!(m.shares(), 1 << 32);
        assert_eq!(m.stock_str(), Ok("AAPL"));
        assert_eq!(m.cross_price(), 1_502_500);
        assert_eq!(m.match_number(), 0x0123_4567_89AB_CDEF);
        assert_eq!(m.cross_type(), b'O');
    }

    #[test]
    fn feed_itch_broken_trade() {
        let bytes = frame(b'B', &[&MATCH]);
        assert_eq!(bytes.len(), 19);
        let m = parse_as!(bytes, BrokenTrade);
        check_header(m.header(), b'B');
        assert_eq!(m.match_number(), 0x0123_4567_89AB_CDEF);
    }

    #[test]
    fn feed_itch_noii() {
        let bytes = frame(
            b'I',
            &[
                &[0, 0, 0, 0, 0, 0, 0x27, 0x10],
                &[0, 0, 0, 0, 0, 0, 0x01, 0xF4],
                b"B",
                b"IBM     ",
                &[0x00, 0x0F, 0x42, 0x40],
                &[0x00, 0x0F, 0x42, 0x68],
                &[0x00, 0x0F, 0x42, 0x90],
                b"C",
                b"1",
            ],
        );
        assert_eq!(bytes.len(), 50);
        let m = parse_as!(bytes, Noii);
        check_header(m.header(), b'I');
        assert_eq!(m.paired_shares(), 10_000);
        assert_eq!(m.imbalance_shares(), 500);
        assert_eq!(m.imbalance_direction(), b'B');
        assert_eq!(m.stock_str(), Ok("IBM"));
        assert_eq!(m.far_price(), 1_000_000);
        assert_eq!(m.near_price(), 1_000_040);
        assert_eq!(m.current_reference_price(), 1_000_080);
        assert_eq!(m.cross_type(), b'C');
        assert_eq!(m.price_variation_indicator(), b'1');
    }

    #[test]
    fn feed_itch_rpii() {
        let bytes = frame(b'N', &[b"KO      ", b"A"]);
        assert_eq!(bytes.len(), 20);
        let m = parse_as!(bytes, Rpii);
        check_header(m.header(), b'N');
        assert_eq!(m.stock_str(), Ok("KO"));
        assert_eq!(m.interest_flag(), b'A');
    }

    #[test]
    fn feed_itch_direct_listing_price_discovery() {
        let bytes = frame(
            b'O',
            &[
                b"RDDT    ",
                b"Y",
                &[0x00, 0x03, 0x0D, 0x40],
                &[0x00, 0x08, 0x95, 0x44],
                &[0x00, 0x05, 0x7E, 0x40],
                &MATCH,
                &[0x00, 0x04, 0xE2, 0x00],
                &[0x00, 0x06, 0x1A, 0x80],
            ],
        );
        assert_eq!(bytes.len(), 48);
        let m = parse_as!(bytes, DirectListingPriceDiscovery);
        check_header(m.header(), b'O');
        assert_eq!(m.stock_str(), Ok("RDDT"));
        assert_eq!(m.open_eligibility_status(), b'Y');
        assert_eq!(m.minimum_allowable_price(), 200_000);
        assert_eq!(m.maximum_allowable_price(), 562_500);
        assert_eq!(m.near_execution_price(), 360_000);
        assert_eq!(m.near_execution_time(), 0x0123_4567_89AB_CDEF);
        assert_eq!(m.lower_price_range_collar(), 320_000);
        assert_eq!(m.upper_price_range_collar(), 400_000);
    }

    #[test]
    fn feed_itch_view_constants_match_length_of() {
        let pairs = [
            (SystemEvent::KIND, SystemEvent::LEN),
            (StockDirectory::KIND, StockDirectory::LEN),
            (TradingAction::KIND, TradingAction::LEN),
            (RegShoRestriction::KIND, RegShoRestriction::LEN),
            (
                MarketParticipantPosition::KIND,
                MarketParticipantPosition::LEN,
            ),
            (MwcbDeclineLevel::KIND, MwcbDeclineLevel::LEN),
            (MwcbStatus::KIND, MwcbStatus::LEN),
            (IpoQuotingPeriod::KIND, IpoQuotingPeriod::LEN),
            (LuldAuctionCollar::KIND, LuldAuctionCollar::LEN),
            (OperationalHalt::KIND, OperationalHalt::LEN),
            (AddOrder::KIND_A, AddOrder::LEN_A),
            (AddOrder::KIND_F, AddOrder::LEN_F),
            (OrderExecuted::KIND, OrderExecuted::LEN),
            (OrderExecutedWithPrice::KIND, OrderExecutedWithPrice::LEN),
            (OrderCancel::KIND, OrderCancel::LEN),
            (OrderDelete::KIND, OrderDelete::LEN),
            (OrderReplace::KIND, OrderReplace::LEN),
            (Trade::KIND, Trade::LEN),
            (CrossTrade::KIND, CrossTrade::LEN),
            (BrokenTrade::KIND, BrokenTrade::LEN),
            (Noii::KIND, Noii::LEN),
            (Rpii::KIND, Rpii::LEN),
            (
                DirectListingPriceDiscovery::KIND,
                DirectListingPriceDiscovery::LEN,
            ),
        ];
        for (kind, len) in pairs {
            assert_eq!(
                super::super::length_of(kind),
                Some(len),
                "{}",
                char::from(kind)
            );
        }
    }

    #[test]
    fn feed_itch_debug_prints_every_field() {
        let bytes = frame(
            b'F',
            &[&ORDER_REF, b"S", &SHARES, b"AAPL    ", &PRICE, b"NITE"],
        );
        let m = parse(&bytes).expect("valid F");
        assert_eq!(
            format!("{m:?}"),
            "AddOrder(AddOrder { header: Header { kind: 'F', stock_locate: 258, tracking: 772, \
             timestamp: 11042563100175 }, order_ref: 195948557, side: Sell, shares: 100, \
             stock: \"AAPL    \", price: 1502500, attribution: Some(\"NITE\") })"
        );
        let bytes = frame(b'H', &[b"\xffBC     ", b"H", b" ", b"IPO1"]);
        let m = parse(&bytes).expect("valid H");
        assert_eq!(
            format!("{m:?}"),
            "TradingAction(TradingAction { header: Header { kind: 'H', stock_locate: 258, \
             tracking: 772, timestamp: 11042563100175 }, stock: \"\\xffBC     \", \
             trading_state: 'H', reserved: ' ', reason: \"IPO1\" })"
        );
        let t = parse_as!(bytes, TradingAction);
        assert_eq!(t.stock_str(), Err(&b"\xffBC"[..]));
    }
}
