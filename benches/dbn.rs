//! DBN market-by-order on the recorded ESH4 session (`../shared/data/databento/`, the two days
//! in order, 77,517 records, decompressed into memory once), looped to ≥ 10 M records under
//! `cargo bench --bench dbn` (one pass under `cargo test --benches`). Rows, each over the same
//! bytes:
//!
//! - decode only: the `dbn` crate's decoder, each record read as an `MboMsg`;
//! - decode + pinbook: the service's path — the framing guard, the crate's decoder, the MBO
//!   translator and pinbook's L3 books with lookahead (as `pinbook replay --feed dbn:` runs);
//! - decode + plain book: the crate's decoder and the simplest MBO book (a `HashMap` of orders
//!   and a `BTreeMap` of levels per side), the peer.
//!
//! Printed: ns per record per pass (p50/p99/max over passes) with ratios, and the decode +
//! pinbook cost per record in groups of 64 consecutive records timed together.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dataplane::book::lookahead::Lookahead;
use dataplane::book::{Books, BooksConfig};
use dataplane::feed::dbn::Translator;
use dataplane::feed::dbn::framing::guarded_decoder;
use dataplane::source::FeedEvent;
use dbn::decode::{DbnMetadata, DecodeRecordRef, DynReader};
use dbn::{MboMsg, VersionUpgradePolicy};
use hdrhistogram::Histogram;

const DAYS: [&str; 2] = [
    "esh4-glbx-mdp3-20231224.mbo.dbn.zst",
    "esh4-glbx-mdp3-20231225.mbo.dbn.zst",
];

/// Each day's whole DBN stream, decompressed.
fn days() -> Vec<Vec<u8>> {
    DAYS.iter()
        .map(|name| {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/data/databento")
                .join(name);
            let mut bytes = Vec::new();
            DynReader::from_file(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (see ../shared/data/README)", path.display()))
                .read_to_end(&mut bytes)
                .expect("read the recorded day");
            bytes
        })
        .collect()
}

type Decoder<'a> = dbn::decode::dbn::Decoder<&'a [u8]>;

fn decoder(bytes: &[u8]) -> Decoder<'_> {
    Decoder::with_upgrade_policy(bytes, VersionUpgradePolicy::AsIs).expect("a DBN stream")
}

/// Decodes every record; returns how many.
fn decode_only(days: &[Vec<u8>]) -> u64 {
    let mut n = 0u64;
    for day in days {
        let mut d = decoder(day);
        while let Some(record) = d.decode_record_ref().expect("a record") {
            if let Some(m) = record.get::<MboMsg>() {
                black_box(m.order_id);
                n += 1;
            }
        }
    }
    n
}

/// The service's path over every record into `books`; returns the records.
fn decode_pinbook(days: &[Vec<u8>], books: &mut Books<'_>, translator: &mut Translator) -> u64 {
    let mut n = 0u64;
    let mut ahead = Lookahead::new();
    let mut changes = 0u64;
    for day in days {
        let mut d = guarded_decoder(day.as_slice()).expect("a DBN stream");
        let mut push = |event: FeedEvent<'static>| {
            if let FeedEvent::Decoded { op, .. } = event {
                ahead.push(books, op, &mut |_| changes += 1);
            }
        };
        translator.learn(d.metadata(), &mut push);
        while let Some(record) = d.decode_record_ref().expect("a record") {
            if let Some(m) = record.get::<MboMsg>() {
                translator.translate(m, &mut push);
                n += 1;
            }
        }
    }
    ahead.drain(books, &mut |_| changes += 1);
    black_box(changes);
    n
}

/// The plain MBO book: orders by id, levels in a BTreeMap per side.
#[derive(Default)]
struct PlainBook {
    orders: HashMap<u64, (u8, i64, u32)>,
    sides: [BTreeMap<i64, (u64, u32)>; 2],
    in_snapshot: bool,
}

impl PlainBook {
    fn level(&mut self, side: u8, price: i64, size: i64, orders: i32) {
        let book = &mut self.sides[usize::from(side == b'A')];
        let l = book.entry(price).or_default();
        l.0 = l.0.wrapping_add_signed(size);
        l.1 = l.1.wrapping_add_signed(orders);
        if l.1 == 0 {
            book.remove(&price);
        }
    }

    fn apply(&mut self, m: &MboMsg) {
        let snapshot = m.flags.is_snapshot();
        let action = m.action as u8;
        if action == b'R' || (snapshot && !self.in_snapshot) {
            self.orders.clear();
            self.sides = Default::default();
        }
        self.in_snapshot = snapshot;
        match action {
            b'A' => {
                let side = m.side as u8;
                self.orders.insert(m.order_id, (side, m.price, m.size));
                self.level(side, m.price, i64::from(m.size), 1);
            }
            b'C' => {
                if let Some(&(side, price, size)) = self.orders.get(&m.order_id) {
                    let cut = m.size.min(size);
                    let gone = cut == size;
                    self.level(side, price, -i64::from(cut), -i32::from(gone));
                    if gone {
                        self.orders.remove(&m.order_id);
                    } else if let Some(o) = self.orders.get_mut(&m.order_id) {
                        o.2 -= cut;
                    }
                }
            }
            b'M' => {
                if let Some((side, price, size)) = self.orders.remove(&m.order_id) {
                    self.level(side, price, -i64::from(size), -1);
                }
                let side = m.side as u8;
                self.orders.insert(m.order_id, (side, m.price, m.size));
                self.level(side, m.price, i64::from(m.size), 1);
            }
            _ => {}
        }
    }
}

