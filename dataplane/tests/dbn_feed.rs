//! The DBN feed on files the tests write themselves: one test per MBO action and flag, through
//! the real source (`DbnSource`, the `dbn` crate decoding) and the real books; and the same
//! generated stream as ITCH and as DBN building the same books.

use std::path::{Path, PathBuf};

use dataplane::book::lookahead::Lookahead;
use dataplane::book::{Books, BooksConfig, Op};
use dataplane::feed::dbn::PRICE_EXPONENT;
use dataplane::feed::dbn::write::{
    FromItch, ITCH_TO_DBN_PRICE, Mbo, START_NS, metadata, write_file,
};
use dataplane::feed::generator::{Generator, GeneratorConfig, Profile};
use dataplane::feed::itch::{self, Side};
use dataplane::runtime::event::TradeKind;
use dataplane::source::dbn::DbnSource;
use dataplane::source::file::{FileOptions, Pace};
use dataplane::source::{FeedEvent, FeedSource, Polled, Rejection};
use dbn::UNDEF_PRICE;
use dbn::flags::{LAST, MBP, SNAPSHOT, TOB};

const ES: u32 = 17_077;
const NQ: u32 = 4_916;
/// 4810.25 in DBN units.
const P: i64 = 4_810_250_000_000;
/// One tick of ES, 0.25.
const TICK: i64 = 250_000_000;

fn symbols() -> Vec<(String, u32)> {
    vec![("ESH4".to_owned(), ES), ("NQH4".to_owned(), NQ)]
}

/// A record of ES, the last of its group.
fn mbo(action: u8, side: u8, order_id: u64, price: i64, size: u32) -> Mbo {
    Mbo {
        instrument: ES,
        action,
        side,
        order_id,
        price,
        size,
        flags: LAST,
        ts: START_NS + order_id,
    }
}

fn write(path: &Path, symbols: &[(String, u32)], records: &[Mbo]) {
    let md = metadata("TEST", symbols, START_NS);
    write_file(path, &md, records.iter().copied()).unwrap();
}

/// What a source handed over, owned.
#[derive(Clone, Debug, PartialEq)]
enum Ev {
    Op(Op, u16, u8),
    Rejected(Rejection),
    Other(String),
}

/// Replays `paths` through a `DbnSource` into books; returns them with the events and the
/// number of events of each poll.
struct Replay {
    books: Books<'static>,
    events: Vec<Ev>,
    polls: Vec<usize>,
}

fn replay_with(paths: &[PathBuf], max: usize) -> Replay {
    let config = BooksConfig {
        max_orders: 1 << 12,
        max_levels: 1 << 10,
        max_levels_per_side: 256,
        max_symbols: 16,
    };
    let mut books = Books::new(config, None).unwrap();
    let options = FileOptions {
        pace: Pace::Unpaced,
        looping: false,
    };
    let mut source = DbnSource::open(paths, options, 16).unwrap();
    let mut events = Vec::new();
    let mut polls = Vec::new();
    let mut ahead = Lookahead::new();
    loop {
        let mut n = 0;
        let polled = source.poll(0, max, &mut |e| {
            n += 1;
            events.push(match e {
                FeedEvent::Decoded { op, locate, action } => {
                    ahead.push(&mut books, op, &mut |_| {});
                    Ev::Op(op, locate, action)
                }
                FeedEvent::Rejected(why) => Ev::Rejected(why),
                other => Ev::Other(format!("{other:?}")),
            });
        });
        ahead.drain(&mut books, &mut |_| {});
        if polled == Polled::Ended {
            break;
        }
        polls.push(n);
    }
    // sides read best first once settled
    books.settle_all();
    Replay {
        books,
        events,
        polls,
    }
}

fn replay(records: &[Mbo]) -> Replay {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.dbn");
    write(&path, &symbols(), records);
    replay_with(&[path], 64)
}

/// (price, shares, orders) per level of ES's `side`, best first.
fn levels(r: &Replay, side: Side) -> Vec<(i64, u64, u32)> {
    let locate = r.books.locate_of("ESH4").expect("ESH4 is named");
    r.books
        .view(locate)
        .unwrap()
        .side(side)
        .map(|l| (l.price, l.shares, l.orders))
        .collect()
}

/// The references queued at ES's `side` `price`, first to fill first.
fn queue(r: &Replay, side: Side, price: i64) -> Vec<u64> {
    let locate = r.books.locate_of("ESH4").unwrap();
    r.books
        .view(locate)
        .unwrap()
        .queue(side, price)
        .map(|o| o.reference)
        .collect()
}

