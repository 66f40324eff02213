//! The order, trade and status streams end to end: a real `pinbook serve` plays a generated
//! file while `pinbook orders`, `trades`, `status --follow` and `subscribe` follow it over
//! gRPC (each checking its stream's contract: exit status 0 only if seq, resyncs and checksums
//! held); the order queues they end with must be `pinbook replay --json --orders`'s, and
//! `pinbook order` must place orders where those queues have them.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{BIN, Server, eventually, json_lines, ok, text};

const SYMBOLS: [&str; 2] = ["AAPL", "MSFT"];

/// A client command running, its output read as it comes (a client whose pipe fills stops
/// reading its stream, and the server rightly closes it as too slow).
struct Following {
    child: Child,
    stdout: std::thread::JoinHandle<String>,
}

fn follow(server: &Server, args: &[&str]) -> Following {
    let mut child = server
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the pinbook binary");
    let mut pipe = child.stdout.take().expect("its stdout");
    let stdout = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut out);
        out
    });
    Following { child, stdout }
}

fn finished(following: Following, what: &str) -> Vec<serde_json::Value> {
    let mut out = following
        .child
        .wait_with_output()
        .expect("wait for the client");
    out.stdout = following.stdout.join().expect("the reader").into_bytes();
    json_lines(&ok(&out, what))
}

#[test]
fn four_streams_follow_a_file_and_end_with_the_replayed_queues() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("day.itch");
    let file = file.to_str().expect("a UTF-8 path");
    let messages: u64 = 40_000;
    ok(
        &Command::new(BIN)
            .args([
                "gen",
                file,
                "-n",
                &messages.to_string(),
                "-k",
                "6",
                "--seed",
                "11",
            ])
            .output()
            .expect("run gen"),
        "gen",
    );
    // a few seconds of play, so the streams start while it plays. A client starved of the CPU
    // by a loaded machine is resynced (which the contract checkers follow) rather than closed
    let config = dir.path().join("pinbook.toml");
    std::fs::write(&config, "[subscribers]\nmax_resyncs = 1000\n").expect("write the config");
    let server = Server::start_with(&[
        "--config",
        config.to_str().expect("a UTF-8 path"),
        "--feed",
        &format!("file:{file}"),
        "--file-rate",
        "8000",
    ]);
    server.wait_serving(&[]);
    let seconds = "25";
    let orders = follow(
        &server,
        &["orders", "AAPL", "MSFT", "--json", "--seconds", seconds],
    );
    let trades = follow(
        &server,
        &["trades", "AAPL", "MSFT", "--json", "--seconds", seconds],
    );
    let status = follow(
        &server,
        &[
            "status",
            "AAPL",
            "MSFT",
            "--follow",
            "--json",
            "--seconds",
            seconds,
        ],
    );
    let levels = follow(
        &server,
        &[
            "subscribe",
            "AAPL",
            "--depth",
            "1000",
            "--json",
            "--seconds",
            seconds,
        ],
    );
    eventually(
        "the shard took the whole file",
        Duration::from_secs(60),
        || {
            let stats = json_lines(&ok(&server.admin(&["stats", "--json"]), "stats"));
            match stats[0]["shards"][0]["messages"].as_u64() {
                Some(n) if n == messages => Ok(()),
                _ => Err(format!("{stats:?}")),
            }
        },
    );
    let replay = json_lines(&ok(
        &Command::new(BIN)
            .args(["replay", file, "--json", "--orders", "--depth", "100000"])
            .output()
            .expect("run replay"),
        "replay",
    ));
    let books = &replay[0]["books"];

    // the queues while the file is done (GetOrder asks the data plane now)
    for symbol in SYMBOLS {
        let book = &books[symbol];
        for (key, side) in [("bid_orders", "BID"), ("ask_orders", "ASK")] {
            let queues = book[key].as_array().expect("queues");
            assert!(!queues.is_empty(), "{symbol} {key}");
            for queue in queues.iter().take(3) {
                let queue = queue.as_array().expect("a queue");
                let (i, last) = (queue.len() - 1, &queue[queue.len() - 1]);
                let reference = last[0].as_u64().expect("a reference").to_string();
                let answer = json_lines(&ok(
                    &server.run(&["order", symbol, &reference, "--json"]),
                    "order",
                ));
                let ahead: u64 = queue[..i].iter().map(|o| o[1].as_u64().unwrap_or(0)).sum();
                assert_eq!(answer[0]["orders_ahead"], i as u64, "{symbol} {reference}");
                assert_eq!(answer[0]["shares_ahead"], ahead, "{symbol} {reference}");
                assert_eq!(answer[0]["side"], side);
                assert_eq!(answer[0]["shares"], last[1]);
            }
        }
    }
    let gone = server.run(&["order", "AAPL", "1", "--json"]);
    assert!(!gone.status.success(), "order 1 is long gone");
    assert!(
        text(&gone.stderr).contains("NOT_FOUND"),
        "{}",
        text(&gone.stderr)
    );

    // each client checked its stream's contract as it came: exit 0 says it held
    let orders = finished(orders, "orders");
    let trades = finished(trades, "trades");
    let status = finished(status, "status");
    let levels = finished(levels, "subscribe");
    for symbol in SYMBOLS {
        let held = orders
            .iter()
            .find(|u| u["symbol"] == symbol && u.get("bid_orders").is_some())
            .unwrap_or_else(|| panic!("{symbol}'s final queues"));
        let want = &books[symbol];
        assert_eq!(
            held["bid_orders"], want["bid_orders"],
            "{symbol} bid queues"
        );
        assert_eq!(
            held["ask_orders"], want["ask_orders"],
            "{symbol} ask queues"
        );
        assert_eq!(held["bids"], want["bids"], "{symbol} bids");
        assert_eq!(held["asks"], want["asks"], "{symbol} asks");
        let events = orders
            .iter()
            .filter(|u| u["symbol"] == symbol && u["type"] == "order")
            .count();
        assert!(
            events > 100,
            "{symbol}: {events} order events while the file played"
        );
        let traded = trades
            .iter()
            .filter(|u| u["symbol"] == symbol && u["type"] == "trade")
            .count();
        assert!(traded > 0, "{symbol} traded while the file played");
        let first = status
            .iter()
            .find(|u| u["symbol"] == symbol)
            .unwrap_or_else(|| panic!("{symbol}'s status"));
        assert_eq!(first["change"], "SNAPSHOT", "{first}");
        assert_eq!(first["seq"], 1);
    }
    assert!(
        levels.iter().any(|u| u["type"] == "snapshot"),
        "the level stream ran beside the others"
    );
}
