//! Writing DBN MBO: the records and metadata a DBN file of pinbook's own needs (for
//! `pinbook gen --format dbn` and for tests), and [`FromItch`], which restates an ITCH stream
//! as the MBO records a venue normalized by Databento would send for it. Encoding itself is
//! the `dbn` crate's.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use dbn::encode::{DynEncoder, EncodeRecord};
use dbn::{
    Compression, Encoding, FlagSet, MappingInterval, MboMsg, Metadata, RecordHeader, SType, Schema,
    SymbolMapping,
};

use crate::book::Op;
use crate::feed::itch::Side;

/// `ts_event` of ITCH time 0 in files written by [`FromItch`]: 2024-01-02T00:00:00Z.
pub const START_NS: u64 = 1_704_153_600_000_000_000;

/// One ITCH price unit (1e-4) in DBN units (1e-9).
pub const ITCH_TO_DBN_PRICE: i64 = 100_000;

/// The DBN version written (the `dbn` crate encodes up to version 3).
pub const VERSION: u8 = 3;

/// Metadata of an MBO file naming `symbols` (raw symbol, instrument id) from `start_ns` on, for
/// one day; `dataset` as Databento names them (`GLBX.MDP3`, …; any text for files of our own).
pub fn metadata(dataset: &str, symbols: &[(String, u32)], start_ns: u64) -> Metadata {
    let start = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(start_ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    let end = start.next_day().unwrap_or(start);
    Metadata::builder()
        .version(VERSION)
        .dataset(dataset.to_owned())
        .schema(Some(Schema::Mbo))
        .start(start_ns)
        .stype_in(Some(SType::RawSymbol))
        .stype_out(SType::InstrumentId)
        .symbols(symbols.iter().map(|(name, _)| name.clone()).collect())
        .mappings(
            symbols
                .iter()
                .map(|(name, id)| SymbolMapping {
                    raw_symbol: name.clone(),
                    intervals: vec![MappingInterval {
                        start_date: start,
                        end_date: end,
                        symbol: id.to_string(),
                    }],
                })
                .collect(),
        )
        .build()
}

/// Writes `metadata` and `records` to `path` as a DBN file, zstd-compressed when the name ends
/// in `.zst`; returns how many records were written.
///
/// # Errors
/// The file cannot be created or written, or the crate cannot encode the metadata.
pub fn write_file(
    path: &Path,
    metadata: &Metadata,
    records: impl IntoIterator<Item = Mbo>,
) -> dbn::Result<u64> {
    let compression = if path.extension().is_some_and(|e| e == "zst") {
        Compression::Zstd
    } else {
        Compression::None
    };
    let file = File::create(path)
        .map_err(|e| dbn::Error::io(e, format!("creating {}", path.display())))?;
    let out = BufWriter::with_capacity(1 << 20, file);
    let mut encoder = DynEncoder::builder(out, Encoding::Dbn, compression, metadata).build()?;
    let mut written = 0;
    for record in records {
        encoder.encode_record(&record.record())?;
        written += 1;
    }
    encoder.flush()?;
    Ok(written)
}

/// The fields of one MBO record that vary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mbo {
    /// Instrument id.
    pub instrument: u32,
    /// `A`, `C`, `M`, `R`, `T`, `F` or `N`.
    pub action: u8,
    /// `B`, `A` or `N`.
    pub side: u8,
    /// Order id (0 for a clear or a trade).
    pub order_id: u64,
    /// Price in 1e-9 units (`dbn::UNDEF_PRICE` for none).
    pub price: i64,
    /// Size.
    pub size: u32,
    /// Flags (`dbn::flags::LAST`, `SNAPSHOT`, …).
    pub flags: u8,
    /// `ts_event` (and `ts_recv`), ns since the UNIX epoch.
    pub ts: u64,
}

impl Mbo {
    /// The record.
    pub fn record(&self) -> MboMsg {
        MboMsg {
            hd: RecordHeader::new::<MboMsg>(
                dbn::rtype::MBO,
                dbn::Publisher::GlbxMdp3Glbx as u16,
                self.instrument,
                self.ts,
            ),
            order_id: self.order_id,
            price: self.price,
            size: self.size,
            flags: FlagSet::new(self.flags),
            channel_id: 0,
            action: self.action as std::ffi::c_char,
            side: self.side as std::ffi::c_char,
            ts_recv: self.ts,
            ts_in_delta: 0,
            sequence: 0,
        }
    }
}