fn rejections(r: &Replay) -> Vec<Rejection> {
    r.events
        .iter()
        .filter_map(|e| match e {
            Ev::Rejected(why) => Some(*why),
            _ => None,
        })
        .collect()
}

#[test]
fn the_symbology_names_the_books_with_the_dbn_exponent() {
    let r = replay(&[mbo(b'A', b'B', 1, P, 3)]);
    let es = r.books.locate_of("ESH4").unwrap();
    let nq = r.books.locate_of("NQH4").unwrap();
    assert_ne!(es, nq);
    assert_eq!(r.books.view(es).unwrap().price_exponent(), PRICE_EXPONENT);
    assert_eq!(PRICE_EXPONENT, -9);
    assert_eq!(levels(&r, Side::Buy), [(P, 3, 1)]);
}

#[test]
fn add_rests_an_order_on_its_side() {
    let r = replay(&[
        mbo(b'A', b'B', 1, P, 3),
        mbo(b'A', b'B', 2, P, 4),
        mbo(b'A', b'A', 3, P + TICK, 5),
    ]);
    assert_eq!(levels(&r, Side::Buy), [(P, 7, 2)]);
    assert_eq!(levels(&r, Side::Sell), [(P + TICK, 5, 1)]);
    assert_eq!(queue(&r, Side::Buy, P), [1, 2]);
}

#[test]
fn cancel_takes_its_size_off_and_a_full_cancel_removes_the_order() {
    let r = replay(&[
        mbo(b'A', b'B', 1, P, 10),
        mbo(b'A', b'B', 2, P, 4),
        mbo(b'C', b'B', 1, P, 3),
        mbo(b'C', b'B', 2, P, 4),
    ]);
    assert_eq!(levels(&r, Side::Buy), [(P, 7, 1)]);
    assert_eq!(queue(&r, Side::Buy, P), [1]);
}

#[test]
fn modify_to_a_smaller_size_keeps_the_orders_place() {
    let r = replay(&[
        mbo(b'A', b'A', 1, P, 10),
        mbo(b'A', b'A', 2, P, 4),
        mbo(b'M', b'A', 1, P, 6),
    ]);
    assert_eq!(levels(&r, Side::Sell), [(P, 10, 2)]);
    assert_eq!(
        queue(&r, Side::Sell, P),
        [1, 2],
        "a smaller size keeps priority"
    );
}

#[test]
fn modify_to_a_larger_size_loses_priority() {
    let r = replay(&[
        mbo(b'A', b'A', 1, P, 10),
        mbo(b'A', b'A', 2, P, 4),
        mbo(b'M', b'A', 1, P, 12),
    ]);
    assert_eq!(levels(&r, Side::Sell), [(P, 16, 2)]);
    assert_eq!(
        queue(&r, Side::Sell, P),
        [2, 1],
        "a larger size goes to the back"
    );
}

#[test]
fn modify_to_another_price_moves_the_order_to_the_back_there() {
    let r = replay(&[
        mbo(b'A', b'B', 1, P, 10),
        mbo(b'A', b'B', 2, P - TICK, 4),
        mbo(b'M', b'B', 1, P - TICK, 10),
    ]);
    assert_eq!(levels(&r, Side::Buy), [(P - TICK, 14, 2)]);
    assert_eq!(queue(&r, Side::Buy, P - TICK), [2, 1]);
}

#[test]
fn modify_of_an_unknown_order_adds_it_and_is_counted() {
    let r = replay(&[mbo(b'M', b'B', 9, P, 5)]);
    assert_eq!(levels(&r, Side::Buy), [(P, 5, 1)]);
    assert_eq!(r.books.stats().modify_unknown, 1);
}

#[test]
fn clear_empties_the_instruments_book_only() {
    let mut nq = mbo(b'A', b'B', 50, P, 1);
    nq.instrument = NQ;
    let r = replay(&[
        mbo(b'A', b'B', 1, P, 10),
        nq,
        mbo(b'R', b'N', 0, UNDEF_PRICE, 0),
        mbo(b'A', b'A', 2, P + TICK, 1),
    ]);
    assert_eq!(levels(&r, Side::Buy), []);
    assert_eq!(levels(&r, Side::Sell), [(P + TICK, 1, 1)]);
    let nq = r.books.locate_of("NQH4").unwrap();
    assert_eq!(
        r.books.view(nq).unwrap().bids().count(),
        1,
        "NQ keeps its book"
    );
}

