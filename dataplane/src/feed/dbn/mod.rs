//! Databento DBN market-by-order (MBO) records as book [`Op`]s, with MBO semantics as
//! Databento documents them. The files are decoded by the `dbn` crate
//! ([`crate::source::dbn`]); this module only says what each record means for the books.
//!
//! | action | op |
//! |---|---|
//! | `A` add | [`Op::Add`] |
//! | `C` cancel | [`Op::Cancel`] of `size` (the order goes when nothing is left) |
//! | `M` modify | [`Op::Modify`]: new price and size; keeps priority only at the same price with no more size |
//! | `R` clear | [`Op::Clear`] |
//! | `T` trade, `F` fill, `N` none | [`Op::Other`]: no change (a fill's cancel follows it) |
//!
//! - **Snapshots.** Records flagged `F_SNAPSHOT` rebuild a book from nothing. A snapshot starts
//!   with a clear; when it does not (the recorded ESH4 days begin their snapshot with adds), the
//!   first snapshot record of an instrument clears its book first, so a snapshot replayed after
//!   a session (a second day's file) never adds to what is there.
//! - **Instruments** are named by the file's symbology (`raw_symbol`, e.g. `ESH4`, mapped to its
//!   `instrument_id`) and given a stock locate of their own, from 1, the same for the same name
//!   across files. A file without mappings names its instruments by their ids.
//! - **Refused, counted, never applied:** an add or modify at `UNDEF_PRICE` or with side `N`,
//!   top-of-book and price-level records (`F_TOB`, `F_MBP`: not orders), unknown actions, and
//!   records of instruments the symbology does not name or that exceed the symbol capacity
//!   ([`Rejection`]).
//! - Prices stay in DBN's unit, 1e-9 ([`PRICE_EXPONENT`]); timestamps are `ts_event`, ns since
//!   the UNIX epoch.
//!
//! `F_LAST` (the last record of one venue event for an instrument) is the source's business:
//! it never ends a poll inside a group, so the books' changes of one event are published
//! together.

pub mod framing;
pub mod write;

use ahash::AHashMap as HashMap;

use dbn::{MboMsg, Metadata, SType, UNDEF_PRICE};

use crate::book::{NewOrder, Op};
use crate::feed::itch::Side;
use crate::runtime::event::TradeKind;
use crate::source::{FeedEvent, Rejection};
use crate::symbol::Symbol;

/// DBN prices are integers × 10^-9.
pub const PRICE_EXPONENT: i8 = -9;

/// What the translator knows of one instrument.
#[derive(Clone, Copy, Debug)]
struct Instrument {
    locate: u16,
    /// Its last record was a snapshot record: the snapshot is under way.
    in_snapshot: bool,
}

/// Turns MBO records into [`FeedEvent`]s for a shard (or `pinbook replay`); see the
/// [module docs](self).
#[derive(Debug)]
pub struct Translator {
    by_id: HashMap<u32, Instrument>,
    by_name: HashMap<Symbol, u16>,
    /// Ids the current file names: instruments met without a mapping are named by their id
    /// only when the file has no mappings at all.
    named_by_mappings: bool,
    next_locate: u16,
    max_symbols: usize,
}

/// A name in a file's symbology that pinbook cannot use (longer than 8 bytes, e.g. a spread
/// `ESH4-ESM4`, or not an instrument id): its records are refused as unknown instruments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unnamed {
    /// The raw symbol.
    pub raw_symbol: String,
    /// Why it is not used.
    pub why: &'static str,
}

impl Translator {
    /// A translator for books of `max_symbols` locates (locates 1 to `max_symbols - 1`).
    pub fn new(max_symbols: usize) -> Self {
        Self {
            by_id: HashMap::default(),
            by_name: HashMap::default(),
            named_by_mappings: false,
            next_locate: 1,
            max_symbols,
        }
    }

