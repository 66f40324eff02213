//! Ingest → received by gRPC clients on loopback, through the whole service: a shard pinned to
//! the second core, the control plane (event thread and tokio workers) on the first, real
//! tonic clients subscribed to AAPL (depth 10, every change).
//!
//! Latency = time a client decoded the delta − the message's *intended* injection time (the
//! paced feed stamps it into the ITCH timestamp, which deltas carry as `exchange_ns`): no
//! coordinated omission. Then 1,000 subscribers' effect on the data plane: the shard's
//! unpaced throughput with none and with 1,000 reading subscribers (10 per symbol).
//!
//! Then slow consumers (issue 11 item 6): one healthy subscriber's latency with none and with
//! 30 stalled subscribers, each of every symbol at depth 1000 on a connection of its own that
//! never reads, under the server's default queue policy, in the same run, as ratios.
//!
//! The same for the order stream (market by order): 1, 10 and 100 subscribers of AAPL's
//! orders, latency to each order event decoded, beside the level figures. (What the order
//! stream costs the data plane is in benches/runtime.rs; an unpaced feed with order
//! subscribers measures the hub's overload, not the data plane.)
//!
//! TLS cost (issue 17): the same ingest → delta latency over TLS against plaintext, with 1 and
//! 100 subscribers, as ratios (`cargo bench --bench grpc -- tls`).
//!
//! `cargo bench --bench grpc`: 10 k msg/s for 3 s with 1, 10 and 100 subscribers, then 1 with
//! 0 and 30 stalled; 1 M messages unpaced for the throughput. Under `cargo test --benches`: a
//! few thousand messages, 4 stalled. `cargo bench --bench grpc -- slow_consumers`: only the
//! slow-consumer comparison; `-- throughput`: only the throughput comparisons.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use controlplane::hub::{Hub, Policy};
use controlplane::pb::book_service_client::BookServiceClient;
use controlplane::pb::{self, book_update::Update};
use controlplane::server::{self, ServerOptions};
use dataplane::clock::now_ns;
use dataplane::runtime::DataPlane;
use dataplane::source::FeedSource;
use dataplane::topology::Topology;
use hdrhistogram::Histogram;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const SYMBOLS: [&str; 10] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "COST", "NFLX",
];

struct Outcome {
    latency: Histogram<u64>,
    elapsed: Duration,
    deltas: u64,
    /// Snapshots built for slow consumers, and subscribers closed as too slow.
    slow: (u64, u64),
}

/// The healthy subscribers' queues: deep enough never to overflow here.
const ROOMY: Policy = Policy {
    queue: 1 << 16,
    max_resyncs: 1_000,
    window: Duration::from_secs(1),
    stall: Duration::from_secs(5),
    blocked: Duration::from_secs(5),
};

/// The server's default policy (`[subscribers]`), but for a stall time longer than the run:
/// the stalled subscribers stay for the whole measurement.
const DEFAULTS: Policy = Policy {
    queue: 8192,
    max_resyncs: 3,
    window: Duration::from_secs(10),
    stall: Duration::from_secs(600),
    blocked: Duration::from_millis(100),
};

