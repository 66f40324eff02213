//! Soak (issue 17): many subscribers against a real `pinbook serve` on its simulator at the
//! default rate (100 k msg/s, 50 symbols), for minutes, over loopback.
//!
//! Of every ten subscribers, eight read everything and check the contract as they go (seq
//! contiguity, checksums, resyncs: `controlplane::contract::Checker`): one of nine every change
//! at depth 10, three conflated every 100 ms, three conflated every second, one top of book
//! (every change at depth 1 costs a client about 1,500 updates/s per subscriber here: a
//! thousand of them would measure this 2-core machine's client, not the server); one of nine
//! reads at about 1 % of its symbol's rate (an update every 50 ms); one subscriber in ten lives
//! in a child process that is frozen (SIGSTOP) halfway: a client that vanished without closing. Every 10 s the server's RSS, its
//! shard's message count and its open subscribers are sampled. At the end the server gets
//! SIGTERM with every stream still open: each must end UNAVAILABLE "shutting down" within
//! `shutdown_ms`, and the process exit 0.
//!
//! `cargo bench --bench soak`: 1,000 subscribers for 10 minutes (`SOAK_SUBSCRIBERS`,
//! `SOAK_SECONDS` change them). Under `cargo test --benches` (CI): 100 subscribers for a
//! minute. Asserted in both: no contract violation, every open stream ended by SIGTERM as the
//! contract says, exit 0. Reported (and judged PASS/FAIL, not asserted: the machine is shared):
//! RSS first minute against last, the data plane's message rate against its rate before the
//! subscribers came, how the slow and the vanished subscribers were dealt with.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use controlplane::contract::Checker;
use controlplane::pb::admin_service_client::AdminServiceClient;
use controlplane::pb::book_service_client::BookServiceClient;
use controlplane::pb::{self, book_update::Update};
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_pinbook");
const TOKEN: &str = "soak-admin-token";
/// The child process that holds the vanishing subscribers reads its orders here.
const VANISH_ENV: &str = "PINBOOK_SOAK_VANISH";
const SHUTDOWN_MS: u64 = 5_000;
const IDLE_TIMEOUT_MS: u64 = 10_000;
const SAMPLE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Every,
    Conflated100ms,
    Conflated1s,
    Top,
    Slow,
}

/// How one subscriber's stream went.
#[derive(Debug, Default)]
struct Ended {
    updates: u64,
    violations: Vec<String>,
    resyncs: BTreeMap<i32, u64>,
    /// The code and message it ended with, and when.
    status: Option<(tonic::Code, String, Instant)>,
}

fn main() {
    if let Ok(orders) = std::env::var(VANISH_ENV) {
        vanishing_client(&orders);
        return;
    }
    common::print_machine();
    let full = common::full_run();
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seconds = env("SOAK_SECONDS", if full { 600 } else { 60 });
    let subscribers = env("SOAK_SUBSCRIBERS", if full { 1000 } else { 100 }) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the client runtime");
    runtime.block_on(soak(Duration::from_secs(seconds), subscribers));
}

/// A `pinbook serve` child and where it listens.
struct Served {
    child: Child,
    grpc: String,
    metrics: String,
    _dir: tempfile::TempDir,
}

fn serve() -> Served {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("soak.toml");
    std::fs::write(
        &config,
        format!(
            "shutdown_ms = {SHUTDOWN_MS}\n[limits]\nmax_subscribers = 100000\n\
             max_subscribers_per_client = 100000\nmax_streams_per_connection = 1000\n\
             calls_per_second = 100000\nidle_timeout_ms = {IDLE_TIMEOUT_MS}\n"
        ),
    )
    .expect("write the config");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(&config)
        .env("PINBOOK_ADMIN_TOKEN", TOKEN)
        .env("XDG_STATE_HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pinbook serve");
    let stdout = child.stdout.take().expect("its stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut grpc, mut metrics) = (String::new(), String::new());
    while grpc.is_empty() || metrics.is_empty() {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("pinbook serve prints its addresses");
        if let Some(rest) = line.strip_prefix("pinbook: gRPC on ") {
            grpc = rest.split_whitespace().next().unwrap_or("").to_owned();
        } else if let Some(rest) = line.strip_prefix("pinbook: metrics on http://") {
            metrics = rest.trim_end_matches("/metrics").to_owned();
        }
    }
    Served {
        child,
        grpc,
        metrics,
        _dir: dir,
    }
}

fn admin_request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("metadata"),
    );
    request
}

