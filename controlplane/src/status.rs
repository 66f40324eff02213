//! [`SymbolStatus`]: one symbol's trading status as the control plane keeps it from the data
//! plane's status events, and the market-wide circuit breakers ([`Market`]); what the status
//! stream sends (`pb::TradingStatus`: the whole state on each change) and the trade stream's
//! message.

use dataplane::feed::itch::Side;
use dataplane::runtime::event::{StatusChange, TradeKind, TradeUpdate};

use crate::pb;

/// A symbol's trading status: the last of each kind of status message, `None` until one came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolStatus {
    /// H: the state byte and its reason code.
    trading: Option<(u8, [u8; 4])>,
    /// Y: the Reg SHO action byte.
    reg_sho: Option<u8>,
    /// J: the last LULD collars.
    luld: Option<pb::LuldCollar>,
    /// K: the last IPO release.
    ipo: Option<pb::IpoRelease>,
    /// I: the last imbalance.
    imbalance: Option<pb::Imbalance>,
}

/// The market-wide circuit breakers (ITCH V and W), the same for every symbol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Market {
    levels: [u64; 3],
    breached: u32,
}

impl Market {
    /// Applies a market-wide change; others are ignored.
    pub fn apply(&mut self, change: &StatusChange) {
        match *change {
            StatusChange::MwcbLevels { levels } => self.levels = levels,
            StatusChange::MwcbBreach { level } => {
                self.breached = u32::from(level.wrapping_sub(b'0')).min(3);
            }
            _ => {}
        }
    }

    fn message(&self) -> Option<pb::Mwcb> {
        (*self != Self::default()).then_some(pb::Mwcb {
            level1: self.levels[0],
            level2: self.levels[1],
            level3: self.levels[2],
            breached: self.breached,
        })
    }
}

/// What kind of change a status event is, for `TradingStatus.change`.
pub fn change_kind(change: &StatusChange) -> pb::StatusChange {
    match change {
        StatusChange::Trading { .. } => pb::StatusChange::TradingState,
        StatusChange::RegSho { .. } => pb::StatusChange::RegSho,
        StatusChange::Luld { .. } => pb::StatusChange::LuldCollar,
        StatusChange::Ipo { .. } => pb::StatusChange::Ipo,
        StatusChange::Imbalance { .. } => pb::StatusChange::Imbalance,
        StatusChange::MwcbLevels { .. } | StatusChange::MwcbBreach { .. } => pb::StatusChange::Mwcb,
    }
}

impl SymbolStatus {
    /// Applies one change of the symbol (market-wide changes go to [`Market::apply`]).
    pub fn apply(&mut self, change: &StatusChange) {
        match *change {
            StatusChange::Trading { state, reason } => self.trading = Some((state, reason)),
            StatusChange::RegSho { action } => self.reg_sho = Some(action),
            StatusChange::Luld {
                reference,
                upper,
                lower,
                extension,
            } => {
                self.luld = Some(pb::LuldCollar {
                    reference_price: i64::from(reference),
                    upper_price: i64::from(upper),
                    lower_price: i64::from(lower),
                    extension,
                });
            }
            StatusChange::Ipo {
                release_time,
                qualifier,
                price,
            } => {
                self.ipo = Some(pb::IpoRelease {
                    release_time_s: release_time,
                    qualifier: u32::from(qualifier),
                    price: i64::from(price),
                });
            }
            StatusChange::Imbalance {
                paired,
                imbalance,
                far,
                near,
                reference,
                direction,
                cross_type,
                variation,
            } => {
                self.imbalance = Some(pb::Imbalance {
                    paired_shares: paired,
                    imbalance_shares: imbalance,
                    direction: u32::from(direction),
                    far_price: i64::from(far),
                    near_price: i64::from(near),
                    reference_price: i64::from(reference),
                    cross_type: u32::from(cross_type),
                    price_variation: u32::from(variation),
                });
            }
            StatusChange::MwcbLevels { .. } | StatusChange::MwcbBreach { .. } => {}
        }
    }