#[test]
fn trades_fills_and_none_change_no_book_and_trades_reach_the_tape() {
    let r = replay(&[
        mbo(b'A', b'B', 1, P, 10),
        mbo(b'T', b'A', 0, P, 2),
        mbo(b'F', b'B', 1, P, 2),
        mbo(b'T', b'N', 0, P, 1),
        mbo(b'N', b'N', 0, UNDEF_PRICE, 0),
    ]);
    assert_eq!(levels(&r, Side::Buy), [(P, 10, 1)]);
    let tape: Vec<(u8, TradeKind, Option<Side>, bool, u32)> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Op(
                Op::Trade {
                    kind,
                    resting_side,
                    printable,
                    shares,
                    price,
                    ..
                },
                _,
                action,
            ) => {
                assert_eq!(*price, P);
                Some((*action, *kind, *resting_side, *printable, *shares))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        tape,
        [
            // the aggressor sold: a bid rested; its volume counts once, on the trade
            (b'T', TradeKind::Trade, Some(Side::Buy), true, 2),
            (b'F', TradeKind::Execution, Some(Side::Buy), false, 2),
            (b'T', TradeKind::Trade, None, true, 1),
        ]
    );
    let others: Vec<u8> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Op(Op::Other, _, action) => Some(*action),
            _ => None,
        })
        .collect();
    assert_eq!(others, b"N", "counted by action, applied as nothing");
}

#[test]
fn a_snapshot_without_a_clear_rebuilds_the_book_from_nothing() {
    let snap = |id, size| Mbo {
        flags: SNAPSHOT,
        ..mbo(b'A', b'B', id, P, size)
    };
    let r = replay(&[
        mbo(b'A', b'B', 1, P, 10),
        mbo(b'A', b'B', 2, P - TICK, 10),
        snap(1, 3),
        Mbo {
            flags: SNAPSHOT | LAST,
            ..snap(7, 4)
        },
    ]);
    // the orders before the snapshot are gone; order 1 is the snapshot's
    assert_eq!(levels(&r, Side::Buy), [(P, 7, 2)]);
    assert_eq!(r.books.stats().duplicate_refs, 0);
}

#[test]
fn a_snapshot_in_the_next_file_rebuilds_even_after_a_file_of_snapshot_only() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot: Vec<Mbo> = (1..=3)
        .map(|id| Mbo {
            flags: SNAPSHOT | if id == 3 { LAST } else { 0 },
            ..mbo(b'A', b'A', id, P + TICK, 2)
        })
        .collect();
    let day1 = dir.path().join("day1.dbn.zst");
    write(&day1, &symbols(), &snapshot);
    let mut day2_records = snapshot.clone();
    day2_records.push(mbo(b'C', b'A', 2, P + TICK, 2));
    let day2 = dir.path().join("day2.dbn");
    write(&day2, &symbols(), &day2_records);
    let r = replay_with(&[day1, day2], 64);
    assert_eq!(levels(&r, Side::Sell), [(P + TICK, 4, 2)]);
    assert_eq!(
        r.books.stats().duplicate_refs,
        0,
        "no order was added twice"
    );
    assert_eq!(
        r.books.locate_of("ESH4"),
        Some(1),
        "the same name keeps its book"
    );
}

