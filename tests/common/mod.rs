//! The harness of the tests that run a real `pinbook serve`: the server on 127.0.0.1:0 with
//! its own state directory, client commands of the binary against it, and waiting for a
//! condition instead of sleeping.
//!
//! Each file in `tests/` is its own crate and uses only part of this: hence the
//! `#[allow(dead_code)]` on what one of them does not call.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pinbook");

/// The admin token the server is started with.
pub const TOKEN: &str = "test-token";

/// How long the server may take to print its addresses, and its books to warm up: generous,
/// as the tests run side by side on a loaded 2-core machine.
pub const STARTUP: Duration = Duration::from_secs(30);

/// A `pinbook serve` child on 127.0.0.1:0, killed and reaped when dropped if it still runs.
pub struct Server {
    child: Child,
    /// The gRPC address (`127.0.0.1:PORT`).
    pub grpc: String,
    /// The metrics address (`127.0.0.1:PORT`), what Prometheus calls the instance.
    pub metrics: String,
    state: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    /// The server on its simulator: 20 symbols, 20 k messages/s.
    #[allow(dead_code)]
    pub fn start() -> Server {
        Self::start_with(&["--sim-rate", "20000", "--sim-symbols", "20"])
    }

    /// The server with `extra` arguments (listening on 127.0.0.1:0 unless they say where),
    /// once it printed its gRPC and metrics addresses.
    pub fn start_with(extra: &[&str]) -> Server {
        Self::start_as(extra, Some(TOKEN)).0
    }

    /// The server with `extra` arguments and `admin_token` in its environment (none: it
    /// generates one); also every line it printed to stdout until it printed both addresses
    /// (it keeps being drained after).
    pub fn start_as(extra: &[&str], admin_token: Option<&str>) -> (Server, Vec<String>) {
        Self::spawn("serve", extra, admin_token)
    }

    /// `pinbook gateway` with `extra` arguments, as [`Server::start_with`] starts `serve`.
    #[allow(dead_code)]
    pub fn start_gateway(extra: &[&str]) -> Server {
        Self::spawn("gateway", extra, Some(TOKEN)).0
    }

    fn spawn(subcommand: &str, extra: &[&str], admin_token: Option<&str>) -> (Server, Vec<String>) {
        let state = tempfile::tempdir().expect("a temporary state directory");
        let log = std::fs::File::create(state.path().join("serve.log")).expect("a log file");
        let mut command = Command::new(BIN);
        command.arg(subcommand);
        for flag in ["--grpc-addr", "--metrics-addr"] {
            if !extra.contains(&flag) {
                command.args([flag, "127.0.0.1:0"]);
            }
        }
        command
            .args(extra)
            .env("XDG_STATE_HOME", state.path())
            .env_remove("PINBOOK_ADDR")
            .env_remove("PINBOOK_ADMIN_TOKEN")
            .env_remove("PINBOOK_INSECURE")
            .env_remove("PINBOOK_TLS_CERT")
            .env_remove("PINBOOK_TLS_KEY")
            .env_remove("PINBOOK_TLS_CLIENT_CA")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(token) = admin_token {
            command.env("PINBOOK_ADMIN_TOKEN", token);
        }
        let child = command.spawn().expect("start pinbook serve");
        let mut server = Server {
            child,
            grpc: String::new(),
            metrics: String::new(),
            state,
        };
        let stdout = server.child.stdout.take().expect("the server's stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // keeps draining stdout so the server never blocks on it
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut printed = Vec::new();
        let deadline = Instant::now() + STARTUP;
        while server.grpc.is_empty() || server.metrics.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                panic!(
                    "no `pinbook: gRPC on ADDR` and `pinbook: metrics on URL` lines within \
                     {STARTUP:?}; server log:\n{}",
                    server.log()
                );
            };
            if let Some(rest) = line.strip_prefix("pinbook: gRPC on ") {
                server.grpc = rest.split_whitespace().next().unwrap_or("").to_owned();
            } else if let Some(rest) = line.strip_prefix("pinbook: metrics on http://") {
                server.metrics = rest.strip_suffix("/metrics").unwrap_or(rest).to_owned();
            }
            printed.push(line);
        }
        (server, printed)
    }

    /// The server's state directory (its `XDG_STATE_HOME`, and the clients').
    #[allow(dead_code)]
    pub fn state(&self) -> &Path {
        self.state.path()
    }

    /// The end of the server's log (its stderr), for failure messages.
    pub fn log(&self) -> String {
        tail(&self.state.path().join("serve.log"))
    }

    /// The server's process id.
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's exit status if it exited.
    #[allow(dead_code)]
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("the server's status")
    }

    /// A client command of the binary against this server, without any token or address
    /// from the test's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .args(["--addr", &self.grpc])
            .env_remove("PINBOOK_ADMIN_TOKEN")
            .env_remove("PINBOOK_BOOK_TOKEN")
            .env_remove("PINBOOK_ADDR")
            .env_remove("PINBOOK_TLS_CA")
            .env_remove("PINBOOK_CLIENT_CERT")
            .env_remove("PINBOOK_CLIENT_KEY")
            .env_remove("PINBOOK_TLS_SERVER_NAME")
            .env("XDG_STATE_HOME", self.state.path());
        command
    }

    /// Runs a client command to its end.
    #[allow(dead_code)]
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run the pinbook binary")
    }

    /// Runs a client command with the admin token.
    #[allow(dead_code)]
    pub fn admin(&self, args: &[&str]) -> Output {
        self.command(args)
            .env("PINBOOK_ADMIN_TOKEN", TOKEN)
            .output()
            .expect("run the pinbook binary")
    }

    /// Waits until `pinbook book AAPL`, with `env` added, answers (the server is UNAVAILABLE
    /// while its books warm up).
    #[allow(dead_code)]
    pub fn wait_serving(&self, env: &[(&str, &str)]) {
        eventually("`pinbook book AAPL` answers", STARTUP, || {
            let out = self
                .command(&["book", "AAPL"])
                .envs(env.iter().copied())
                .output()
                .expect("run the pinbook binary");
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{}\nserver log:\n{}",
                    text(&out.stderr),
                    self.log()
                ))
            }
        });
    }
}