/// Runs `messages` at `rate` (0: unpaced) with `subscribers` clients; `symbol_of(i)` picks
/// client i's symbol. `stalled` more subscribers, of every symbol at depth 1000, never read.
fn run(
    messages: u64,
    rate: u64,
    (subscribers, stream): (usize, pb::Stream),
    symbol_of: fn(usize) -> &'static str,
    stalled: usize,
    policy: Policy,
    tls: bool,
) -> Outcome {
    // TLS: a CA and a server certificate for 127.0.0.1 made here; the clients trust the CA
    let pki = tls.then(|| {
        let ca = controlplane::tls::test_certs::Ca::new("bench CA");
        let issued = ca.issue(&["127.0.0.1", "localhost"]);
        (ca.pem(), issued)
    });
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
    runtime.block_on(async move {
        let topology = Arc::new(Topology::detect_or_fallback());
        // the first 1,000 messages are released at once (directory, first orders): warm-up
        let go = Arc::new(AtomicBool::new(false));
        let source: Box<dyn FeedSource> = Box::new(
            common::paced::Paced::new(messages + 1_000, rate).gated(1_000, Arc::clone(&go)),
        );
        let plane = DataPlane::start(topology, vec![shard], vec![source]).expect("shard");
        let options = ServerOptions {
            grpc_addr: "127.0.0.1:0".parse().expect("address"),
            max_depth: 1000,
            heartbeat: Duration::from_millis(500),
            policy,
            admin_token: "bench".into(),
            book_access: controlplane::auth::BookAccess::default(),
            tls: pki.as_ref().map(|(_, issued)| {
                tonic::transport::ServerTlsConfig::new()
                    .identity(Identity::from_pem(&issued.cert_pem, &issued.key_pem))
            }),
            control_cores: control.into_iter().collect(),
            config_toml: String::new(),
            shutdown_timeout: Duration::from_secs(5),
            limits: controlplane::limits::LimitsConfig::default(),
            conflation_ms: (1, 60_000),
        };
        let running = server::start(options, plane).await.expect("server");
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{}", running.local_addr);
        let ca = pki.as_ref().map(|(ca, _)| ca.clone());
        let endpoint = |url: &str| {
            let endpoint = Channel::from_shared(url.to_owned()).expect("url");
            match &ca {
                Some(ca) => endpoint
                    .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
                    .expect("client TLS"),
                None => endpoint,
            }
        };
        // wait for the books
        let probe = endpoint(&url).connect().await.expect("connect");
        let mut probe = BookServiceClient::new(probe);
        let deadline = Instant::now() + WAIT;
        loop {
            let reply = probe
                .get_book(pb::GetBookRequest {
                    symbol: "AAPL".into(),
                    depth: 1,
                })
                .await;
            match reply {
                Ok(_) => break,
                Err(status) if Instant::now() >= deadline => panic!(
                    "the server did not serve AAPL within {WAIT:?} of starting \
                     (the warm-up's 1,000 messages should publish it): last answer {status}"
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        // one connection per 10 subscribers, as a fleet of clients would have
        let mut channels = Vec::new();
        for _ in 0..subscribers.div_ceil(10) {
            channels.push(endpoint(&url).connect().await.expect("connect"));
        }
        let mut tasks = Vec::new();
        for i in 0..subscribers {
            let mut client = BookServiceClient::new(channels[i / 10].clone());
            let levels = stream == pb::Stream::Levels;
            let mut updates = client
                .subscribe(pb::SubscribeRequest {
                    symbols: vec![symbol_of(i).into()],
                    depth: if levels { 10 } else { 0 },
                    mode: pb::Mode::EveryChange as i32,
                    interval_ms: 0,
                    stream: stream as i32,
                })
                .await
                .expect("subscribe")
                .into_inner();
            tasks.push(tokio::spawn(async move {
                let mut h = common::histogram();
                let mut deltas = 0u64;
                while let Ok(Some(update)) = updates.message().await {
                    let stamped = match update.update {
                        Some(Update::Delta(d)) => d.timestamps,
                        Some(Update::Order(e)) => e.timestamps,
                        _ => continue,
                    };
                    deltas += 1;
                    let intended = stamped.map_or(0, |t| t.exchange_ns);
                    if intended != 0 {
                        common::record_ns(&mut h, now_ns().saturating_sub(intended) as f64);
                    }
                }
                (h, deltas)
            }));
        }
        // stalled subscribers: each on a connection of its own whose small windows keep the
        // frames it leaves unread within h2's small-frame budget (see src/cli/client.rs), so
        // it stays connected and stalled rather than being cut off by its own h2
        let everything: Vec<String> = running
            .shared
            .hub
            .symbols()
            .into_iter()
            .filter(|s| s.published)
            .map(|s| s.symbol)
            .collect();
        let mut stalled_streams = Vec::new();
        for _ in 0..stalled {
            let channel = endpoint(&url)
                .initial_stream_window_size(64 << 10)
                .initial_connection_window_size(1 << 20)
                .connect()
                .await
                .expect("connect");
            let stream = BookServiceClient::new(channel)
                .subscribe(pb::SubscribeRequest {
                    symbols: everything.clone(),
                    depth: 1000,
                    mode: pb::Mode::EveryChange as i32,
                    interval_ms: 0,
                    stream: pb::Stream::Levels as i32,
                })
                .await
                .expect("subscribe")
                .into_inner();
            stalled_streams.push(stream);
        }
        let started = Instant::now();
        go.store(true, Ordering::Release);
        let stats = Arc::clone(&running.shared.shard_stats[0]);
        while stats.snapshot().messages() < messages + 1_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        let stats = &running.shared.hub.stats;
        let slow = (
            stats.snapshots[1].load(Ordering::Relaxed),
            stats.slow_closes.load(Ordering::Relaxed),
        );
        // the stalled clients hang up: their streams end and leave the hub
        drop(stalled_streams);
        // shutdown drops what is still queued: first let the event thread and the streams
        // take everything the shard published
        drained(&running.shared.hub).await;
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
            elapsed,
            deltas,
            slow,
        }
    })
}

/// How long the server may take to warm up, or to pass on the last deltas.
const WAIT: Duration = Duration::from_secs(20);

/// Waits until the hub has taken every event the shard published and every subscriber's
/// stream has taken its queue (what a stream has taken goes out before shutdown's status),
/// seen on consecutive looks 10 ms apart: the event thread's ring figure is only as fresh as
/// its last poll. Panics after [`WAIT`].
async fn drained(hub: &Hub) {
    let deadline = Instant::now() + WAIT;
    let mut quiet = 0;
    while quiet < 2 {
        let ring = hub.stats.ring_occupancy[0].load(Ordering::Relaxed);
        let queued: usize = hub.queue_depths().iter().sum();
        if ring == 0 && queued == 0 {
            quiet += 1;
        } else {
            quiet = 0;
            assert!(
                Instant::now() < deadline,
                "deltas still undelivered {WAIT:?} after the feed ended: {ring} events in the \
                 shard's ring, {queued} updates in subscriber queues"
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn report() {
    let full = common::full_run();
    let rate = 10_000;
    let messages = if full { 3 * rate } else { 2_000 };
    let fleets: &[usize] = if full { &[1, 10, 100] } else { &[1, 3] };
    let runs: Vec<(String, Outcome)> = [
        (pb::Stream::Levels, "levels"),
        (pb::Stream::Orders, "orders"),
    ]
    .into_iter()
    .flat_map(|(stream, name)| {
        fleets.iter().map(move |&n| {
            (
                format!("{name}: {n} subscriber(s), 10 k msg/s"),
                run(messages, rate, (n, stream), |_| "AAPL", 0, ROOMY, false),
            )
        })
    })
    .collect();
    let rows: Vec<(&str, &Histogram<u64>)> =
        runs.iter().map(|(n, o)| (n.as_str(), &o.latency)).collect();
    common::print_table(
        "ingest → delta (levels) or order event (orders) of AAPL decoded by a gRPC client on \
         loopback (from the intended injection time), ns",
        "ns per update",
        &rows,
    );
    for (name, o) in &runs {
        println!(
            "  {name}: {} updates received in {:.2?}",
            o.deltas, o.elapsed
        );
    }
}

/// The shard's unpaced throughput with no subscriber and with 1,000 level subscribers.
fn throughput() {
    let full = common::full_run();
    let messages = if full { 1_000_000 } else { 5_000 };
    let many = if full { 1_000 } else { 10 };
    let alone = run(
        messages,
        0,
        (0, pb::Stream::Levels),
        |_| "AAPL",
        0,
        ROOMY,
        false,
    );
    let crowded = run(
        messages,
        0,
        (many, pb::Stream::Levels),
        |i| SYMBOLS[i % SYMBOLS.len()],
        0,
        ROOMY,
        false,
    );
    let rate = |o: &Outcome| messages as f64 / o.elapsed.as_secs_f64() / 1e6;
    println!();
    println!(
        "data-plane throughput, unpaced, {messages} messages: {:.2} M msg/s with no subscriber, \
         {:.2} M msg/s with {many} subscribers ({} deltas delivered): ratio {:.2}",
        rate(&alone),
        rate(&crowded),
        crowded.deltas,
        rate(&crowded) / rate(&alone)
    );
}

/// One healthy subscriber (AAPL, depth 10) with 0 and with 30 stalled deep subscribers.
fn slow_consumers() {
    let full = common::full_run();
    let rate = 10_000;
    let messages = if full { 3 * rate } else { 2_000 };
    let stalled = if full { 30 } else { 4 };
    let runs: Vec<(String, Outcome)> = [0, stalled]
        .into_iter()
        .map(|n| {
            (
                format!("{n} stalled, 10 k msg/s"),
                run(
                    messages,
                    rate,
                    (1, pb::Stream::Levels),
                    |_| "AAPL",
                    n,
                    DEFAULTS,
                    false,
                ),
            )
        })
        .collect();
    let rows: Vec<(&str, &Histogram<u64>)> =
        runs.iter().map(|(n, o)| (n.as_str(), &o.latency)).collect();
    common::print_table(
        "slow consumers: a healthy subscriber's ingest → delta decoded (AAPL, depth 10), with \
         stalled subscribers of every symbol at depth 1000 that never read, ns",
        "ns per delta",
        &rows,
    );
    for (name, o) in &runs {
        println!(
            "  {name}: {} deltas received; {} slow-consumer snapshots built, {} slow closes",
            o.deltas, o.slow.0, o.slow.1
        );
    }
}

/// What TLS costs a subscriber: ingest → delta decoded over TLS against plaintext, with 1 and
/// with 100 subscribers of AAPL at 10 k msg/s, in the same run.
fn tls_cost() {
    let full = common::full_run();
    let rate = 10_000;
    let messages = if full { 3 * rate } else { 2_000 };
    let fleets: &[usize] = if full { &[1, 100] } else { &[1, 3] };
    for &n in fleets {
        let runs: Vec<(String, Outcome)> = [false, true]
            .into_iter()
            .map(|tls| {
                (
                    format!(
                        "{n} subscriber(s), {}",
                        if tls { "TLS" } else { "plaintext" }
                    ),
                    run(
                        messages,
                        rate,
                        (n, pb::Stream::Levels),
                        |_| "AAPL",
                        0,
                        ROOMY,
                        tls,
                    ),
                )
            })
            .collect();
        let rows: Vec<(&str, &Histogram<u64>)> =
            runs.iter().map(|(n, o)| (n.as_str(), &o.latency)).collect();
        common::print_table(
            &format!(
                "TLS cost: ingest → delta of AAPL decoded by {n} gRPC client(s) on loopback, \
                 plaintext then TLS 1.3 (rustls, ring), 10 k msg/s, ns"
            ),
            "ns per delta",
            &rows,
        );
    }
}

fn main() {
    // `cargo bench --bench grpc -- slow_consumers` runs only the slow-consumer comparison
    common::main(common::no_criterion, Duration::from_secs(1), || {
        let only = |name: &str| std::env::args().skip(1).any(|a| a == name);
        if only("throughput") {
            throughput();
            return;
        }
        if only("tls") {
            tls_cost();
            return;
        }
        if !only("slow_consumers") {
            report();
            throughput();
            tls_cost();
        }
        slow_consumers();
    });
}
