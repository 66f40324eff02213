//! The recorded Databento sessions (`../shared/data/databento/`, read in place): the two ESH4
//! days played in order as one session, and two seconds of ESM4, through `pinbook replay` and
//! through `pinbook serve` over gRPC, checked level by level against an independent model in
//! this file: a plain map of orders fed by the `dbn` crate's decoder, nothing of pinbook's.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{BIN, Server, eventually, json_lines, ok};
use dbn::decode::{DbnMetadata, DecodeRecordRef, DynDecoder};
use dbn::{MboMsg, VersionUpgradePolicy};

const ESH4_DAYS: [&str; 2] = [
    "esh4-glbx-mdp3-20231224.mbo.dbn.zst",
    "esh4-glbx-mdp3-20231225.mbo.dbn.zst",
];
const ESM4: &str = "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst";

fn recorded(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/databento")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: the recorded sessions are kept beside the repository, in \
         ../shared/data/databento/ (see its README)",
        path.display()
    );
    path
}

/// A side: price → (size, orders).
type Side = BTreeMap<i64, (u64, u32)>;

/// An MBO book as Databento documents the actions: A adds at the back of its level, C takes its
/// size off (the order goes at 0), M sets price and size (keeping its place only at the same
/// price with no more size; an unknown order is added), R empties, T/F/N change nothing; a run
/// of `F_SNAPSHOT` records starts from an empty book unless it starts with R.
#[derive(Default)]
struct Model {
    /// id → (side, price, size).
    orders: HashMap<u64, (u8, i64, u32)>,
    /// (side, price) → ids, first to fill first.
    queues: HashMap<(u8, i64), Vec<u64>>,
    in_snapshot: bool,
    records: u64,
}

impl Model {
    fn play(paths: &[PathBuf], symbol: &str) -> Model {
        let mut model = Model::default();
        for path in paths {
            let mut decoder =
                DynDecoder::from_file(path, VersionUpgradePolicy::UpgradeToV3).expect("decode");
            let id: u32 = decoder
                .metadata()
                .mappings
                .iter()
                .find(|m| m.raw_symbol == symbol)
                .and_then(|m| m.intervals.first())
                .and_then(|i| i.symbol.parse().ok())
                .unwrap_or_else(|| panic!("{} maps {symbol}", path.display()));
            model.in_snapshot = false;
            while let Some(record) = decoder.decode_record_ref().expect("a record") {
                let Some(m) = record.get::<MboMsg>() else {
                    continue;
                };
                if m.hd.instrument_id == id {
                    model.apply(m);
                }
            }
        }
        model
    }