/// An order [`FromItch`] knows rests.
#[derive(Clone, Copy, Debug)]
struct Resting {
    instrument: u32,
    side: u8,
    price: i64,
    size: u32,
}

const fn side_byte(side: Side) -> u8 {
    match side {
        Side::Buy => b'B',
        Side::Sell => b'A',
    }
}

/// Restates ITCH ops as MBO records, one venue event (one group, `F_LAST` on its last record)
/// per ITCH message, so the DBN file builds exactly the books the ITCH stream builds:
///
/// - A → `A` (instrument id = stock locate, price × 100,000: ITCH 1e-4 to DBN 1e-9);
/// - E, C → `T` (the aggressor, opposite side), `F` (the resting order), `C` of the shares;
/// - X → `C` of the shares, or for every third reference a `M` to the smaller size (which
///   keeps its priority, as the X does);
/// - D → `C` of what is left; U → `C` of the original, `A` of the new order;
/// - anything else → nothing (the metadata names the symbols).
#[derive(Debug, Default)]
pub struct FromItch {
    orders: HashMap<u64, Resting>,
}

impl FromItch {
    /// A converter that knows no order yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends to `out` the records of the ITCH message `op` of stock `locate` stamped
    /// `timestamp` (ns since midnight).
    pub fn records(&mut self, locate: u16, op: &Op, timestamp: u64, out: &mut Vec<Mbo>) {
        let ts = START_NS + timestamp;
        let first = out.len();
        let mbo = |r: &Resting, action: u8, side: u8, order_id: u64, size: u32| Mbo {
            instrument: r.instrument,
            action,
            side,
            order_id,
            price: r.price,
            size,
            flags: 0,
            ts,
        };
        match *op {
            Op::Add(o) => {
                let r = Resting {
                    instrument: u32::from(locate),
                    side: side_byte(o.side),
                    price: o.price * ITCH_TO_DBN_PRICE,
                    size: o.shares,
                };
                self.orders.insert(o.reference, r);
                out.push(mbo(&r, b'A', r.side, o.reference, r.size));
            }
            Op::Execute {
                reference, shares, ..
            }
            | Op::ExecuteAt {
                reference, shares, ..
            } => {
                if let Some(r) = self.reduce(reference, shares) {
                    let aggressor = if r.side == b'B' { b'A' } else { b'B' };
                    out.push(mbo(&r, b'T', aggressor, 0, shares));
                    out.push(mbo(&r, b'F', r.side, reference, shares));
                    out.push(mbo(&r, b'C', r.side, reference, shares));
                }
            }
            Op::Cancel {
                reference, shares, ..
            } => {
                if let Some(r) = self.reduce(reference, shares) {
                    let left = r.size.saturating_sub(shares);
                    if reference % 3 == 0 && left > 0 {
                        out.push(mbo(&r, b'M', r.side, reference, left));
                    } else {
                        out.push(mbo(&r, b'C', r.side, reference, shares));
                    }
                }
            }
            Op::Delete { reference, .. } => {
                if let Some(r) = self.orders.remove(&reference) {
                    out.push(mbo(&r, b'C', r.side, reference, r.size));
                }
            }
            Op::Replace {
                original,
                new,
                shares,
                price,
                ..
            } => {
                if let Some(r) = self.orders.remove(&original) {
                    out.push(mbo(&r, b'C', r.side, original, r.size));
                    let n = Resting {
                        price: price * ITCH_TO_DBN_PRICE,
                        size: shares,
                        ..r
                    };
                    self.orders.insert(new, n);
                    out.push(mbo(&n, b'A', n.side, new, shares));
                }
            }
            _ => {}
        }
        if let Some(last) = out.get_mut(first..).and_then(|group| group.last_mut()) {
            last.flags |= dbn::flags::LAST;
        }
    }

    /// Takes `shares` off `reference`; the order as it was, if it rests.
    fn reduce(&mut self, reference: u64, shares: u32) -> Option<Resting> {
        let r = *self.orders.get(&reference)?;
        if shares >= r.size {
            self.orders.remove(&reference);
        } else if let Some(o) = self.orders.get_mut(&reference) {
            o.size -= shares;
        }
        Some(r)
    }
}
