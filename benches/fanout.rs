//! Fan-out through NATS (issue 18): the same subscribers served by `serve` alone, then
//! through 1 and through 4 `pinbook gateway` processes reading the partition `serve`
//! publishes on a `nats-server` (JetStream on) started here, all on loopback.
//!
//! `serve` runs in this process (a shard on the second core, the control plane and the
//! publisher on the first) on a paced generated feed that stamps each message's intended
//! release time into its ITCH timestamp; deltas carry it as `exchange_ns` through NATS and the
//! gateways unchanged, so latency = a client decoded the delta − the message's intended time,
//! on this process's clock, whatever the path. Subscribers: every change at depth 10, spread
//! over ten symbols, ten per HTTP/2 connection, round-robin over the gateways. Reported:
//! p50/p99/p99.9/max, deltas received, and the data plane's rate against the paced rate (its
//! throughput loss).
//!
//! `cargo bench --bench fanout`: 100, 1,000 and 5,000 subscribers, 200 msg/s for 10 s
//! (`FANOUT_SUBSCRIBERS=100,1000`, `FANOUT_RATE`, `FANOUT_SECONDS` change them). Under
//! `cargo test --benches`: 10 subscribers, serve alone and one gateway, 2 s. Needs
//! `nats-server` (scripts/deps --test).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use controlplane::hub::Policy;
use controlplane::nats::publisher::{PublishOptions, Publisher};
use controlplane::pb::book_service_client::BookServiceClient;
use controlplane::pb::{self, book_update::Update};
use controlplane::server::{self, ServerOptions};
use dataplane::clock::now_ns;
use dataplane::runtime::DataPlane;
use dataplane::source::FeedSource;
use dataplane::topology::Topology;
use hdrhistogram::Histogram;
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_pinbook");

const SYMBOLS: [&str; 10] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "COST", "NFLX",
];

/// Deep queues: the figures are latencies, not slow-consumer resyncs.
const ROOMY: Policy = Policy {
    queue: 1 << 16,
    max_resyncs: 1_000,
    window: Duration::from_secs(1),
    stall: Duration::from_secs(30),
    blocked: Duration::from_secs(30),
};

/// How long anything may take to come up.
const WAIT: Duration = Duration::from_secs(30);

/// A child process killed when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server(dir: &std::path::Path) -> (Reaped, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (scripts/deps --test installs it)");
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Reaped(child), format!("nats://127.0.0.1:{port}"))
}

/// A gateway's configuration: the limits and subscriber policy `serve` has here ([`ROOMY`]).
fn gateway_config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("gateway.toml");
    let text = format!(
        "[subscribers]\nqueue = {}\nmax_resyncs = {}\nresync_window_ms = {}\n\
         stall_ms = {}\nblocked_ms = {}\nheartbeat_ms = 500\n\
         [limits]\nmax_subscribers = 100000\nmax_subscribers_per_client = 100000\n\
         calls_per_second = 100000\n",
        ROOMY.queue,
        ROOMY.max_resyncs,
        ROOMY.window.as_millis(),
        ROOMY.stall.as_millis(),
        ROOMY.blocked.as_millis(),
    );
    std::fs::write(&path, text).expect("write the gateway's config");
    path
}