#[test]
fn a_group_is_never_split_across_polls() {
    let group: Vec<Mbo> = (1..=5)
        .map(|id| Mbo {
            flags: if id == 5 { LAST } else { 0 },
            ..mbo(b'A', b'B', id, P - TICK * id as i64, 1)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.dbn");
    let mut records = group.clone();
    records.push(mbo(b'A', b'A', 9, P + TICK, 1));
    write(&path, &symbols(), &records);
    // two events per poll asked for: the directory entries, then the group of five whole
    let r = replay_with(&[path], 2);
    let ops_per_poll: Vec<usize> = {
        let mut seen = 0;
        r.polls
            .iter()
            .map(|&n| {
                let ops = r.events[seen..seen + n]
                    .iter()
                    .filter(|e| matches!(e, Ev::Op(Op::Add(_), ..)))
                    .count();
                seen += n;
                ops
            })
            .collect()
    };
    assert!(
        ops_per_poll.contains(&5),
        "the group of five came in one poll: {ops_per_poll:?}"
    );
    assert_eq!(levels(&r, Side::Buy).len(), 5);
}

#[test]
fn records_that_cannot_be_applied_are_refused_by_reason() {
    let r = replay(&[
        mbo(b'A', b'N', 1, P, 1),
        mbo(b'A', b'B', 2, UNDEF_PRICE, 1),
        mbo(b'M', b'A', 3, UNDEF_PRICE, 1),
        Mbo {
            flags: LAST | TOB,
            ..mbo(b'A', b'B', 4, P, 1)
        },
        Mbo {
            flags: LAST | MBP,
            ..mbo(b'A', b'B', 5, P, 1)
        },
        Mbo {
            instrument: 999,
            ..mbo(b'A', b'B', 6, P, 1)
        },
        mbo(b'Z', b'B', 7, P, 1),
    ]);
    assert_eq!(
        rejections(&r),
        [
            Rejection::NoSide,
            Rejection::UndefinedPrice,
            Rejection::UndefinedPrice,
            Rejection::UnsupportedRecord,
            Rejection::UnsupportedRecord,
            Rejection::UnknownInstrument,
            Rejection::UnsupportedRecord,
        ]
    );
    assert_eq!(levels(&r, Side::Buy), [], "nothing rested");
}

#[test]
fn negative_prices_rest_and_order_correctly() {
    // a calendar spread trades at negative prices
    let r = replay(&[
        mbo(b'A', b'B', 1, -3 * TICK, 1),
        mbo(b'A', b'B', 2, -TICK, 2),
        mbo(b'A', b'A', 3, TICK, 3),
    ]);
    assert_eq!(levels(&r, Side::Buy), [(-TICK, 2, 1), (-3 * TICK, 1, 1)]);
    assert_eq!(levels(&r, Side::Sell), [(TICK, 3, 1)]);
}

#[test]
fn bad_files_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.dbn");
    std::fs::write(&junk, b"not a dbn file at all").unwrap();
    let options = FileOptions {
        pace: Pace::Unpaced,
        looping: false,
    };
    let err = DbnSource::open(std::slice::from_ref(&junk), options, 16)
        .unwrap_err()
        .to_string();
    assert!(err.contains("junk.dbn") && err.contains("DBN"), "{err}");
    let missing = dir.path().join("missing.dbn");
    let err = DbnSource::open(&[missing], options, 16)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.dbn"), "{err}");
    assert!(DbnSource::open(&[], options, 16).is_err());
}

#[test]
fn a_generated_stream_builds_the_same_books_as_itch_and_as_dbn() {
    let mut generator = Generator::with_profile(
        GeneratorConfig {
            symbols: 8,
            seed: 7,
        },
        Profile::Touch,
    );
    let config = BooksConfig {
        max_orders: 1 << 16,
        max_levels: 1 << 14,
        max_levels_per_side: 4096,
        max_symbols: 16,
    };
    let mut itch_books = Books::new(config, None).unwrap();
    let mut from_itch = FromItch::new();
    let mut records = Vec::new();
    let mut message = Vec::new();
    for _ in 0..100_000 {
        message.clear();
        generator.next_into(&mut message);
        let parsed = itch::parse(&message).unwrap();
        let op = Op::of(&parsed);
        itch_books.apply_op(&op, &mut |_| {});
        let h = parsed.header();
        from_itch.records(h.stock_locate, &op, h.timestamp, &mut records);
    }
    let names: Vec<(String, u32)> = generator
        .symbol_names()
        .zip(1u32..)
        .map(|(n, id)| (n.to_owned(), id))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.dbn.zst");
    write(&path, &names, &records);
    let r = replay_with(&[path], 256);
    itch_books.settle_all();
    let mut compared = 0;
    for (name, _) in &names {
        let itch = itch_books
            .view(itch_books.locate_of(name).unwrap())
            .unwrap();
        let dbn = r.books.view(r.books.locate_of(name).unwrap()).unwrap();
        for side in [Side::Buy, Side::Sell] {
            let want: Vec<(i64, u64, u32)> = itch
                .side(side)
                .map(|l| (l.price * ITCH_TO_DBN_PRICE, l.shares, l.orders))
                .collect();
            let got: Vec<(i64, u64, u32)> = dbn
                .side(side)
                .map(|l| (l.price, l.shares, l.orders))
                .collect();
            assert_eq!(got, want, "{name} {side:?}");
            compared += want.len();
        }
    }
    assert!(compared > 100, "the books have levels: {compared}");
    assert!(rejections(&r).is_empty());
}

/// Hostile and clumsy input: arbitrary records against a plain model of what the books must
/// hold, and damaged files, which must never panic the source.
mod hostile {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;

    use super::*;

    /// The books as the documented semantics say, by the simplest means: orders by id
    /// (references are global, as in the books), each with its instrument.
    #[derive(Default)]
    struct Model {
        /// id → (instrument, side, price, size).
        orders: HashMap<u64, (u32, u8, i64, u32)>,
        in_snapshot: HashMap<u32, bool>,
    }

    impl Model {
        fn apply(&mut self, m: &Mbo) {
            let flags = m.flags;
            if flags & (TOB | MBP) != 0 || ![ES, NQ].contains(&m.instrument) {
                return;
            }
            let snapshot = flags & SNAPSHOT != 0;
            let was = self
                .in_snapshot
                .insert(m.instrument, snapshot)
                .unwrap_or(false);
            if snapshot && !was && m.action != b'R' {
                self.orders.retain(|_, o| o.0 != m.instrument);
            }
            let sided = matches!(m.side, b'B' | b'A') && m.price != UNDEF_PRICE;
            match m.action {
                b'A' if sided && m.size > 0 => {
                    self.orders.entry(m.order_id).or_insert((
                        m.instrument,
                        m.side,
                        m.price,
                        m.size,
                    ));
                }
                b'C' => {
                    if let Some(o) = self.orders.get_mut(&m.order_id) {
                        o.3 = o.3.saturating_sub(m.size);
                        if o.3 == 0 {
                            self.orders.remove(&m.order_id);
                        }
                    }
                }
                b'M' if sided => match self.orders.get_mut(&m.order_id) {
                    Some(_) if m.size == 0 => {
                        self.orders.remove(&m.order_id);
                    }
                    Some(o) => {
                        o.2 = m.price;
                        o.3 = m.size;
                    }
                    None if m.size > 0 => {
                        self.orders
                            .insert(m.order_id, (m.instrument, m.side, m.price, m.size));
                    }
                    None => {}
                },
                b'R' => self.orders.retain(|_, o| o.0 != m.instrument),
                _ => {}
            }
        }

        fn levels(&self, instrument: u32, side: u8) -> Vec<(i64, u64, u32)> {
            let mut book: BTreeMap<i64, (u64, u32)> = BTreeMap::new();
            for &(i, s, price, size) in self.orders.values() {
                if i == instrument && s == side {
                    let l = book.entry(price).or_default();
                    l.0 += u64::from(size);
                    l.1 += 1;
                }
            }
            let rows = book.into_iter().map(|(p, (s, o))| (p, s, o));
            if side == b'B' {
                rows.rev().collect()
            } else {
                rows.collect()
            }
        }
    }

    fn record() -> impl Strategy<Value = Mbo> {
        (
            prop::sample::select(b"ACMRTFNZ".to_vec()),
            prop::sample::select(b"BAN".to_vec()),
            0u64..24,
            prop_oneof![8 => (-6i64..6).prop_map(|t| P + t * TICK), 1 => Just(UNDEF_PRICE), 1 => (-6i64..6).prop_map(|t| t * TICK)],
            prop_oneof![1 => Just(0u32), 8 => 1u32..6, 1 => Just(u32::MAX)],
            prop::sample::select(vec![0u8, LAST, LAST, LAST, SNAPSHOT, SNAPSHOT | LAST, TOB | LAST, MBP]),
            prop::sample::select(vec![ES, ES, NQ, 999]),
        )
            .prop_map(|(action, side, order_id, price, size, flags, instrument)| Mbo {
                instrument,
                action,
                side,
                order_id,
                price,
                size,
                flags,
                ts: START_NS,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_records_leave_the_books_as_the_model_says(
            records in prop::collection::vec(record(), 0..300)
        ) {
            let mut model = Model::default();
            for r in &records {
                model.apply(r);
            }
            let r = replay(&records);
            for (name, id) in [("ESH4", ES), ("NQH4", NQ)] {
                let locate = r.books.locate_of(name).unwrap();
                let view = r.books.view(locate).unwrap();
                for (side, byte) in [(Side::Buy, b'B'), (Side::Sell, b'A')] {
                    let got: Vec<(i64, u64, u32)> =
                        view.side(side).map(|l| (l.price, l.shares, l.orders)).collect();
                    prop_assert_eq!(got, model.levels(id, byte), "{} {:?}", name, side);
                }
            }
        }

        #[test]
        fn damaged_files_never_panic_the_source(
            at in 0usize..4096,
            junk in prop::collection::vec(any::<u8>(), 1..64),
            cut in prop::option::of(0usize..4096),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("d.dbn");
            let records: Vec<Mbo> = (1..60).map(|id| mbo(b'A', b'B', id, P - TICK * (id as i64 % 7), 1)).collect();
            write(&path, &symbols(), &records);
            let mut bytes = std::fs::read(&path).unwrap();
            let at = at % bytes.len();
            let end = (at + junk.len()).min(bytes.len());
            bytes[at..end].copy_from_slice(&junk[..end - at]);
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            std::fs::write(&path, &bytes).unwrap();
            let options = FileOptions { pace: Pace::Unpaced, looping: false };
            if let Ok(mut source) = DbnSource::open(std::slice::from_ref(&path), options, 16) {
                let mut polls = 0;
                while source.poll(0, 64, &mut |_| {}) != Polled::Ended {
                    polls += 1;
                    prop_assert!(polls < 10_000, "the source ends");
                }
            }
        }
    }
}

#[test]
fn records_are_paced_by_ts_event_and_a_group_waits_whole() {
    const MS: u64 = 1_000_000;
    let at = |id: u64, ts: u64, flags: u8| Mbo {
        ts: START_NS + ts,
        flags,
        ..mbo(b'A', b'B', id, P - TICK * id as i64, 1)
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paced.dbn");
    write(
        &path,
        &symbols(),
        &[
            at(1, 0, LAST),
            at(2, MS, 0),
            at(3, MS, LAST),
            at(4, 2 * MS, LAST),
        ],
    );
    let options = FileOptions {
        pace: Pace::Timestamps { speed: 1.0 },
        looping: false,
    };
    let mut source = DbnSource::open(&[path], options, 16).unwrap();
    let mut adds_at = |now: u64| {
        let mut adds = 0;
        let polled = source.poll(now, 64, &mut |e| {
            if let FeedEvent::Decoded { op: Op::Add(_), .. } = e {
                adds += 1;
            }
        });
        (adds, polled)
    };
    let t0 = 5_000 * MS;
    assert_eq!(adds_at(t0).0, 1, "the first record at once");
    assert_eq!(
        adds_at(t0 + MS / 2),
        (0, Polled::Idle),
        "the next group is 1 ms on"
    );
    assert_eq!(adds_at(t0 + MS).0, 2, "the group of two, whole");
    assert_eq!(adds_at(t0 + 2 * MS - 1), (0, Polled::Idle));
    assert_eq!(adds_at(t0 + 2 * MS).0, 1);
}

#[test]
fn a_name_mapped_to_several_ids_in_one_file_is_not_served() {
    // a continuous symbol across a roll: one book would mix two contracts
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roll.dbn");
    let mut md = metadata("TEST", &symbols(), START_NS);
    let mut second = md.mappings[0].intervals[0].clone();
    second.symbol = "5602".to_owned();
    md.mappings[0].intervals.push(second);
    let mut nq = mbo(b'A', b'B', 2, P, 1);
    nq.instrument = NQ;
    write_file(&path, &md, [mbo(b'A', b'B', 1, P, 1), nq]).unwrap();
    let r = replay_with(&[path], 64);
    assert_eq!(r.books.locate_of("ESH4"), None, "ESH4 is not named");
    assert!(r.books.locate_of("NQH4").is_some(), "NQH4 is");
    assert_eq!(rejections(&r), [Rejection::UnknownInstrument]);
}

#[test]
fn informational_flags_change_nothing() {
    // F_BAD_TS_RECV (every snapshot record has it), F_MAYBE_BAD_BOOK and F_PUBLISHER_SPECIFIC
    // say something about the record, not about what it does to the book
    use dbn::flags::{BAD_TS_RECV, MAYBE_BAD_BOOK, PUBLISHER_SPECIFIC};
    let flagged = |m: Mbo, extra: u8| Mbo {
        flags: m.flags | extra,
        ..m
    };
    let r = replay(&[
        flagged(mbo(b'A', b'B', 1, P, 5), BAD_TS_RECV),
        flagged(mbo(b'A', b'B', 2, P, 3), MAYBE_BAD_BOOK),
        flagged(mbo(b'C', b'B', 1, P, 2), PUBLISHER_SPECIFIC),
    ]);
    assert_eq!(levels(&r, Side::Buy), [(P, 6, 2)]);
    assert!(rejections(&r).is_empty());
}
