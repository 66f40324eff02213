//! [`L2Change`]: the one record a book emits per change, the event the data plane publishes.

use crate::feed::itch::Side;

/// The new state of one price level after a change: `shares == 0` (and `orders == 0`) means the
/// level is gone. Applying every change in order to an empty price → (shares, orders) map per
/// side reproduces the book's L2 state exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Change {
    /// The book's stock locate.
    pub locate: u16,
    /// Which side of the book.
    pub side: Side,
    /// Price in the feed's integer units (see [`super::BookView::price_exponent`]).
    pub price: i64,
    /// Aggregate shares resting at the price after the change.
    pub shares: u64,
    /// Number of orders resting at the price after the change.
    pub orders: u32,
    /// Exchange timestamp of the message that caused it, ns since midnight.
    pub timestamp: u64,
}

impl L2Change {
    /// The change of the level at `price` (as the books hold it) to `shares` and `orders`.
    #[inline(always)]
    pub fn of(
        locate: u16,
        side: Side,
        price: i64,
        shares: u64,
        orders: u32,
        timestamp: u64,
    ) -> Self {
        Self {
            locate,
            side,
            price,
            shares,
            orders,
            timestamp,
        }
    }
}

/// What happened to one order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OrderAction {
    /// A new order rests at the back of its price (also each order of a resync).
    Add,
    /// Shares of it traded.
    Execute,
    /// Shares of it were cancelled.
    Cancel,
    /// It left the book.
    Delete,
    /// It left the book and a new order (`other`, maybe the same reference) joined the back of
    /// `price` with `shares`, same side.
    Replace,
}

/// One order's change, as the books made it (see [`ChangeSink::order`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderChange {
    /// The book's stock locate.
    pub locate: u16,
    /// What happened.
    pub action: OrderAction,
    /// The order's side.
    pub side: Side,
    /// Add, Replace: the (new) order's shares. Execute, Cancel: the shares taken off (never
    /// more than it had). Delete: the shares it had.
    pub shares: u32,
    /// The order (Replace: the one replaced).
    pub reference: u64,
    /// Replace: the new reference. Execute: the match number. Otherwise 0.
    pub other: u64,
    /// Add, Replace: the (new) price; otherwise the order's price.
    pub price: i64,
    /// Exchange time of the message.
    pub timestamp: u64,
}

/// Where [`super::Books`] sends the changes of a message: any `FnMut(L2Change)`, or a type of
/// its own whose [`ChangeSink::change`] is `#[inline(always)]`. A closure called from the
/// book's several emit sites is often not inlined; the change then goes through the stack,
/// and reading it back field-merged right after it was written field by field stalls on
/// store forwarding. An always-inlined sink keeps the change in registers.
///
/// Order changes go to [`ChangeSink::order`], which does nothing unless the sink says
/// otherwise: a sink that wants only levels pays nothing for them. A message's order change
/// comes after its level changes.
pub trait ChangeSink {
    /// One level changed.
    fn change(&mut self, change: L2Change);

    /// One order changed (after the level changes it made).
    #[inline(always)]
    fn order(&mut self, change: OrderChange) {
        let _ = change;
    }
}

impl<F: FnMut(L2Change)> ChangeSink for F {
    #[inline(always)]
    fn change(&mut self, change: L2Change) {
        self(change);
    }
}
