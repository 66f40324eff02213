//! The client commands (`subscribe`, `book`, `symbols`, `stats`) against a real
//! `pinbook serve` on 127.0.0.1:0, run as a user runs them; then the server's orderly exit on
//! SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    BIN, Server, TOKEN, assert_books_match_replay, check_stream, eventually, json_lines, ok, text,
};

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
    assert_books_match_replay(&server, file, &["AAPL", "MSFT", "NVDA"]);
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

/// True once process `pid` catches SIGTERM (bit 15 of `SigCgt` in /proc/PID/status).
fn catches_sigterm(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
}

#[test]
fn sigterm_during_startup_still_shuts_down_cleanly() {
    let state = tempfile::tempdir().expect("a temporary state directory");
    let mut child = Command::new(BIN)
        .args(["serve", "--grpc-addr", "127.0.0.1:0"])
        .args(["--metrics-addr", "127.0.0.1:0", "--sim-symbols", "20"])
        .env("PINBOOK_ADMIN_TOKEN", TOKEN)
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pinbook serve");
    let pid = child.id();
    let stdout = child.stdout.take().expect("the server's stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The earliest moment a signal can be handled at all: the handler is installed. Startup
    // (config, data plane, listeners) is still ahead, so poll tightly.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !catches_sigterm(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "serve never caught SIGTERM"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let before: Vec<String> = rx.try_iter().collect();
    assert!(
        !before.iter().any(|l| l.starts_with("pinbook: gRPC on")),
        "the signal was sent after startup, so this tests nothing: {before:?}"
    );
    let out = child.wait_with_output().expect("the server's output");
    assert!(
        out.status.success(),
        "{}; stderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("shutting down"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_removed_symbol_stays_removed_when_a_looping_feed_restarts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("day.itch");
    let file = file.to_str().expect("a UTF-8 path");
    ok(
        &Command::new(BIN)
            .args(["gen", file, "-n", "5000", "-k", "4", "--seed", "5"])
            .output()
            .expect("run gen"),
        "gen",
    );
    let server = Server::start_with(&[
        "--feed",
        &format!("file:{file}"),
        "--loop",
        "--file-rate",
        "20000",
    ]);
    server.wait_serving(&[]);
    let restarts = || -> u64 {
        let stats = json_lines(&ok(&server.admin(&["stats", "--json"]), "stats"));
        stats[0]["shards"][0]["restarts"].as_u64().unwrap_or(0)
    };
    let published = |symbol: &str| -> bool {
        let list = json_lines(&ok(&server.admin(&["symbols", "list", "--json"]), "list"));
        list[0]["symbols"]
            .as_array()
            .expect("symbols")
            .iter()
            .any(|s| s["symbol"] == symbol && s["state"] == "published")
    };
    ok(&server.admin(&["symbols", "remove", "MSFT"]), "remove MSFT");
    assert!(!published("MSFT"));
    let before = restarts();
    eventually("the file looped twice", Duration::from_secs(30), || {
        let now = restarts();
        (now >= before + 2)
            .then_some(())
            .ok_or_else(|| format!("restarts {now}, was {before}"))
    });
    assert!(
        !published("MSFT"),
        "the operator's remove outlives the restart"
    );
    assert!(published("AAPL"), "the others are published again");
    let out = server.run(&["book", "MSFT"]);
    assert!(!out.status.success(), "MSFT is not served");
    assert!(
        text(&out.stderr).contains("not published"),
        "{}",
        text(&out.stderr)
    );
}

/// `file` with two bytes `0xFFFF` inserted before the frame at about the middle: a length
/// prefix that claims 64 KB and, unchecked, desynchronises everything after it.
fn damaged_copy(file: &Path, damaged: &Path) {
    let bytes = std::fs::read(file).expect("read the generated file");
    let mut at = 0;
    while at < bytes.len() / 2 {
        at += 2 + usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
    }
    let spliced = [&bytes[..at], &[0xFF, 0xFF][..], &bytes[at..]].concat();
    std::fs::write(damaged, spliced).expect("write the damaged file");
}

#[test]
fn a_framing_loss_in_a_file_flags_every_book_and_resyncs_subscribers() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let good = dir.path().join("day.itch");
    let bad = dir.path().join("damaged.itch");
    let messages = 20_000;
    ok(
        &Command::new(BIN)
            .args(["gen", path(&good), "-n", &messages.to_string(), "-k", "4"])
            .args(["--seed", "8"])
            .output()
            .expect("run gen"),
        "gen",
    );
    damaged_copy(&good, &bad);
    // slow enough that a subscriber is there before the damage, half way through
    let server = Server::start_with(&[
        "--feed",
        &format!("file:{}", path(&bad)),
        "--file-rate",
        "5000",
    ]);
    server.wait_serving(&[]);
    let mut subscriber = server
        .command(&["subscribe", "AAPL", "--json", "--depth", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start subscribe");
    let stdout = subscriber.stdout.take().expect("its stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stats = || {
        let stats = json_lines(&ok(&server.admin(&["stats", "--json"]), "stats"));
        stats[0]["shards"][0].clone()
    };
    eventually(
        "the shard took the whole file",
        Duration::from_secs(30),
        || {
            let s = stats();
            (s["messages"].as_u64() == Some(messages))
                .then_some(())
                .ok_or_else(|| format!("{s}"))
        },
    );
    let s = stats();
    assert_eq!(s["framing_lost"], 1, "{s}");
    assert_eq!(s["gaps"], 1, "{s}");
    assert_eq!(
        s["parse_errors"], 0,
        "nothing misframed reached the parser: {s}"
    );

    // every book is flagged, and the subscriber was told
    let list = json_lines(&ok(&server.admin(&["symbols", "list", "--json"]), "list"));
    for symbol in list[0]["symbols"].as_array().expect("symbols") {
        assert_eq!(symbol["stale"], true, "{symbol}");
    }
    let mut resync = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while resync.is_none() && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let update: serde_json::Value = serde_json::from_str(&line).expect("JSON");
            if update["type"] == "resync" {
                resync = Some(update);
            }
        }
    }
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    let resync = resync.expect("the subscriber got a resync");
    assert_eq!(resync["reason"], "RESYNC_REASON_UPSTREAM_GAP", "{resync}");

    // the two inserted bytes hid nothing: once framing was found again, the books are those
    // of the undamaged file, and say they may not be
    for symbol in ["AAPL", "MSFT"] {
        let served = json_lines(&ok(
            &server.run(&["book", symbol, "--depth", "1000", "--json"]),
            "book",
        ));
        let offline = json_lines(&ok(
            &Command::new(BIN)
                .args(["replay", path(&good), "--json", "--depth", "1000"])
                .args(["--symbols", symbol])
                .output()
                .expect("run replay"),
            "replay",
        ));
        assert_eq!(served[0]["stale"], true, "{}", served[0]);
        assert_eq!(served[0]["bids"], offline[0]["books"][symbol]["bids"]);
        assert_eq!(served[0]["asks"], offline[0]["books"][symbol]["asks"]);
    }
}

#[test]
fn config_set_changes_a_setting_live_and_says_when_it_cannot() {
    let server = Server::start();
    server.wait_serving(&[]);
    let said = ok(
        &server.admin(&["config", "set", "limits.max_subscribers", "1"]),
        "config set",
    );
    assert_eq!(
        said,
        "limits.max_subscribers = 1 (was 10000); takes effect for subscriptions opened from now \
         on (open ones stay)\n"
    );
    let shown = ok(&server.admin(&["config", "get"]), "config get");
    assert!(shown.contains("[limits]\nmax_subscribers = 1\n"), "{shown}");
    // the server logs who changed what
    eventually("the change is logged", Duration::from_secs(10), || {
        let log = server.log();
        if log.contains("configuration changed") && log.contains("limits.max_subscribers") {
            Ok(())
        } else {
            Err(log)
        }
    });
    let out = server.admin(&["config", "set", "grpc_addr", "\"0.0.0.0:1\""]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("FAILED_PRECONDITION: grpc_addr cannot change while serving")
            && err.contains("restart"),
        "{err}"
    );
    let out = server.admin(&["config", "set", "subscribers.queue", "-3"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("INVALID_ARGUMENT"),
        "{}",
        text(&out.stderr)
    );
    // without the admin token
    let out = server.run(&["config", "set", "limits.max_subscribers", "5"]);
    assert!(!out.status.success());
}