/// A gateway process on `nats` configured by `config`; returns it and its gRPC URL.
fn gateway(nats: &str, config: &std::path::Path) -> (Reaped, String) {
    let mut child = Command::new(BIN)
        .args([
            "gateway",
            "--from",
            nats,
            "--partitions",
            "bench",
            "--config",
        ])
        .arg(config)
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env("PINBOOK_ADMIN_TOKEN", "bench")
        .env("XDG_STATE_HOME", std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pinbook gateway");
    let stdout = child.stdout.take().expect("its stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("pinbook: gRPC on ") {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(WAIT).expect("the gateway's gRPC address");
    (Reaped(child), format!("http://{addr}"))
}

struct Outcome {
    latency: Histogram<u64>,
    deltas: u64,
    /// The data plane's rate over the paced part, messages/s.
    rate: f64,
}

/// `subscribers` clients of `gateways` gateways (0: of serve itself), `messages` at `rate`.
fn run(subscribers: usize, gateways: usize, messages: u64, rate: u64) -> Outcome {
    let control = common::cores().first().map(|c| c.id);
    let data = common::cores()
        .get(1)
        .map(|c| c.id)
        .filter(|c| Some(*c) != control);
    let shard = common::shard(data, 1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            if let Some(core) = control {
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
            }
        })
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("a directory for NATS");
    let (_nats, nats) = nats_server(dir.path());
    runtime.block_on(async move {
        let topology = Arc::new(Topology::detect_or_fallback());
        let go = Arc::new(AtomicBool::new(false));
        let source: Box<dyn FeedSource> = Box::new(
            common::paced::Paced::new(messages + 1_000, rate).gated(1_000, Arc::clone(&go)),
        );
        let plane = DataPlane::start(topology, vec![shard], vec![source]).expect("shard");
        let options = ServerOptions {
            grpc_addr: "127.0.0.1:0".parse().expect("address"),
            max_depth: 1000,
            heartbeat: Duration::from_millis(500),
            policy: ROOMY,
            admin_token: "bench".into(),
            book_access: controlplane::auth::BookAccess::default(),
            tls: None,
            control_cores: control.into_iter().collect(),
            config_toml: String::new(),
            shutdown_timeout: Duration::from_secs(5),
            limits: controlplane::limits::LimitsConfig {
                max_subscribers: 100_000,
                max_subscribers_per_client: 100_000,
                calls_per_second: 100_000,
                ..Default::default()
            },
            conflation_ms: (1, 60_000),
        };
        let running = server::start(options, plane).await.expect("server");
        let publisher = Publisher::start(
            Arc::clone(&running.shared),
            PublishOptions {
                servers: vec![nats.clone()],
                partition: "bench".into(),
                instance: "bench".into(),
                snapshot_every: Duration::from_secs(1),
                heartbeat: Duration::from_millis(500),
                standby: false,
            },
        )
        .await
        .expect("publisher");
        let mut children = Vec::new();
        let mut urls = Vec::new();
        if gateways == 0 {
            urls.push(format!("http://{}", running.local_addr));
        }
        let config = gateway_config(dir.path());
        for _ in 0..gateways {
            let (child, url) = gateway(&nats, &config);
            children.push(child);
            urls.push(url);
        }
        // every target serves every symbol before the clock starts
        for url in &urls {
            let channel = Channel::from_shared(url.clone())
                .expect("url")
                .connect()
                .await
                .expect("connect");
            let mut probe = BookServiceClient::new(channel);
            let deadline = Instant::now() + WAIT;
            for symbol in SYMBOLS {
                while probe
                    .get_book(pb::GetBookRequest {
                        symbol: symbol.into(),
                        depth: 1,
                    })
                    .await
                    .is_err()
                {
                    assert!(Instant::now() < deadline, "{url} does not serve {symbol}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let mut tasks = Vec::new();
        let mut channels = Vec::new();
        for i in 0..subscribers {
            if i % 10 == 0 {
                let url = &urls[(i / 10) % urls.len()];
                channels.push(
                    Channel::from_shared(url.clone())
                        .expect("url")
                        .connect()
                        .await
                        .expect("connect"),
                );
            }
            let mut client = BookServiceClient::new(channels[i / 10].clone());
            let mut updates = client
                .subscribe(pb::SubscribeRequest {
                    symbols: vec![SYMBOLS[i % SYMBOLS.len()].into()],
                    depth: 10,
                    mode: pb::Mode::EveryChange as i32,
                    interval_ms: 0,
                    stream: pb::Stream::Levels as i32,
                })
                .await
                .expect("subscribe")
                .into_inner();
            tasks.push(tokio::spawn(async move {
                let mut h = common::histogram();
                let mut deltas = 0u64;
                while let Ok(Some(update)) = updates.message().await {
                    let Some(Update::Delta(d)) = update.update else {
                        continue;
                    };
                    deltas += 1;
                    let intended = d.timestamps.map_or(0, |t| t.exchange_ns);
                    if intended != 0 {
                        common::record_ns(&mut h, now_ns().saturating_sub(intended) as f64);
                    }
                }
                (h, deltas)
            }));
        }
        let stats = Arc::clone(&running.shared.shard_stats[0]);
        let before = stats.snapshot().messages();
        let started = Instant::now();
        go.store(true, Ordering::Release);
        while stats.snapshot().messages() < messages + 1_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        let taken = stats.snapshot().messages() - before;
        // what is on its way arrives, then every stream ends
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(children);
        publisher.stop().await;
        running.shutdown().await;
        let mut latency = common::histogram();
        let mut deltas = 0;
        for task in tasks {
            let (h, n) = task.await.expect("client");
            latency.add(&h).expect("same bounds");
            deltas += n;
        }
        Outcome {
            latency,
            deltas,
            rate: taken as f64 / elapsed.as_secs_f64(),
        }
    })
}

fn list(var: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(var)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn report() {
    let full = common::full_run();
    let rate = list("FANOUT_RATE", &[if full { 200 } else { 500 }])[0];
    let seconds = list("FANOUT_SECONDS", &[if full { 10 } else { 2 }])[0];
    let sizes = list(
        "FANOUT_SUBSCRIBERS",
        if full { &[100, 1000, 5000] } else { &[10] },
    );
    let fleets: &[usize] = if full { &[0, 1, 4] } else { &[0, 1] };
    for &n in &sizes {
        let runs: Vec<(String, Outcome)> = fleets
            .iter()
            .map(|&g| {
                let name = match g {
                    0 => "serve alone".to_owned(),
                    1 => "1 gateway".to_owned(),
                    g => format!("{g} gateways"),
                };
                (name, run(n as usize, g, rate * seconds, rate))
            })
            .collect();
        let rows: Vec<(&str, &Histogram<u64>)> =
            runs.iter().map(|(n, o)| (n.as_str(), &o.latency)).collect();
        common::print_table(
            &format!(
                "fan-out: tick → delta decoded by {n} gRPC clients (10 symbols, depth 10, every \
                 change), {rate} msg/s for {seconds} s, ns"
            ),
            "ns per delta",
            &rows,
        );
        for (name, o) in &runs {
            println!(
                "  {name}: {} deltas received; data plane {:.0} msg/s of {rate} paced ({:+.1} %)",
                o.deltas,
                o.rate,
                (o.rate / rate as f64 - 1.0) * 100.0
            );
        }
    }
}

fn main() {
    common::main(common::no_criterion, Duration::from_secs(1), report);
}