    fn push(&mut self, id: u64, side: u8, price: i64, size: u32) {
        if size > 0 && !self.orders.contains_key(&id) {
            self.orders.insert(id, (side, price, size));
            self.queues.entry((side, price)).or_default().push(id);
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some((side, price, _)) = self.orders.remove(&id)
            && let Some(queue) = self.queues.get_mut(&(side, price))
        {
            queue.retain(|&x| x != id);
            if queue.is_empty() {
                self.queues.remove(&(side, price));
            }
        }
    }

    fn apply(&mut self, m: &MboMsg) {
        self.records += 1;
        let action = m.action as u8;
        let snapshot = m.flags.is_snapshot();
        if snapshot && !self.in_snapshot && action != b'R' {
            self.orders.clear();
            self.queues.clear();
        }
        self.in_snapshot = snapshot;
        let id = m.order_id;
        match action {
            b'A' => self.push(id, m.side as u8, m.price, m.size),
            b'C' => {
                if let Some(o) = self.orders.get_mut(&id) {
                    o.2 = o.2.saturating_sub(m.size);
                    if o.2 == 0 {
                        self.remove(id);
                    }
                }
            }
            b'M' => match self.orders.get(&id).copied() {
                None => self.push(id, m.side as u8, m.price, m.size),
                Some((_, price, size)) if price == m.price && m.size <= size => {
                    if m.size == 0 {
                        self.remove(id);
                    } else if let Some(o) = self.orders.get_mut(&id) {
                        o.2 = m.size;
                    }
                }
                Some((side, ..)) => {
                    self.remove(id);
                    self.push(id, side, m.price, m.size);
                }
            },
            b'R' => {
                self.orders.clear();
                self.queues.clear();
            }
            _ => {}
        }
    }

    /// The queue of (`side`, `price`) as `[id, size]`, first to fill first.
    fn queue(&self, side: u8, price: i64) -> Vec<[i64; 2]> {
        self.queues
            .get(&(side, price))
            .map(|ids| {
                ids.iter()
                    .map(|id| [*id as i64, i64::from(self.orders[id].2)])
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Bids and asks, best first, as `[price, size, orders]`.
    fn sides(&self) -> (Vec<[i64; 3]>, Vec<[i64; 3]>) {
        let (mut bids, mut asks) = (Side::new(), Side::new());
        for &(side, price, size) in self.orders.values() {
            let book = if side == b'B' { &mut bids } else { &mut asks };
            let level = book.entry(price).or_default();
            level.0 += u64::from(size);
            level.1 += 1;
        }
        let row = |(&p, &(s, o)): (&i64, &(u64, u32))| [p, s as i64, i64::from(o)];
        (
            bids.iter().rev().map(row).collect(),
            asks.iter().map(row).collect(),
        )
    }
}

/// `[[price, size, orders], …]` from JSON.
fn rows(v: &serde_json::Value) -> Vec<[i64; 3]> {
    v.as_array()
        .expect("an array of levels")
        .iter()
        .map(|l| {
            let n = |i: usize| l[i].as_i64().expect("an integer");
            [n(0), n(1), n(2)]
        })
        .collect()
}

fn feed(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!("dbn:{}", names.join(","))
}

fn replay_json(paths: &[PathBuf], symbol: &str) -> serde_json::Value {
    let out = Command::new(BIN)
        .args([
            "replay",
            "--feed",
            &feed(paths),
            "--json",
            "--orders",
            "--depth",
            "100000",
        ])
        .args(["--symbols", symbol])
        .output()
        .expect("run pinbook replay");
    json_lines(&ok(&out, "replay"))[0].clone()
}

/// Levels per side, best bid and ask, and every level, with the failing one named.
fn assert_same_book(
    what: &str,
    got: (Vec<[i64; 3]>, Vec<[i64; 3]>),
    want: &(Vec<[i64; 3]>, Vec<[i64; 3]>),
) {
    for (side, got, want) in [("bids", &got.0, &want.0), ("asks", &got.1, &want.1)] {
        assert_eq!(got.len(), want.len(), "{what}: levels of the {side}");
        assert_eq!(got.first(), want.first(), "{what}: the best of the {side}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g, w, "{what}: {side} level {i} ([price, size, orders])");
        }
    }
}

#[test]
fn the_two_esh4_days_replay_to_the_models_book() {
    let paths: Vec<PathBuf> = ESH4_DAYS.iter().map(|n| recorded(n)).collect();
    let model = Model::play(&paths, "ESH4");
    assert_eq!(model.records, 8_725 + 68_792, "every record of both days");
    let want = model.sides();
    assert!(want.0.len() > 100 && want.1.len() > 100, "a deep book");
    let replayed = replay_json(&paths, "ESH4");
    assert_eq!(replayed["messages"], 8_725 + 68_792);
    let book = &replayed["books"]["ESH4"];
    assert_eq!(book["price_exponent"], -9, "DBN prices are 1e-9");
    assert_same_book(
        "replay ESH4",
        (rows(&book["bids"]), rows(&book["asks"])),
        &want,
    );
    // the best bid as the recorded session ended, 4810.00 (a readable check of the unit)
    assert_eq!(want.0[0][0], 4_810_000_000_000);
    assert_same_queues("replay ESH4", &model, book, &want);
}

/// `[[id, size], …]` per level from JSON.
fn queues(v: &serde_json::Value) -> Vec<Vec<[i64; 2]>> {
    v.as_array()
        .expect("an array of levels")
        .iter()
        .map(|level| {
            level
                .as_array()
                .expect("an array of orders")
                .iter()
                .map(|o| {
                    [
                        o[0].as_i64().expect("an id"),
                        o[1].as_i64().expect("a size"),
                    ]
                })
                .collect()
        })
        .collect()
}

/// Every level's queue, in time priority (the L3 state), as the model keeps it.
fn assert_same_queues(
    what: &str,
    model: &Model,
    book: &serde_json::Value,
    levels: &(Vec<[i64; 3]>, Vec<[i64; 3]>),
) {
    for (side, byte, key, rows) in [
        ("bids", b'B', "bid_orders", &levels.0),
        ("asks", b'A', "ask_orders", &levels.1),
    ] {
        let got = queues(&book[key]);
        assert_eq!(got.len(), rows.len(), "{what}: {side} queues");
        for (level, queue) in rows.iter().zip(&got) {
            assert_eq!(
                queue,
                &model.queue(byte, level[0]),
                "{what}: the queue of {side} {} ([id, size], first to fill first)",
                level[0]
            );
        }
    }
}

#[test]
fn two_seconds_of_esm4_starting_with_a_clear_replay_to_the_models_book() {
    let paths = vec![recorded(ESM4)];
    let model = Model::play(&paths, "ESM4");
    let want = model.sides();
    let replayed = replay_json(&paths, "ESM4");
    let book = &replayed["books"]["ESM4"];
    assert_same_book(
        "replay ESM4",
        (rows(&book["bids"]), rows(&book["asks"])),
        &want,
    );
    assert_same_queues("replay ESM4", &model, book, &want);
}

#[test]
fn serve_publishes_the_esh4_session_over_grpc_as_the_model_builds_it() {
    let paths: Vec<PathBuf> = ESH4_DAYS.iter().map(|n| recorded(n)).collect();
    let (bids, asks) = Model::play(&paths, "ESH4").sides();
    // GetBook serves at most 1,000 levels a side (the server's max_depth)
    let depth = 1000;
    let want = (
        bids.iter().take(depth).copied().collect(),
        asks.iter().take(depth).copied().collect(),
    );
    let server = Server::start_with(&["--feed", &feed(&paths)]);
    eventually(
        "the served ESH4 book is the model's",
        Duration::from_secs(60),
        || {
            let out = server.run(&["book", "ESH4", "--depth", &depth.to_string(), "--json"]);
            if !out.status.success() {
                return Err(format!(
                    "{}\nserver log:\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    server.log()
                ));
            }
            let served = json_lines(&String::from_utf8_lossy(&out.stdout))[0].clone();
            let got = (rows(&served["bids"]), rows(&served["asks"]));
            if got != want {
                return Err(format!(
                    "served {} bids, {} asks, best {:?} / {:?}; want {} / {}",
                    got.0.len(),
                    got.1.len(),
                    got.0.first(),
                    got.1.first(),
                    want.0.len(),
                    want.1.len()
                ));
            }
            assert_eq!(served["price_exponent"], -9);
            assert_eq!(served["stale"], false);
            Ok(())
        },
    );
    // and a subscriber gets the same book, its checksum verified by the CLI as it reads
    let out = server.run(&[
        "subscribe",
        "ESH4",
        "--depth",
        "10",
        "--json",
        "--count",
        "1",
    ]);
    let updates = json_lines(&ok(&out, "subscribe"));
    let snapshot = &updates[0];
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["price_exponent"], -9);
    assert_eq!(rows(&snapshot["bids"])[..], want.0[..10]);
    assert_eq!(rows(&snapshot["asks"])[..], want.1[..10]);
    // the text ladder shows decimal prices
    let text = ok(&server.run(&["book", "ESH4", "--depth", "1"]), "book");
    assert!(
        text.contains("4810.00") && text.contains("4810.25"),
        "{text}"
    );
}