fn decode_plain(days: &[Vec<u8>], book: &mut PlainBook) -> u64 {
    let mut n = 0u64;
    for day in days {
        let mut d = decoder(day);
        while let Some(record) = d.decode_record_ref().expect("a record") {
            if let Some(m) = record.get::<MboMsg>() {
                book.apply(m);
                n += 1;
            }
        }
    }
    black_box(book.sides[0].len());
    n
}

/// Decode + pinbook with every group of 64 consecutive records timed together.
fn grouped(days: &[Vec<u8>], books: &mut Books<'_>) -> Histogram<u64> {
    let clock = quanta::Clock::new();
    let mut h = common::histogram();
    let mut translator = Translator::new(16);
    let mut ahead = Lookahead::new();
    for day in days {
        let mut d = guarded_decoder(day.as_slice()).expect("a DBN stream");
        let mut push = |event: FeedEvent<'static>| {
            if let FeedEvent::Decoded { op, .. } = event {
                ahead.push(books, op, &mut |_| {});
            }
        };
        translator.learn(d.metadata(), &mut push);
        let mut in_group = 0;
        let mut start = clock.raw();
        while let Some(record) = d.decode_record_ref().expect("a record") {
            if let Some(m) = record.get::<MboMsg>() {
                translator.translate(m, &mut push);
                in_group += 1;
                if in_group == 64 {
                    let end = clock.raw();
                    common::record_ns(&mut h, clock.delta(start, end).as_nanos() as f64 / 64.0);
                    in_group = 0;
                    start = clock.raw();
                }
            }
        }
    }
    h
}

fn timed(passes: u64, mut pass: impl FnMut() -> u64) -> (Histogram<u64>, u64) {
    let mut h = common::histogram();
    let mut records = 0;
    for _ in 0..passes {
        let started = Instant::now();
        let n = pass();
        common::record_ns(
            &mut h,
            started.elapsed().as_nanos() as f64 / n.max(1) as f64,
        );
        records += n;
    }
    (h, records)
}

fn report() {
    common::pin(0);
    let days = days();
    let per_pass = decode_only(&days);
    // ≥ 10 M records under `cargo bench`
    let passes = common::scale(10_000_000u64.div_ceil(per_pass), 1);
    // `serve`'s default books (sized for a NASDAQ day), or DBN_BENCH_ORDERS=N: books sized to
    // this session (N orders, 16 k levels)
    let config = match std::env::var("DBN_BENCH_ORDERS") {
        Ok(n) => BooksConfig {
            max_orders: n.parse().expect("a number"),
            max_levels: 1 << 14,
            max_levels_per_side: 1 << 13,
            max_symbols: 16,
        },
        Err(_) => BooksConfig {
            max_symbols: 16,
            ..BooksConfig::default()
        },
    };
    let mut books = Books::new(config, None).expect("books fit");
    let mut translator = Translator::new(16);
    let mut plain = PlainBook::default();
    // rows interleaved pass by pass, so a noisy moment hits them alike
    let (mut decode, mut pinbook, mut peer) = (
        common::histogram(),
        common::histogram(),
        common::histogram(),
    );
    let mut records = 0;
    for _ in 0..passes {
        let (h, n) = timed(1, || decode_only(&days));
        decode.add(&h).expect("same bounds");
        records += n;
        let (h, _) = timed(1, || decode_pinbook(&days, &mut books, &mut translator));
        pinbook.add(&h).expect("same bounds");
        let (h, _) = timed(1, || decode_plain(&days, &mut plain));
        peer.add(&h).expect("same bounds");
    }
    println!();
    println!(
        "ESH4 2023-12-24 + 2023-12-25 (GLBX.MDP3 MBO): {per_pass} records a pass, {passes} passes, \
         {records} records per row; books at the end: {} live orders, {} levels",
        books.live_orders(),
        books.live_levels()
    );
    common::print_table(
        "DBN MBO: ns per record per pass",
        "ns per record",
        &[
            ("decode + pinbook (guard, lookahead)", &pinbook),
            ("decode + plain HashMap/BTreeMap book", &peer),
            ("decode only (dbn crate)", &decode),
        ],
    );
    let groups = grouped(&days, &mut books);
    common::print_table(
        "DBN MBO: decode + pinbook per record, groups of 64 timed together, ns",
        "ns per record",
        &[("decode + pinbook", &groups)],
    );
}

fn main() {
    common::main(common::no_criterion, Duration::from_secs(1), report);
}
