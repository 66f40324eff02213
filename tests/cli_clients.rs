//! The client commands (`subscribe`, `book`, `symbols`, `stats`) against a real
//! `pinbook serve` on 127.0.0.1:0, run as a user runs them; then the server's orderly exit on
//! SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Server, TOKEN, check_stream, eventually, json_lines, ok, text};

#[test]
fn client_commands_against_a_running_server() {
    let server = Server::start();
    server.wait_serving(&[]);

    // book: the ladder as JSON, the checksum verified by the command itself
    let book = json_lines(&ok(
        &server.run(&["book", "AAPL", "--depth", "5", "--json"]),
        "book --json",
    ));
    assert_eq!(book[0]["symbol"], "AAPL");
    assert!(book[0]["bids"].as_array().is_some_and(|b| b.len() <= 5));
    let ladder = ok(&server.run(&["book", "AAPL"]), "book");
    assert!(ladder.contains("bid") && ladder.contains('|'), "{ladder}");

    // subscribe: 200 updates of two symbols, the contract checked here too
    let out = server.run(&["subscribe", "AAPL", "MSFT", "--json", "--count", "200"]);
    let updates = json_lines(&ok(&out, "subscribe AAPL MSFT"));
    assert!(updates.len() >= 200, "{} lines", updates.len());
    let counts = check_stream(&updates);
    assert!(
        counts.contains_key("AAPL") && counts.contains_key("MSFT"),
        "{counts:?}"
    );

    // top of book: one level per side, whatever depth
    let out = server.run(&[
        "subscribe",
        "AAPL",
        "--mode",
        "top",
        "--count",
        "50",
        "--json",
    ]);
    let updates = json_lines(&ok(&out, "subscribe --mode top"));
    check_stream(&updates);
    for u in updates.iter().filter(|u| u["type"] == "snapshot") {
        assert!(u["bids"].as_array().is_some_and(|b| b.len() <= 1), "{u}");
        assert!(u["asks"].as_array().is_some_and(|a| a.len() <= 1), "{u}");
    }

    // a name with spaces around it is the symbol the server knows (checked, not a violation)
    let out = server.run(&["subscribe", " AAPL ", "--count", "5", "--json"]);
    let updates = json_lines(&ok(&out, "subscribe ' AAPL '"));
    let named: Vec<_> = updates.iter().filter_map(|u| u.get("symbol")).collect();
    assert!(
        !named.is_empty() && named.iter().all(|s| *s == "AAPL"),
        "{updates:?}"
    );

    // the server's refusals, passed on with their code
    let out = server.run(&["subscribe", "--depth", "0", "AAPL"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("depth"),
        "{err}"
    );
    let out = server.run(&["subscribe", "NOPE"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("NOT_FOUND"),
        "{}",
        text(&out.stderr)
    );

    // symbols: list, then remove and add MSFT while a subscriber watches it
    let list = json_lines(&ok(&server.admin(&["symbols", "list", "--json"]), "list"));
    let symbols = list[0]["symbols"].as_array().expect("a symbol list");
    assert!(
        symbols
            .iter()
            .any(|s| s["symbol"] == "AAPL" && s["state"] == "published"),
        "{symbols:?}"
    );
    // the watcher's --seconds is only a safety net: it ends on its own once MSFT, its only
    // symbol, is removed
    let mut watcher = server
        .command(&["subscribe", "MSFT", "--json", "--seconds", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a subscriber");
    let mut lines = BufReader::new(watcher.stdout.take().expect("the subscriber's stdout"))
        .lines()
        .map(|l| l.expect("a line of the subscriber"));
    let mut watched = Vec::new();
    // subscribed once its snapshot came: only then is the removal sure to reach it
    for line in lines.by_ref() {
        let update: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"));
        let snapshot = update["type"] == "snapshot";
        watched.push(update);
        if snapshot {
            break;
        }
    }
    if !watched.last().is_some_and(|u| u["type"] == "snapshot") {
        let out = watcher.wait_with_output().expect("the subscriber's exit");
        panic!(
            "the subscriber ended ({}) before its snapshot: {}; it printed {watched:?}",
            out.status,
            text(&out.stderr)
        );
    }
    let removed = json_lines(&ok(
        &server.admin(&["symbols", "remove", "MSFT", "--json"]),
        "symbols remove MSFT",
    ));
    assert_eq!(removed[0]["state"], "removed");
    // the rest: the removal must be the last line, as the subscriber then exits by itself
    // (staying on, it would print a heartbeat every second)
    watched.extend(json_lines(&lines.collect::<Vec<_>>().join("\n")));
    let out = watcher.wait_with_output().expect("the subscriber's exit");
    ok(&out, "subscribe MSFT during its removal");
    check_stream(&watched);
    let last = watched.last().expect("updates");
    assert!(
        last["type"] == "removed" && last["symbol"] == "MSFT",
        "the subscriber did not end with the removal of MSFT: {last}"
    );
    let out = server.run(&["subscribe", "MSFT"]);
    assert!(
        text(&out.stderr).contains("NOT_FOUND"),
        "{}",
        text(&out.stderr)
    );
    let added = json_lines(&ok(
        &server.admin(&["symbols", "add", "MSFT", "--json"]),
        "symbols add MSFT",
    ));
    assert_eq!(added[0]["state"], "published");

    // admin tokens: a wrong one, a missing one, one from a file
    let out = server
        .command(&["symbols", "remove", "MSFT"])
        .env("PINBOOK_ADMIN_TOKEN", "wrong")
        .output()
        .expect("run the pinbook binary");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("PERMISSION_DENIED"),
        "{}",
        text(&out.stderr)
    );
    let missing = server.state().join("no-such-token");
    let out = server.run(&["symbols", "remove", "MSFT", "--token-file", path(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("PINBOOK_ADMIN_TOKEN") && err.contains("no-such-token"),
        "{err}"
    );
    let token_file = server.state().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write a token file");
    let table = ok(
        &server.run(&["symbols", "list", "--token-file", path(&token_file)]),
        "symbols list --token-file",
    );
    assert!(
        table.contains("MSFT") && table.contains("published"),
        "{table}"
    );

    // stats
    let stats = json_lines(&ok(&server.admin(&["stats", "--json"]), "stats --json"));
    let messages: u64 = stats[0]["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| s["messages"].as_u64().unwrap_or(0))
        .sum();
    assert!(messages > 0, "{}", stats[0]);
    let table = ok(&server.admin(&["stats"]), "stats");
    assert!(
        table.contains("busy ratio") && table.contains("subscribers"),
        "{table}"
    );

    // SIGTERM: an orderly exit with status 0
    let mut server = server;
    let kill = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let mut status = None;
    eventually(
        "the server exits on SIGTERM",
        Duration::from_secs(10),
        || {
            status = server.try_wait();
            status
                .map(|_| ())
                .ok_or_else(|| format!("still running; log:\n{}", server.log()))
        },
    );
    let status = status.expect("an exit status");
    assert!(status.success(), "{status}; log:\n{}", server.log());
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn without_a_server_the_error_says_what_to_do() {
    // port 1 is privileged and never a pinbook server
    let out = Command::new(BIN)
        .args(["book", "AAPL", "--addr", "127.0.0.1:1"])
        .output()
        .expect("run the pinbook binary");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot connect to 127.0.0.1:1") && err.contains("pinbook serve"),
        "{err}"
    );
}

#[test]
fn books_served_from_a_file_feed_equal_the_offline_replay() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("day.itch");
    let file = file.to_str().expect("a UTF-8 path");
    let messages = 50_000;
    ok(
        &Command::new(BIN)
            .args([
                "gen",
                file,
                "-n",
                &messages.to_string(),
                "-k",
                "8",
                "--seed",
                "3",
            ])
            .output()
            .expect("run gen"),
        "gen",
    );
    let server = Server::start_with(&["--feed", &format!("file:{file}")]);
    server.wait_serving(&[]);
    // the file plays once, as fast as possible: wait until the shard took all of it
    eventually(
        "the shard took the whole file",
        Duration::from_secs(30),
        || {
            let stats = json_lines(&ok(&server.admin(&["stats", "--json"]), "stats"));
            match stats[0]["shards"][0]["messages"].as_u64() {
                Some(n) if n == messages => Ok(()),
                _ => Err(format!("{stats:?}")),
            }
        },
    );
    for symbol in ["AAPL", "MSFT", "NVDA"] {
        let served = json_lines(&ok(
            &server.run(&["book", symbol, "--depth", "1000", "--json"]),
            "book",
        ));
        let offline = json_lines(&ok(
            &Command::new(BIN)
                .args([
                    "replay",
                    file,
                    "--json",
                    "--depth",
                    "1000",
                    "--symbols",
                    symbol,
                ])
                .output()
                .expect("run replay"),
            "replay",
        ));
        let expected = &offline[0]["books"][symbol];
        assert!(
            expected["bids"].as_array().is_some_and(|b| !b.is_empty()),
            "{symbol} has a book"
        );
        assert_eq!(served[0]["bids"], expected["bids"], "{symbol} bids");
        assert_eq!(served[0]["asks"], expected["asks"], "{symbol} asks");
    }
}

#[test]
fn a_book_token_in_the_config_protects_book_calls() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("pinbook.toml");
    std::fs::write(
        &config,
        "[auth]\nbook_token = \"book-secret\"\n[simulator]\nrate = 20000\nsymbols = 5\n",
    )
    .expect("write the config");
    let server = Server::start_with(&["--config", config.to_str().expect("a UTF-8 path")]);
    server.wait_serving(&[("PINBOOK_BOOK_TOKEN", "book-secret")]);
    let without = server.run(&["book", "AAPL"]);
    assert!(!without.status.success());
    assert!(
        text(&without.stderr).contains("UNAUTHENTICATED"),
        "{}",
        text(&without.stderr)
    );
    let wrong = server
        .command(&["subscribe", "AAPL", "--count", "1"])
        .env("PINBOOK_BOOK_TOKEN", "nope")
        .output()
        .expect("run subscribe");
    assert!(
        text(&wrong.stderr).contains("PERMISSION_DENIED"),
        "{}",
        text(&wrong.stderr)
    );
}
