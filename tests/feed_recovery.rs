//! Feed resilience end to end, on loopback: `pinbook serve` reading MoldUDP64 from two lines
//! (A and B) and a request server, fed by `pinbook publish` failing on purpose (seeded drops in
//! bursts, reordering, duplicates). The served books must equal an offline replay of the file
//! whenever some line or the request server had every message, and otherwise be flagged stale
//! with the loss counted exactly.

mod common;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::{
    BIN, Server, assert_books_match_replay, eventually, free_udp_addr, generated_day, json_lines,
    ok, shard_counter, text,
};

/// Messages in the generated file; at RATE the feed runs two seconds.
const MESSAGES: u64 = 40_000;
const RATE: &str = "20000";
const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "NVDA"];

/// One run at a time: each is a server and a publisher, and the exact counts below need the
/// kernel never to drop a datagram because a loaded 2-core machine starved the receiver.
static SERIAL: Mutex<()> = Mutex::new(());

/// What one run did.
struct Run {
    _serial: std::sync::MutexGuard<'static, ()>,
    _dir: tempfile::TempDir,
    file: String,
    server: Server,
    /// `pinbook publish`'s summary.
    published: String,
}

impl Run {
    /// Generates the day, starts the server on two lines (with `serve` added to its
    /// arguments), publishes the file on both with `faults`, and waits until the shard has
    /// accounted for every message (taken, or lost in a gap).
    fn go(serve: &[&str], faults: &[&str]) -> Run {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = generated_day(dir.path(), MESSAGES);
        let (a, b) = (free_udp_addr(), free_udp_addr());
        let feed = format!("udp:{a},udp:{b}");
        let mut args = vec!["--feed", feed.as_str()];
        args.extend_from_slice(serve);
        let server = Server::start_with(&args);
        let lines = format!("{a},{b}");
        let out = Command::new(BIN)
            .args(["publish", &file, "--udp", &lines, "--rate", RATE])
            .args(faults)
            .stdout(Stdio::null())
            .output()
            .expect("run pinbook publish");
        let published = ok_stderr(&out);
        let run = Run {
            _serial: serial,
            _dir: dir,
            file,
            server,
            published,
        };
        eventually(
            "the shard accounted for every message",
            Duration::from_secs(20),
            || match (run.shard("messages"), run.shard("messages_lost")) {
                (m, l) if m + l == MESSAGES => Ok(()),
                (m, l) => Err(format!("{m} messages, {l} lost")),
            },
        );
        run
    }

    /// Counter `name` of the only shard (GetStats).
    fn shard(&self, name: &str) -> u64 {
        shard_counter(&self.server, name)
    }

    /// `(packets, messages)` the publisher dropped on both lines.
    fn dropped_on_both(&self) -> (u64, u64) {
        let line = self
            .published
            .lines()
            .find(|l| l.starts_with("lines A and B both dropped"))
            .unwrap_or_else(|| panic!("no shared-drop line in:\n{}", self.published));
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        (numbers[0], numbers[1])
    }

    /// Packets the publisher dropped on line `name` ("A" or "B").
    fn dropped_on(&self, name: &str) -> u64 {
        let prefix = format!("line {name}: ");
        self.published
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no line {name} in:\n{}", self.published))
    }
}

fn ok_stderr(out: &std::process::Output) -> String {
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "publish failed: {stderr}");
    stderr
}

#[test]
fn two_lossy_reordering_duplicating_lines_give_the_lossless_books() {
    // 1 % and 5 % of the packets lost in bursts of 50, independently (these seeds never lose
    // the same packet on both lines), and 1 % reordered and duplicated on each
    let run = Run::go(
        &[],
        &[
            "--drop",
            "0.01,0.05",
            "--drop-burst",
            "50",
            "--reorder",
            "0.01",
            "--duplicate",
            "0.01",
            "--seed",
            "7,8",
        ],
    );
    assert_eq!(run.dropped_on_both(), (0, 0), "{}", run.published);
    assert!(run.dropped_on("A") > 0 && run.dropped_on("B") > 0);
    assert_books_match_replay(&run.server, &run.file, &SYMBOLS);
    for quiet in ["gaps", "messages_lost", "restarts"] {
        assert_eq!(run.shard(quiet), 0, "{quiet}; log:\n{}", run.server.log());
    }
    // both lines lost messages, and each supplied some first
    for line in ["a", "b"] {
        assert!(run.shard(&format!("line_{line}_missed")) > 0, "line {line}");
        assert!(run.shard(&format!("line_{line}_first")) > 0, "line {line}");
    }
    assert_eq!(
        run.shard("line_a_first") + run.shard("line_b_first"),
        MESSAGES
    );
}

#[test]
fn losses_on_both_lines_are_recovered_from_the_request_server() {
    let server = free_udp_addr();
    let retransmit = ["--retransmit", server.as_str()];
    // the same seed on both lines: they lose the same packets
    let run = Run::go(
        &retransmit,
        &[
            "--drop",
            "0.02",
            "--drop-burst",
            "50",
            "--seed",
            "5,5",
            "--retransmit-listen",
            &server,
            "--linger",
            "3",
        ],
    );
    let (packets, messages) = run.dropped_on_both();
    assert!(packets > 0, "{}", run.published);
    assert_books_match_replay(&run.server, &run.file, &SYMBOLS);
    for quiet in [
        "gaps",
        "messages_lost",
        "given_up_timeout",
        "given_up_hold_full",
    ] {
        assert_eq!(run.shard(quiet), 0, "{quiet}; log:\n{}", run.server.log());
    }
    assert_eq!(
        run.shard("messages_recovered"),
        messages,
        "exactly what both lines lost came from the request server"
    );
    assert!(run.shard("retransmit_requests") > 0);
    assert!(
        run.published.contains("retransmission: "),
        "{}",
        run.published
    );
}

#[test]
fn with_the_request_server_down_losses_are_counted_gaps_and_the_books_flagged() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("pinbook.toml");
    std::fs::write(
        &config,
        "[udp]\nretransmit_timeout_ms = 100\nretransmit_retry_ms = 10\n",
    )
    .expect("write the config");
    // nobody answers on this port
    let server = free_udp_addr();
    let run = Run::go(
        &[
            "--config",
            config.to_str().expect("a UTF-8 path"),
            "--retransmit",
            &server,
        ],
        &["--drop", "0.02", "--drop-burst", "50", "--seed", "5,5"],
    );
    let (_, lost) = run.dropped_on_both();
    assert!(lost > 0, "{}", run.published);
    assert_eq!(
        run.shard("messages_lost"),
        lost,
        "exactly the shared losses"
    );
    assert_eq!(run.shard("messages"), MESSAGES - lost, "and nothing else");
    assert!(run.shard("gaps") > 0);
    assert!(run.shard("given_up_timeout") > 0);
    assert!(run.shard("retransmit_requests") > run.shard("given_up_timeout"));
    assert_eq!(run.shard("messages_recovered"), 0);
    for symbol in SYMBOLS {
        let book = json_lines(&ok(&run.server.run(&["book", symbol, "--json"]), "book"));
        assert_eq!(book[0]["stale"], true, "{symbol} is flagged stale");
    }
}