    /// Learns the instruments a file's `metadata` names, handing a directory op for each name
    /// not seen before (in any earlier file), and starts the file: a snapshot in it rebuilds its
    /// books even if the file before ended in one. Returns the names it could not use.
    pub fn learn(
        &mut self,
        metadata: &Metadata,
        out: &mut impl FnMut(FeedEvent<'static>),
    ) -> Vec<Unnamed> {
        let mut unnamed = Vec::new();
        // ids are named per file (a later file may give an id to another name, or none); the
        // names keep their books. A file's snapshot is a new one, even after one that ended in
        // a snapshot.
        self.by_id.clear();
        self.named_by_mappings =
            metadata.stype_out == SType::InstrumentId && !metadata.mappings.is_empty();
        if !self.named_by_mappings {
            return unnamed;
        }
        for mapping in &metadata.mappings {
            let refuse = |why| Unnamed {
                raw_symbol: mapping.raw_symbol.clone(),
                why,
            };
            let Some(symbol) = Symbol::parse(&mapping.raw_symbol) else {
                unnamed.push(refuse("names are at most 8 printable ASCII bytes"));
                continue;
            };
            let mut ids: Vec<u32> = Vec::with_capacity(mapping.intervals.len());
            for interval in &mapping.intervals {
                match interval.symbol.parse::<u32>() {
                    Ok(id) if !ids.contains(&id) => ids.push(id),
                    Ok(_) => {}
                    Err(_) => unnamed.push(refuse("its mapping is not an instrument id")),
                }
            }
            match ids[..] {
                [] => {}
                [id] => {
                    if self.name(id, symbol, out).is_none() {
                        unnamed.push(refuse("books.max_symbols instruments are named already"));
                    }
                }
                _ => unnamed.push(refuse(
                    "it maps to several instrument ids in this file (a roll, or a continuous \
                     symbol): one book would mix them",
                )),
            }
        }
        unnamed
    }

    /// Gives instrument `id` the book named `symbol` (a new locate for a new name, with its
    /// directory op). `None` when no locate is left.
    fn name(
        &mut self,
        id: u32,
        symbol: Symbol,
        out: &mut impl FnMut(FeedEvent<'static>),
    ) -> Option<u16> {
        let locate = match self.by_name.get(&symbol) {
            Some(&locate) => locate,
            None => {
                if usize::from(self.next_locate) >= self.max_symbols {
                    return None;
                }
                let locate = self.next_locate;
                self.next_locate = self.next_locate.checked_add(1)?;
                self.by_name.insert(symbol, locate);
                out(FeedEvent::Decoded {
                    op: Op::Directory {
                        locate,
                        symbol,
                        price_exponent: PRICE_EXPONENT,
                    },
                    locate,
                    action: 0,
                });
                locate
            }
        };
        let in_snapshot = self.by_id.get(&id).is_some_and(|i| i.in_snapshot);
        self.by_id.insert(
            id,
            Instrument {
                locate,
                in_snapshot,
            },
        );
        Some(locate)
    }

    /// Names an instrument met without a mapping by its id, when the file has no mappings at
    /// all. False when it cannot be named.
    fn name_by_id(&mut self, id: u32, out: &mut impl FnMut(FeedEvent<'static>)) -> bool {
        !self.named_by_mappings
            && Symbol::parse(&id.to_string())
                .and_then(|symbol| self.name(id, symbol, out))
                .is_some()
    }

    /// The book the translator gave instrument `id`, if any.
    pub fn locate_of(&self, id: u32) -> Option<u16> {
        self.by_id.get(&id).map(|i| i.locate)
    }

    /// Hands what one record asks: usually one [`FeedEvent::Decoded`]; a clear before it when
    /// it starts a snapshot that did not start with one; a [`FeedEvent::Rejected`] when it
    /// cannot be applied.
    pub fn translate(&mut self, mbo: &MboMsg, out: &mut impl FnMut(FeedEvent<'static>)) {
        let action = mbo.action as u8;
        if mbo.flags.is_tob() || mbo.flags.is_mbp() {
            out(FeedEvent::Rejected(Rejection::UnsupportedRecord));
            return;
        }
        let id = mbo.hd.instrument_id;
        if !self.by_id.contains_key(&id) && !self.name_by_id(id, out) {
            out(FeedEvent::Rejected(Rejection::UnknownInstrument));
            return;
        }
        let Some(instrument) = self.by_id.get_mut(&id) else {
            return;
        };
        let locate = instrument.locate;
        let snapshot = mbo.flags.is_snapshot();
        let starts_snapshot = snapshot && !instrument.in_snapshot && action != b'R';
        instrument.in_snapshot = snapshot;
        if starts_snapshot {
            out(FeedEvent::Decoded {
                op: Op::Clear { locate },
                locate,
                action: 0,
            });
        }
        let timestamp = mbo.hd.ts_event;
        let order = |side| NewOrder {
            locate,
            reference: mbo.order_id,
            side,
            shares: mbo.size,
            price: mbo.price,
            timestamp,
        };
        let op = match action {
            b'A' | b'M' => {
                let side = match mbo.side as u8 {
                    b'B' => Side::Buy,
                    b'A' => Side::Sell,
                    _ => {
                        out(FeedEvent::Rejected(Rejection::NoSide));
                        return;
                    }
                };
                if mbo.price == UNDEF_PRICE {
                    out(FeedEvent::Rejected(Rejection::UndefinedPrice));
                    return;
                }
                if action == b'A' {
                    Op::Add(order(side))
                } else {
                    Op::Modify(order(side))
                }
            }
            b'C' => Op::Cancel {
                reference: mbo.order_id,
                shares: mbo.size,
                timestamp,
            },
            b'R' => Op::Clear { locate },
            // the tape: T is the aggressor's trade (its side is the aggressor's), F the fill of
            // a resting order (its side is that order's); neither changes the book
            b'T' | b'F' if mbo.price != UNDEF_PRICE => {
                let side = match mbo.side as u8 {
                    b'B' => Some(Side::Buy),
                    b'A' => Some(Side::Sell),
                    _ => None,
                };
                let fill = action == b'F';
                Op::Trade {
                    locate,
                    kind: if fill {
                        TradeKind::Execution
                    } else {
                        TradeKind::Trade
                    },
                    resting_side: if fill { side } else { side.map(Side::opposite) },
                    // a T's volume is its F's: count it once
                    printable: !fill,
                    cross_type: 0,
                    shares: mbo.size,
                    price: mbo.price,
                    match_number: 0,
                    timestamp,
                }
            }
            b'T' | b'F' | b'N' => Op::Other,
            _ => {
                out(FeedEvent::Decoded {
                    op: Op::Other,
                    locate,
                    action,
                });
                out(FeedEvent::Rejected(Rejection::UnsupportedRecord));
                return;
            }
        };
        out(FeedEvent::Decoded { op, locate, action });
    }
}