/// A connection with the windows `pinbook subscribe` uses (see `STREAM_WINDOW` in
/// src/cli/client.rs): with hyper's defaults, a reader that falls behind leaves more small
/// frames unread than h2 allows, and h2 closes the whole connection with every stream on it.
async fn connect(url: &str) -> Channel {
    Channel::from_shared(url.to_owned())
        .expect("url")
        .initial_stream_window_size(256 << 10)
        .initial_connection_window_size(4 << 20)
        .connect()
        .await
        .expect("connect")
}

/// The shard's messages so far.
async fn messages(admin: &mut AdminServiceClient<Channel>) -> u64 {
    admin
        .get_stats(admin_request(pb::GetStatsRequest {}))
        .await
        .expect("GetStats")
        .into_inner()
        .shards
        .iter()
        .map(|s| s.messages)
        .sum()
}

/// The server's resident memory, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The `pinbook_subscribers` gauge.
fn open_subscribers(metrics: &str) -> u64 {
    let agent = ureq::Agent::new_with_defaults();
    agent
        .get(&format!("http://{metrics}/metrics"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("pinbook_subscribers "))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0, |v| v as u64)
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

async fn soak(length: Duration, subscribers: usize) {
    let mut served = serve();
    let pid = served.child.id();
    let url = format!("http://{}", served.grpc);
    let mut admin = AdminServiceClient::new(connect(&url).await);
    let mut books = BookServiceClient::new(connect(&url).await);
    let warm = Instant::now();
    while books
        .get_book(pb::GetBookRequest {
            symbol: "AAPL".into(),
            depth: 1,
        })
        .await
        .is_err()
    {
        assert!(warm.elapsed() < Duration::from_secs(30), "never warm");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut symbols: Vec<String> = admin
        .list_symbols(admin_request(pb::ListSymbolsRequest {}))
        .await
        .expect("ListSymbols")
        .into_inner()
        .symbols
        .into_iter()
        .filter(|s| s.state == pb::SymbolState::Published as i32)
        .map(|s| s.symbol)
        .collect();
    symbols.sort();

    // the data plane's rate before anyone subscribes
    let (m0, t0) = (messages(&mut admin).await, Instant::now());
    tokio::time::sleep(SAMPLE).await;
    let baseline = (messages(&mut admin).await - m0) as f64 / t0.elapsed().as_secs_f64();

    let vanishing = subscribers / 10;
    let mut vanished_child = Command::new(std::env::current_exe().expect("this bench"))
        .env(
            VANISH_ENV,
            format!("{url}|{vanishing}|{}", symbols.join(",")),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the vanishing client");
    let mut ready = String::new();
    BufReader::new(vanished_child.stdout.take().expect("its stdout"))
        .read_line(&mut ready)
        .expect("the vanishing client says it is ready");

    let started = Instant::now();
    let updates = Arc::new(AtomicU64::new(0));
    let stopping = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    // each kind on connections of its own, 50 subscribers each, as separate clients would be
    let mut channels: BTreeMap<Kind, (Channel, usize)> = BTreeMap::new();
    let own = subscribers - vanishing;
    for i in 0..own {
        let kind = match i % 9 {
            0 => Kind::Every,
            1..=3 => Kind::Conflated100ms,
            4..=6 => Kind::Conflated1s,
            7 => Kind::Top,
            _ => Kind::Slow,
        };
        let symbol = symbols[i % symbols.len()].clone();
        let (mode, depth, interval) = match kind {
            Kind::Every | Kind::Slow => (pb::Mode::EveryChange, 10, 0),
            Kind::Conflated100ms => (pb::Mode::Conflated, 10, 100),
            Kind::Conflated1s => (pb::Mode::Conflated, 10, 1000),
            Kind::Top => (pb::Mode::TopOfBook, 1, 0),
        };
        // a slow reader is a client of its own: beside others on one connection, the frames it
        // leaves unread count against their connection's h2 budget too
        let per_connection = if kind == Kind::Slow { 1 } else { 50 };
        let full_or_none = channels
            .get(&kind)
            .is_none_or(|(_, n)| *n >= per_connection);
        if full_or_none {
            channels.insert(kind, (connect(&url).await, 0));
        }
        let (channel, on_it) = channels.get_mut(&kind).expect("a channel");
        *on_it += 1;
        let mut client = BookServiceClient::new(channel.clone());
        let mut stream = client
            .subscribe(pb::SubscribeRequest {
                symbols: vec![symbol.clone()],
                depth,
                mode: mode as i32,
                interval_ms: interval,
                stream: pb::Stream::Levels as i32,
            })
            .await
            .expect("subscribe")
            .into_inner();
        let total = Arc::clone(&updates);
        let stopping = Arc::clone(&stopping);
        tasks.push((
            kind,
            tokio::spawn(async move {
                let mut checker = Checker::new(&[symbol], if kind == Kind::Top { 1 } else { 10 });
                let mut ended = Ended::default();
                loop {
                    match stream.message().await {
                        Ok(Some(update)) => {
                            ended.updates += 1;
                            total.fetch_add(1, Ordering::Relaxed);
                            let found = match &update.update {
                                Some(Update::Snapshot(s)) => checker.snapshot(s),
                                Some(Update::Delta(d)) => checker.delta(d),
                                Some(Update::Resync(r)) => {
                                    *ended.resyncs.entry(r.reason).or_default() += 1;
                                    checker.resync(r)
                                }
                                _ => Vec::new(),
                            };
                            ended.violations.extend(found);
                            // at SIGTERM a slow reader drains what it holds, to see how it ended
                            if kind == Kind::Slow && !stopping.load(Ordering::Relaxed) {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                        Ok(None) => return ended,
                        Err(status) => {
                            ended.status =
                                Some((status.code(), status.message().to_owned(), Instant::now()));
                            return ended;
                        }
                    }
                }
            }),
        ));
    }

    // the soak: samples every 10 s; the vanishing client is frozen halfway
    let mut rss = Vec::new();
    let mut rates = Vec::new();
    let mut open = Vec::new();
    let mut frozen: Option<(Instant, u64)> = None;
    let mut reaped: Option<Duration> = None;
    let mut last = (messages(&mut admin).await, Instant::now());
    while started.elapsed() < length {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if frozen.is_none() && started.elapsed() >= length / 2 {
            frozen = Some((Instant::now(), open_subscribers(&served.metrics)));
            signal(vanished_child.id(), "STOP");
        }
        if let (Some((at, before)), None) = (frozen, reaped)
            && open_subscribers(&served.metrics) + vanishing as u64 <= before
        {
            reaped = Some(at.elapsed());
        }
        if last.1.elapsed() >= SAMPLE {
            let now = (messages(&mut admin).await, Instant::now());
            rates.push((now.0 - last.0) as f64 / (now.1 - last.1).as_secs_f64());
            rss.push(rss_kib(pid));
            open.push(open_subscribers(&served.metrics));
            println!(
                "  {:>4.0} s: RSS {:>7} KiB, {:>9.0} msg/s, {:>5} subscribers open, {} updates received",
                started.elapsed().as_secs_f64(),
                rss.last().copied().unwrap_or(0),
                rates.last().copied().unwrap_or(0.0),
                open.last().copied().unwrap_or(0),
                updates.load(Ordering::Relaxed)
            );
            last = now;
        }
    }

    // SIGTERM with everything still open
    let open_at_term = open_subscribers(&served.metrics);
    stopping.store(true, Ordering::Relaxed);
    let term = Instant::now();
    signal(pid, "TERM");
    let mut by_kind: BTreeMap<Kind, Vec<Ended>> = BTreeMap::new();
    for (kind, task) in tasks {
        let ended = tokio::time::timeout(Duration::from_millis(SHUTDOWN_MS * 3), task)
            .await
            .expect("every stream ends after SIGTERM")
            .expect("a subscriber task");
        by_kind.entry(kind).or_default().push(ended);
    }
    let exit = loop {
        if let Some(status) = served.child.try_wait().expect("the server's status") {
            break status;
        }
        assert!(
            term.elapsed() < Duration::from_secs(30),
            "serve did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exited_after = term.elapsed();
    signal(vanished_child.id(), "KILL");
    let _ = vanished_child.wait();

    // the report
    println!();
    println!(
        "soak: {subscribers} subscribers ({} every change, {} conflated 100 ms, {} conflated 1 s, \
         {} top of book, {} slow, {vanishing} vanishing) for {:.0} s on the simulator's default \
         rate",
        by_kind.get(&Kind::Every).map_or(0, Vec::len),
        by_kind.get(&Kind::Conflated100ms).map_or(0, Vec::len),
        by_kind.get(&Kind::Conflated1s).map_or(0, Vec::len),
        by_kind.get(&Kind::Top).map_or(0, Vec::len),
        by_kind.get(&Kind::Slow).map_or(0, Vec::len),
        length.as_secs_f64()
    );
    let window = (60 / SAMPLE.as_secs()).max(1) as usize;
    let avg = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    let first = avg(&rss[..window.min(rss.len())]);
    let last_minute = avg(&rss[rss.len().saturating_sub(window)..]);
    let growth = last_minute / first - 1.0;
    println!(
        "  RSS: first minute {first:.0} KiB, last minute {last_minute:.0} KiB ({:+.1} %): {}",
        growth * 100.0,
        if growth.abs() <= 0.05 {
            "PASS (within 5 %)"
        } else {
            "FAIL (over 5 %)"
        }
    );
    let soaked = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    let loss = 1.0 - soaked / baseline;
    println!(
        "  data plane: {baseline:.0} msg/s before the subscribers, {soaked:.0} msg/s during the \
         soak ({:+.1} %): {}",
        -loss * 100.0,
        if loss < 0.05 {
            "PASS (loss under 5 %)"
        } else {
            "FAIL (loss 5 % or more)"
        }
    );
    let mut violations = 0;
    for (kind, ended) in &by_kind {
        let updates: u64 = ended.iter().map(|e| e.updates).sum();
        let mut resyncs: BTreeMap<i32, u64> = BTreeMap::new();
        for e in ended {
            for (reason, n) in &e.resyncs {
                *resyncs.entry(*reason).or_default() += n;
            }
        }
        let mut endings: BTreeMap<String, usize> = BTreeMap::new();
        for e in ended {
            let key = match &e.status {
                Some((code, message, at)) if *at < term => {
                    format!("{code:?} before SIGTERM: {}", first_words(message))
                }
                Some((code, message, _)) => format!("{code:?}: {}", first_words(message)),
                None => "ended without a status".into(),
            };
            *endings.entry(key).or_default() += 1;
        }
        let v: usize = ended.iter().map(|e| e.violations.len()).sum();
        violations += v;
        println!(
            "  {kind:?}: {} subscribers, {updates} updates, {v} contract violations, resyncs by \
             reason {resyncs:?}, ended {endings:?}",
            ended.len()
        );
        if let Some(e) = ended.iter().find(|e| !e.violations.is_empty()) {
            println!("    first violation: {}", e.violations[0]);
        }
    }
    match reaped {
        Some(after) => println!(
            "  vanished: {vanishing} frozen subscribers reaped {:.1} s after SIGSTOP (idle \
             timeout {} s)",
            after.as_secs_f64(),
            IDLE_TIMEOUT_MS / 1000
        ),
        None => println!("  vanished: {vanishing} frozen subscribers NOT reaped by the end"),
    }
    // a slow reader reads its ending late: it is judged by what it ended with, below
    let at_term: Vec<&Ended> = by_kind
        .iter()
        .filter(|(kind, _)| **kind != Kind::Slow)
        .flat_map(|(_, ended)| ended)
        .filter(|e| e.status.as_ref().is_none_or(|(_, _, at)| *at >= term))
        .collect();
    let slow_by_contract = by_kind.get(&Kind::Slow).map_or(0, |slow| {
        slow.iter()
            .filter(|e| {
                e.status.as_ref().is_some_and(|(code, message, _)| {
                    (*code == tonic::Code::ResourceExhausted && message.contains("slow"))
                        || (*code == tonic::Code::Unavailable && message.contains("shutting down"))
                })
            })
            .count()
    });
    let slow = by_kind.get(&Kind::Slow).map_or(0, Vec::len);
    println!(
        "  slow: {slow_by_contract} of {slow} ended as the contract says (RESOURCE_EXHAUSTED as too \
         slow, or UNAVAILABLE at shutdown)"
    );
    let shut_down = at_term
        .iter()
        .filter(|e| {
            e.status.as_ref().is_some_and(|(code, message, at)| {
                *code == tonic::Code::Unavailable
                    && message.contains("shutting down")
                    && at.duration_since(term) <= Duration::from_millis(SHUTDOWN_MS + 1_000)
            })
        })
        .count();
    println!(
        "  SIGTERM with {open_at_term} streams open: {shut_down} of the {} this client held ended \
         UNAVAILABLE \"shutting down\" within shutdown_ms + 1 s; serve exited {exit} after {:.2} s",
        at_term.len(),
        exited_after.as_secs_f64()
    );
    assert_eq!(violations, 0, "contract violations");
    assert_eq!(
        shut_down,
        at_term.len(),
        "streams not ended as the contract says"
    );
    assert_eq!(
        slow_by_contract, slow,
        "slow subscribers not ended as the contract says"
    );
    assert!(exit.success(), "serve exited {exit}");
}

fn first_words(message: &str) -> String {
    message.chars().take(60).collect()
}

/// The child process: `count` conflated (1 s) subscriptions on one connection, their snapshots read, "ready"
/// on stdout, then reading on until the parent freezes it.
fn vanishing_client(orders: &str) {
    let mut parts = orders.split('|');
    let url = parts.next().expect("url").to_owned();
    let count: usize = parts.next().and_then(|c| c.parse().ok()).expect("a count");
    let symbols: Vec<String> = parts
        .next()
        .expect("symbols")
        .split(',')
        .map(str::to_owned)
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let channel = connect(&url).await;
        let mut streams = Vec::new();
        for i in 0..count {
            let mut stream = BookServiceClient::new(channel.clone())
                .subscribe(pb::SubscribeRequest {
                    symbols: vec![symbols[i % symbols.len()].clone()],
                    depth: 10,
                    // cheap to read, so every one is still open when the process freezes: one
                    // reader thread cannot keep up with 100 every-change streams, and those it
                    // lost would be closed as too slow before they could vanish
                    mode: pb::Mode::Conflated as i32,
                    interval_ms: 1000,
                    stream: pb::Stream::Levels as i32,
                })
                .await
                .expect("subscribe")
                .into_inner();
            let _ = stream.message().await;
            streams.push(stream);
        }
        println!("ready");
        let mut readers = Vec::new();
        for mut stream in streams {
            readers.push(tokio::spawn(async move {
                while let Ok(Some(_)) = stream.message().await {}
            }));
        }
        for reader in readers {
            let _ = reader.await;
        }
    });
}