    /// The trading state, as the status stream names it.
    pub fn state(&self) -> pb::TradingState {
        match self.trading.map(|(state, _)| state) {
            Some(b'T') => pb::TradingState::Trading,
            Some(b'H') => pb::TradingState::Halted,
            Some(b'P') => pb::TradingState::Paused,
            Some(b'Q') => pb::TradingState::QuotationOnly,
            _ => pb::TradingState::Unspecified,
        }
    }

    /// The whole status of `symbol` as one update.
    pub fn message(
        &self,
        symbol: &str,
        seq: u64,
        change: pb::StatusChange,
        market: &Market,
        price_exponent: i8,
        timestamps: pb::Timestamps,
    ) -> pb::TradingStatus {
        let reason = self.trading.map_or_else(String::new, |(_, r)| {
            String::from_utf8_lossy(&r).trim().to_owned()
        });
        pb::TradingStatus {
            symbol: symbol.to_owned(),
            seq,
            change: change as i32,
            state: self.state() as i32,
            reason,
            short_sale_restricted: matches!(self.reg_sho, Some(b'1' | b'2')),
            luld: self.luld,
            ipo: self.ipo,
            imbalance: self.imbalance,
            mwcb: market.message(),
            price_exponent: i32::from(price_exponent),
            timestamps: Some(timestamps),
        }
    }
}

/// The wire side of a data-plane side.
pub fn side(side: Option<Side>) -> pb::Side {
    match side {
        Some(Side::Buy) => pb::Side::Bid,
        Some(Side::Sell) => pb::Side::Ask,
        None => pb::Side::Unspecified,
    }
}

/// The trade stream's message for `trade`, numbered `seq` for its subscriber.
pub fn trade(
    symbol: &str,
    seq: u64,
    trade: &TradeUpdate,
    price_exponent: i8,
    send_ns: u64,
) -> pb::Trade {
    let kind = match trade.kind {
        TradeKind::Execution => pb::TradeKind::Execution,
        TradeKind::Trade => pb::TradeKind::Trade,
        TradeKind::Cross => pb::TradeKind::Cross,
        TradeKind::Broken => pb::TradeKind::Broken,
    };
    pb::Trade {
        symbol: symbol.to_owned(),
        seq,
        kind: kind as i32,
        price: trade.price,
        shares: u64::from(trade.shares),
        match_number: trade.match_number,
        resting_side: side(trade.resting_side) as i32,
        printable: trade.printable,
        cross_type: u32::from(trade.cross_type),
        price_exponent: i32::from(price_exponent),
        timestamps: Some(pb::Timestamps {
            exchange_ns: trade.exchange_ns,
            ingest_ns: trade.ingest_ns,
            send_ns,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_carries_every_kind_and_the_market() {
        let mut status = SymbolStatus::default();
        let mut market = Market::default();
        status.apply(&StatusChange::Trading {
            state: b'H',
            reason: *b"LUDP",
        });
        status.apply(&StatusChange::RegSho { action: b'1' });
        status.apply(&StatusChange::Luld {
            reference: 1_000_000,
            upper: 1_050_000,
            lower: 950_000,
            extension: 1,
        });
        market.apply(&StatusChange::MwcbLevels { levels: [1, 2, 3] });
        market.apply(&StatusChange::MwcbBreach { level: b'1' });
        let m = status.message(
            "AAPL",
            4,
            pb::StatusChange::Snapshot,
            &market,
            -4,
            pb::Timestamps::default(),
        );
        assert_eq!(m.state, pb::TradingState::Halted as i32);
        assert_eq!(m.reason, "LUDP");
        assert!(m.short_sale_restricted);
        assert_eq!(m.luld.map(|l| l.upper_price), Some(1_050_000));
        assert_eq!(m.mwcb.map(|w| (w.level3, w.breached)), Some((3, 1)));
        assert!(m.ipo.is_none() && m.imbalance.is_none());
        status.apply(&StatusChange::Trading {
            state: b'T',
            reason: *b"    ",
        });
        status.apply(&StatusChange::RegSho { action: b'0' });
        let m = status.message(
            "AAPL",
            5,
            pb::StatusChange::TradingState,
            &Market::default(),
            -4,
            pb::Timestamps::default(),
        );
        assert_eq!(m.state, pb::TradingState::Trading as i32);
        assert_eq!(m.reason, "");
        assert!(!m.short_sale_restricted);
        assert!(m.mwcb.is_none());
    }
}