/// Writes a generated day of `messages` messages for 3 symbols (seed 11) into `dir`; returns
/// its path.
#[allow(dead_code)]
pub fn generated_day(dir: &Path, messages: u64) -> String {
    let file = dir.join("day.itch");
    let file = file.to_str().expect("a UTF-8 path").to_owned();
    ok(
        &Command::new(BIN)
            .args(["gen", &file, "-n", &messages.to_string(), "-k", "3"])
            .args(["--seed", "11"])
            .output()
            .expect("run gen"),
        "gen",
    );
    file
}

/// A free UDP address on 127.0.0.1: a port bound, read and released for the server to bind.
#[allow(dead_code)]
pub fn free_udp_addr() -> String {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port();
    format!("127.0.0.1:{port}")
}

/// Counter `name` of the server's only shard (GetStats, `stats --json`).
#[allow(dead_code)]
pub fn shard_counter(server: &Server, name: &str) -> u64 {
    let stats = json_lines(&ok(&server.admin(&["stats", "--json"]), "stats"));
    stats[0]["shards"][0][name].as_u64().unwrap_or(0)
}

/// Calls `check` until it returns `Ok`, pausing a little longer each time; panics with `what`
/// and the last error if it still fails after `within`.
pub fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(20);
    loop {
        let why = match check() {
            Ok(()) => return,
            Err(why) => why,
        };
        assert!(
            Instant::now() < deadline,
            "not so after {within:?}: {what}; the last try: {why}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// The last 40 lines of a log file, or nothing if it cannot be read.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stdout of a command that must have succeeded; `what` names it in the failure.
#[allow(dead_code)]
pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// One JSON value per line of `stdout` (the `--json` output of the client commands).
#[allow(dead_code)]
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect()
}

/// Checks that the server's books of `symbols` (GetBook, depth 1000) are exactly what an
/// offline `pinbook replay FILE` builds, and not stale.
#[allow(dead_code)]
pub fn assert_books_match_replay(server: &Server, file: &str, symbols: &[&str]) {
    for &symbol in symbols {
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
        assert_eq!(served[0]["stale"], false, "{symbol} is not stale");
    }
}

/// Checks the contract on `subscribe --json` output: per symbol, a snapshot with seq 1 first,
/// then seq + 1 each time, across resyncs too. Returns updates per symbol.
#[allow(dead_code)]
pub fn check_stream(updates: &[serde_json::Value]) -> HashMap<String, usize> {
    let mut last: HashMap<String, (u64, bool)> = HashMap::new();
    let mut counts = HashMap::new();
    for u in updates {
        if u.get("heartbeat").is_some() {
            continue;
        }
        let symbol = u["symbol"].as_str().expect("a symbol").to_owned();
        *counts.entry(symbol.clone()).or_default() += 1;
        let kind = u["type"].as_str().expect("a type");
        if kind == "resync" {
            last.entry(symbol).and_modify(|e| e.1 = true);
            continue;
        }
        let seq = u["seq"].as_u64().expect("a seq");
        match last.get(&symbol) {
            None => {
                assert_eq!(kind, "snapshot", "first update of {symbol}: {u}");
                assert_eq!(seq, 1, "first update of {symbol}: {u}");
            }
            Some(&(prev, true)) => {
                assert_eq!(kind, "snapshot", "after a resync of {symbol}: {u}");
                assert_eq!(seq, prev + 1, "{symbol} seq {seq} after {prev} (a resync)");
            }
            Some(&(prev, false)) => assert_eq!(seq, prev + 1, "{symbol}: {u}"),
        }
        last.insert(symbol, (seq, false));
    }
    counts
}
