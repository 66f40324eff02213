//! The gRPC control plane end to end: a real data plane on a scripted feed, the real server on
//! 127.0.0.1:0, real tonic clients. Every update a client receives is checked against the
//! contract (seq contiguity, checksums), and the books it ends with against the reference book.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use controlplane::config::{Config, SubscribersConfig};
use controlplane::contract::Checker;
use controlplane::hub::Policy;
use controlplane::limits::LimitsConfig;
use controlplane::pb::admin_service_client::AdminServiceClient;
use controlplane::pb::book_service_client::BookServiceClient;
use controlplane::pb::{self, book_update::Update};
use controlplane::server::{self, Running, ServerOptions};
use dataplane::book::reference::ReferenceBooks;
use dataplane::feed::generator::{Generator, GeneratorConfig};
use dataplane::feed::itch::{Side, parse};
use dataplane::runtime::{DataPlane, ShardConfig};
use dataplane::source::FeedSource;
use dataplane::source::memory::{Gate, MemorySource};
use dataplane::topology::Topology;
use tonic::transport::Channel;
use tonic::{Code, Request, Streaming};

const TOKEN: &str = "test-admin-token";
const WAIT: Duration = Duration::from_secs(20);

fn generated(messages: usize, symbols: u16, seed: u64) -> Vec<Vec<u8>> {
    Generator::new(GeneratorConfig { symbols, seed }).messages(messages)
}

struct Server {
    running: Option<Running>,
    addr: SocketAddr,
    gate: Gate,
}

impl Server {
    /// A server over a feed of `messages`, none released yet (see [`Server::gate`]).
    async fn start(messages: Vec<Vec<u8>>, policy: Policy) -> Server {
        let shard = ShardConfig::for_tests(0, 1);
        let (source, gate) = MemorySource::messages(messages);
        let sources: Vec<Box<dyn FeedSource>> = vec![Box::new(source)];
        let plane = DataPlane::start(Arc::new(Topology::fallback()), vec![shard], sources).unwrap();
        let options = ServerOptions {
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            max_depth: 1000,
            heartbeat: Duration::from_millis(200),
            policy,
            admin_token: TOKEN.into(),
            book_access: controlplane::auth::BookAccess::default(),
            tls: None,
            control_cores: Vec::new(),
            // what GetConfig shows and SetConfig edits: the same subscriber settings
            config_toml: Config {
                subscribers: SubscribersConfig {
                    queue: policy.queue,
                    max_depth: 1000,
                    heartbeat_ms: 200,
                    max_resyncs: u32::try_from(policy.max_resyncs).unwrap(),
                    resync_window_ms: u64::try_from(policy.window.as_millis()).unwrap(),
                    stall_ms: u64::try_from(policy.stall.as_millis()).unwrap(),
                    blocked_ms: u64::try_from(policy.blocked.as_millis()).unwrap(),
                    ..SubscribersConfig::default()
                },
                ..Config::default()
            }
            .to_toml()
            .unwrap(),
            shutdown_timeout: Duration::from_secs(5),
            limits: LimitsConfig::default(),
            conflation_ms: (1, 60_000),
        };
        let running = server::start(options, plane).await.unwrap();
        let addr = running.local_addr;
        Server {
            running: Some(running),
            addr,
            gate,
        }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// A connection for a client that stops reading: its windows keep what its h2 buffers
    /// unread (frames of one small delta each) within h2's budget for small DATA frames
    /// (half the connection window), so the server, not the client, decides what happens.
    async fn stalling_channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .initial_stream_window_size(64 << 10)
            .initial_connection_window_size(1 << 20)
            .connect()
            .await
            .unwrap()
    }

    async fn books(&self) -> BookServiceClient<Channel> {
        BookServiceClient::new(self.channel().await)
    }

    async fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel().await)
    }

    /// Waits until the server answers GetBook for `symbol` (books warm).
    async fn warm(&self, symbol: &str) {
        let mut client = self.books().await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let reply = client
                .get_book(pb::GetBookRequest {
                    symbol: symbol.into(),
                    depth: 1,
                })
                .await;
            match reply {
                Ok(_) => return,
                Err(s) if matches!(s.code(), Code::Unavailable | Code::NotFound) => {}
                Err(s) => panic!("{s}"),
            }
            assert!(tokio::time::Instant::now() < deadline, "never warm");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn messages_done(&self) -> u64 {
        self.running.as_ref().unwrap().shared.shard_stats[0]
            .snapshot()
            .messages()
    }
}

fn admin_request<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// An admin request naming `symbol`, with the right token.
fn symbol(symbol: &str) -> Request<pb::SymbolRequest> {
    admin_request(
        pb::SymbolRequest {
            symbol: symbol.into(),
        },
        Some(TOKEN),
    )
}

/// A client's view of its subscription: the books held by the contract's own checker
/// (`controlplane::contract`), every update checked, any violation a failure.
struct Client {
    checker: Checker,
    resyncs: Vec<(String, i32)>,
    removed: Vec<String>,
    heartbeats: u64,
    updates: u64,
}

impl Client {
    fn new(depth: usize) -> Self {
        Client {
            checker: Checker::learning(depth),
            resyncs: Vec::new(),
            removed: Vec::new(),
            heartbeats: 0,
            updates: 0,
        }
    }

    fn apply(&mut self, update: pb::BookUpdate) {
        self.updates += 1;
        let found = match update.update.expect("an update") {
            Update::Snapshot(s) => self.checker.snapshot(&s),
            Update::Delta(d) => self.checker.delta(&d),
            Update::Heartbeat(_) => {
                self.heartbeats += 1;
                Vec::new()
            }
            Update::Resync(r) => {
                let found = self.checker.resync(&r);
                self.resyncs.push((r.symbol, r.reason));
                found
            }
            Update::Removed(r) => {
                let found = self.checker.removed(&r);
                self.removed.push(r.symbol);
                found
            }
            other => panic!("a level subscription got {other:?}"),
        };
        assert!(found.is_empty(), "contract violations: {found:?}");
    }

    fn levels(&self, symbol: &str, side: Side) -> Vec<(i64, u64, u32)> {
        let book = self.checker.book(symbol).expect("a book of the symbol");
        match side {
            Side::Buy => book.bids().map(Into::into).collect(),
            Side::Sell => book.asks().map(Into::into).collect(),
        }
    }

    /// Reads until a heartbeat arrives after `done()` became true (everything was sent).
    async fn read_until_idle(
        &mut self,
        stream: &mut Streaming<pb::BookUpdate>,
        mut done: impl FnMut() -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut finished = false;
        loop {
            let next = tokio::time::timeout_at(deadline, stream.message())
                .await
                .expect("stream went quiet without heartbeats")
                .expect("stream failed")
                .expect("stream ended");
            let beat = matches!(next.update, Some(Update::Heartbeat(_)));
            self.apply(next);
            if beat && finished {
                return;
            }
            finished = finished || (beat && done());
        }
    }
}

fn sub(symbols: &[&str], depth: u32, mode: pb::Mode, interval_ms: u32) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        depth,
        mode: mode as i32,
        interval_ms,
        stream: pb::Stream::Levels as i32,
    }
}

/// Opens a subscription that must succeed.
async fn open(
    client: &mut BookServiceClient<Channel>,
    symbols: &[&str],
    depth: u32,
    mode: pb::Mode,
    interval_ms: u32,
) -> Streaming<pb::BookUpdate> {
    client
        .subscribe(sub(symbols, depth, mode, interval_ms))
        .await
        .unwrap()
        .into_inner()
}

/// Reads `stream`, passing each update to `on_update`, until it ends with a status (within
/// [`WAIT`]); returns the status.
async fn final_status(
    stream: &mut Streaming<pb::BookUpdate>,
    mut on_update: impl FnMut(pb::BookUpdate),
) -> tonic::Status {
    loop {
        match tokio::time::timeout(WAIT, stream.message()).await.unwrap() {
            Ok(Some(update)) => on_update(update),
            Ok(None) => panic!("ended without a status"),
            Err(status) => return status,
        }
    }
}

fn policy() -> Policy {
    Policy {
        queue: 8192,
        max_resyncs: 3,
        window: Duration::from_secs(10),
        stall: Duration::from_secs(5),
        blocked: Duration::from_secs(5),
    }
}

fn reference(messages: &[Vec<u8>]) -> ReferenceBooks {
    let mut r = ReferenceBooks::new();
    for m in messages {
        r.apply(&parse(m).unwrap());
    }
    r
}

/// A server over `n` generated messages (`symbols` symbols, `seed`), none released yet, with
/// the number of messages and the books they build.
async fn fixture(
    n: usize,
    symbols: u16,
    seed: u64,
    policy: Policy,
) -> (Server, u64, ReferenceBooks) {
    let stream = generated(n, symbols, seed);
    let expected = reference(&stream);
    (Server::start(stream, policy).await, n as u64, expected)
}

fn top(reference: &ReferenceBooks, locate: u16, side: Side, n: usize) -> Vec<(i64, u64, u32)> {
    reference.levels(locate, side).into_iter().take(n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_a_snapshot_then_deltas_and_end_with_the_reference_book() {
    let (server, total, expected) = fixture(60_000, 10, 21, policy()).await;
    server.gate.open_to(2_000);
    server.warm("AAPL").await;

    let mut deep_client = server.books().await;
    let mut deep = open(
        &mut deep_client,
        &["AAPL", "MSFT"],
        1000,
        pb::Mode::EveryChange,
        0,
    )
    .await;
    let mut shallow_client = server.books().await;
    let mut shallow = open(&mut shallow_client, &["AAPL"], 3, pb::Mode::Unspecified, 0).await;
    server.gate.open();

    let mut a = Client::new(1000);
    a.read_until_idle(&mut deep, || server.messages_done() == total)
        .await;
    let mut b = Client::new(3);
    b.read_until_idle(&mut shallow, || server.messages_done() == total)
        .await;
    for (symbol, locate) in [("AAPL", 1), ("MSFT", 2)] {
        for side in [Side::Buy, Side::Sell] {
            assert_eq!(
                a.levels(symbol, side),
                top(&expected, locate, side, 1000),
                "{symbol} {side:?}"
            );
        }
    }
    for side in [Side::Buy, Side::Sell] {
        assert_eq!(b.levels("AAPL", side), top(&expected, 1, side, 3));
    }
    assert!(
        a.updates > 1000 && b.updates > 100,
        "{} {}",
        a.updates,
        b.updates
    );
    // the feed runs unpaced: the data plane may outrun the event thread, and the event thread
    // a client (on a loaded 2-core machine); either is announced, never skipped silently
    let announced = [
        pb::ResyncReason::RingOverflow as i32,
        pb::ResyncReason::SlowConsumer as i32,
    ];
    for (symbol, reason) in a.resyncs.iter().chain(&b.resyncs) {
        assert!(announced.contains(reason), "{symbol}: {reason}");
    }

    // GetBook agrees
    let book = deep_client
        .get_book(pb::GetBookRequest {
            symbol: "AAPL".into(),
            depth: 5,
        })
        .await
        .unwrap()
        .into_inner();
    let bids: Vec<(i64, u64, u32)> = book
        .bids
        .iter()
        .map(|l| (l.price, l.shares, l.orders))
        .collect();
    assert_eq!(bids, top(&expected, 1, Side::Buy, 5));
    server.running.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_statuses() {
    let (server, ..) = fixture(3_000, 5, 1, policy()).await;
    server.gate.open();
    server.warm("AAPL").await;
    let mut books = server.books().await;
    for (request, code, field) in [
        (
            sub(&[], 5, pb::Mode::EveryChange, 0),
            Code::InvalidArgument,
            "symbols",
        ),
        (
            sub(&["AAPL"], 0, pb::Mode::EveryChange, 0),
            Code::InvalidArgument,
            "depth",
        ),
        (
            sub(&["AAPL"], 1001, pb::Mode::EveryChange, 0),
            Code::InvalidArgument,
            "depth",
        ),
        (
            sub(&["AAPL"], 5, pb::Mode::Conflated, 0),
            Code::InvalidArgument,
            "interval_ms",
        ),
        (
            sub(&["AAPL", "AAPL"], 5, pb::Mode::EveryChange, 0),
            Code::InvalidArgument,
            "symbols",
        ),
        (
            sub(&["NOPE"], 5, pb::Mode::EveryChange, 0),
            Code::NotFound,
            "NOPE",
        ),
    ] {
        let status = books.subscribe(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(field), "{status:?}");
    }
    let status = books
        .get_book(pb::GetBookRequest {
            symbol: "".into(),
            depth: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // a 20 KB symbol: INVALID_ARGUMENT with a short message, not the client's RESOURCE_EXHAUSTED
    // for a status trailer that echoed it whole
    let huge = "X".repeat(20_000);
    let status = books
        .subscribe(sub(&[&huge], 5, pb::Mode::EveryChange, 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().len() < 200, "{status:?}");
    let status = books
        .get_book(pb::GetBookRequest {
            symbol: huge.clone(),
            depth: 5,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("(20000 bytes)"), "{status:?}");

    // admin: no token, wrong token, right token
    let mut admin = server.admin().await;
    let list = || pb::ListSymbolsRequest {};
    let status = admin
        .list_symbols(admin_request(list(), None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = admin
        .list_symbols(admin_request(list(), Some("wrong")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let symbols = admin
        .list_symbols(admin_request(list(), Some(TOKEN)))
        .await
        .unwrap()
        .into_inner()
        .symbols;
    assert_eq!(symbols.len(), 5);
    for (symbol, code) in [
        ("NOPE", Code::NotFound),
        ("AAPL", Code::AlreadyExists),
        ("", Code::InvalidArgument),
    ] {
        let status = admin.add_symbol(self::symbol(symbol)).await.unwrap_err();
        assert_eq!(status.code(), code, "{symbol}: {status:?}");
    }
    let config = admin
        .get_config(admin_request(pb::GetConfigRequest {}, Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        config.toml.contains("[subscribers]\nqueue = 8192\n"),
        "{}",
        config.toml
    );
    assert!(
        config.toml.contains("heartbeat_ms = 200\n"),
        "{}",
        config.toml
    );
    let stats = admin
        .get_stats(admin_request(pb::GetStatsRequest {}, Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.shards[0].messages, 3_000);
    server.running.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_and_adding_symbols_with_subscribers_attached() {
    let (server, total, expected) = fixture(40_000, 6, 8, policy()).await;
    server.gate.open_to(10_000);
    server.warm("MSFT").await;
    let mut books = server.books().await;
    let mut updates = open(&mut books, &["MSFT", "AAPL"], 10, pb::Mode::EveryChange, 0).await;
    let mut client = Client::new(10);
    client.read_until_idle(&mut updates, || true).await;
    let mut admin = server.admin().await;
    let removed = admin
        .remove_symbol(symbol("MSFT"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.state, pb::SymbolState::Removed as i32);
    client.read_until_idle(&mut updates, || true).await;
    assert_eq!(client.removed, ["MSFT"], "the stream said so");
    // a new subscription to it is refused; the other symbol goes on
    let status = books
        .subscribe(sub(&["MSFT"], 10, pb::Mode::Unspecified, 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let added = admin.add_symbol(symbol("MSFT")).await.unwrap().into_inner();
    assert_eq!(added.state, pb::SymbolState::Published as i32);
    assert!(
        !added.incomplete,
        "its book was kept while it was not published: complete at once"
    );
    server.gate.open();
    client
        .read_until_idle(&mut updates, || server.messages_done() == total)
        .await;
    for side in [Side::Buy, Side::Sell] {
        assert_eq!(client.levels("AAPL", side), top(&expected, 1, side, 10));
    }
    // a subscriber to the symbol added back gets exactly the reference book
    assert!(
        !top(&expected, 2, Side::Buy, 10).is_empty(),
        "MSFT has a book"
    );
    let mut fresh = open(&mut books, &["MSFT"], 10, pb::Mode::EveryChange, 0).await;
    let mut late = Client::new(10);
    late.read_until_idle(&mut fresh, || true).await;
    for side in [Side::Buy, Side::Sell] {
        assert_eq!(late.levels("MSFT", side), top(&expected, 2, side, 10));
    }
    server.running.unwrap().shutdown().await;
}

/// Deep subscribers that stop reading, on connections of their own.
const STALLED: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_deep_subscribers_hear_why_before_the_close_and_the_healthy_one_stays_correct() {
    let tight = Policy {
        queue: 4096,
        max_resyncs: 2,
        window: Duration::from_secs(60),
        stall: Duration::from_millis(300),
        blocked: Duration::from_millis(300),
    };
    let (server, total, expected) = fixture(120_000, 4, 4, tight).await;
    server.gate.open_to(2_000);
    server.warm("AAPL").await;
    // the stalled ones read nothing from here on (their connections still run: a client's
    // h2 takes frames into its window, then the server's stream for it blocks)
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut client = BookServiceClient::new(server.stalling_channel().await);
        stalled.push(open(&mut client, &["AAPL"], 1000, pb::Mode::EveryChange, 0).await);
    }
    let mut fast_client = server.books().await;
    let mut fast = open(&mut fast_client, &["AAPL"], 10, pb::Mode::Unspecified, 0).await;
    // the healthy one reads everything as it comes
    let mut good = Client::new(10);
    let fast_done = tokio::spawn(async move {
        good.read_until_idle(&mut fast, || true).await;
        good
    });
    // a feed of about 100 k msg/s: 200 messages every 2 ms
    let mut released = 2_000;
    while released < total as usize {
        released += 200;
        server.gate.open_to(released);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.messages_done() < total {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let good = fast_done.await.unwrap();
    for side in [Side::Buy, Side::Sell] {
        assert_eq!(good.levels("AAPL", side), top(&expected, 1, side, 10));
    }
    assert!(
        good.resyncs
            .iter()
            .all(|(_, r)| *r != pb::ResyncReason::SlowConsumer as i32),
        "the healthy subscriber was resynced for slowness: {:?}",
        good.resyncs
    );
    // each stalled one is closed once it has not read its resync (or anything) for `stall`
    let hub = &server.running.as_ref().unwrap().shared.hub;
    let slow_closes = || {
        hub.stats
            .slow_closes
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    while slow_closes() < STALLED as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {STALLED} stalled subscribers closed",
            slow_closes()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // now they read: updates in contract, then the SLOW_CONSUMER resync, then the status
    for mut stream in stalled {
        let mut lagging = Client::new(1000);
        let mut last = None;
        let status = final_status(&mut stream, |update| {
            if !matches!(update.update, Some(Update::Heartbeat(_))) {
                last = update.update.clone();
            }
            lagging.apply(update);
        })
        .await;
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("too slow"), "{status:?}");
        assert!(
            matches!(&last, Some(Update::Resync(r)) if r.reason == pb::ResyncReason::SlowConsumer as i32),
            "the last update before the close was {last:?}, not the SLOW_CONSUMER resync"
        );
        assert!(lagging.updates > 1, "{}", lagging.updates);
    }
    assert_eq!(slow_closes(), STALLED as u64);
    server.running.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_warmup_and_shutdown_ends_open_streams() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let (server, ..) = fixture(5_000, 5, 2, policy()).await;
    let mut health = HealthClient::new(server.channel().await);
    let check = |service: &str| tonic_health::pb::HealthCheckRequest {
        service: service.into(),
    };
    // nothing released yet: no book, not serving, and calls say so
    let status = health.check(check("")).await.unwrap().into_inner().status;
    assert_eq!(status, ServingStatus::NotServing as i32);
    let mut books = server.books().await;
    let status = books
        .get_book(pb::GetBookRequest {
            symbol: "AAPL".into(),
            depth: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    server.gate.open();
    server.warm("AAPL").await;
    let status = health
        .check(check("pinbook.v2.BookService"))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    // reflection lists the services
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let mut reflection = ServerReflectionClient::new(server.channel().await);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut replies = reflection
            .server_reflection_info(tokio_stream::once(request))
            .await
            .unwrap()
            .into_inner();
        let reply = replies.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
            panic!("{reply:?}");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for wanted in [
            "pinbook.v2.BookService",
            "pinbook.v2.AdminService",
            "grpc.health.v1.Health",
        ] {
            assert!(names.iter().any(|n| n == wanted), "{names:?}");
        }
    }

    let mut stream = open(&mut books, &["AAPL"], 5, pb::Mode::Unspecified, 0).await;
    assert!(stream.message().await.unwrap().is_some(), "the snapshot");
    let started = tokio::time::Instant::now();
    server.running.unwrap().shutdown().await;
    let status = final_status(&mut stream, |_| {}).await;
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("shutting down"), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflated_and_top_of_book_modes_follow_the_book() {
    let (server, total, expected) = fixture(30_000, 4, 6, policy()).await;
    server.gate.open_to(1_000);
    server.warm("AAPL").await;
    let mut books = server.books().await;
    let mut conflated = open(&mut books, &["AAPL"], 5, pb::Mode::Conflated, 20).await;
    let mut top_client = server.books().await;
    let mut top_of_book = open(&mut top_client, &["AAPL"], 50, pb::Mode::TopOfBook, 0).await;
    server.gate.open();
    let mut c = Client::new(5);
    c.read_until_idle(&mut conflated, || server.messages_done() == total)
        .await;
    let mut t = Client::new(1);
    t.read_until_idle(&mut top_of_book, || server.messages_done() == total)
        .await;
    for side in [Side::Buy, Side::Sell] {
        assert_eq!(c.levels("AAPL", side), top(&expected, 1, side, 5));
        assert_eq!(t.levels("AAPL", side), top(&expected, 1, side, 1));
    }
    assert!(c.updates > 1 && t.updates > 1);
    server.running.unwrap().shutdown().await;
}

/// The code and message of a call that must fail.
fn refusal<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (Code, String) {
    let status = result.unwrap_err();
    (status.code(), status.message().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_refuses_with_its_name_changes_live_and_leaves_other_streams_alone() {
    let (server, _, _) = fixture(20_000, 4, 31, policy()).await;
    server.gate.open();
    server.warm("AAPL").await;
    let admission = &server.running.as_ref().unwrap().shared.admission;
    let small = LimitsConfig {
        max_subscribers: 100,
        max_subscribers_per_client: 3,
        max_streams_per_connection: 2,
        max_symbols_per_subscription: 2,
        ..LimitsConfig::default()
    };
    admission.set(small);
    let both = || sub(&["AAPL", "MSFT"], 5, pb::Mode::EveryChange, 0);

    // two streams fill a connection; a third is refused on it, not on another connection
    let mut one = server.books().await;
    let mut first = one.subscribe(both()).await.unwrap().into_inner();
    let _second = one.subscribe(both()).await.unwrap().into_inner();
    let (code, msg) = refusal(one.subscribe(both()).await);
    assert_eq!(code, Code::ResourceExhausted);
    assert!(
        msg.starts_with("limit max_streams_per_connection = 2 reached"),
        "{msg}"
    );
    let _third = server.books().await.subscribe(both()).await.unwrap();
    // every connection here is from 127.0.0.1 without a checked token: one client
    let (code, msg) = refusal(server.books().await.subscribe(both()).await);
    assert_eq!(code, Code::ResourceExhausted);
    assert!(
        msg.starts_with("limit max_subscribers_per_client = 3 reached: peer 127.0.0.1"),
        "{msg}"
    );
    let (_, msg) = refusal(
        server
            .books()
            .await
            .subscribe(sub(&["AAPL", "MSFT", "NVDA"], 5, pb::Mode::EveryChange, 0))
            .await,
    );
    assert!(
        msg.starts_with("limit max_symbols_per_subscription = 2"),
        "{msg}"
    );
    // a request over max_message_bytes (64 KiB) is refused before it is decoded
    let huge: Vec<String> = (0..9000).map(|i| format!("S{i:07}")).collect();
    let huge: Vec<&str> = huge.iter().map(String::as_str).collect();
    let (code, msg) = refusal(
        server
            .books()
            .await
            .subscribe(sub(&huge, 5, pb::Mode::EveryChange, 0))
            .await,
    );
    assert_eq!(code, Code::ResourceExhausted, "{msg}");
    assert!(msg.starts_with("limit max_message_bytes = 65536"), "{msg}");

    // the open streams go on: the first one still gets its snapshots
    let update = tokio::time::timeout(WAIT, first.message()).await.unwrap();
    assert!(update.unwrap().is_some());

    // five calls a second for this peer: of twenty at once, some are refused; the admin
    // (another client) is not affected
    admission.set(LimitsConfig {
        calls_per_second: 5,
        ..small
    });
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let mut client = one.clone();
        calls.spawn(async move {
            client
                .get_book(pb::GetBookRequest {
                    symbol: "AAPL".into(),
                    depth: 1,
                })
                .await
        });
    }
    let mut refused = None;
    while let Some(call) = calls.join_next().await {
        if let Err(status) = call.unwrap() {
            refused = Some(status);
        }
    }
    let status = refused.expect("twenty calls at once, five a second: some are refused");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status
            .message()
            .starts_with("limit calls_per_second = 5 reached: peer 127.0.0.1"),
        "{}",
        status.message()
    );
    server
        .admin()
        .await
        .list_symbols(admin_request(pb::ListSymbolsRequest {}, Some(TOKEN)))
        .await
        .unwrap();

    // a slot comes back when its stream ends; raised limits take effect at once
    admission.set(small);
    drop(first);
    drop(one);
    let deadline = tokio::time::Instant::now() + WAIT;
    while admission.subscribers() > 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slots never came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.books().await.subscribe(both()).await.unwrap();
    admission.set(LimitsConfig {
        max_subscribers_per_client: 10,
        ..LimitsConfig::default()
    });
    server.books().await.subscribe(both()).await.unwrap();
    server.running.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_request_never_comes_is_refused_at_the_deadline() {
    let (server, _, _) = fixture(1_000, 2, 5, policy()).await;
    server.gate.open();
    server.warm("AAPL").await;
    server
        .running
        .as_ref()
        .unwrap()
        .shared
        .admission
        .set(LimitsConfig {
            request_deadline_ms: 300,
            ..LimitsConfig::default()
        });
    // a raw HTTP/2 client: the call's headers, then nothing
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = tonic::codegen::http::Request::post(format!(
        "http://{}/pinbook.v2.BookService/Subscribe",
        server.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let started = std::time::Instant::now();
    let (response, _body) = h2.send_request(request, false).unwrap();
    let response = tokio::time::timeout(WAIT, response).await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
    let headers = response.headers();
    assert_eq!(headers["grpc-status"], "8", "{headers:?}");
    assert!(
        headers["grpc-message"]
            .to_str()
            .unwrap()
            .contains("request_deadline_ms"),
        "{headers:?}"
    );
    server.running.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_change_live_checked_as_the_file_is_and_get_config_shows_them() {
    let (server, _, _) = fixture(2_000, 2, 9, policy()).await;
    server.gate.open();
    server.warm("AAPL").await;
    let mut admin = server.admin().await;
    let set = |key: &str, value: &str| {
        admin_request(
            pb::SetConfigRequest {
                key: key.into(),
                value: value.into(),
            },
            Some(TOKEN),
        )
    };
    let change = admin
        .set_config(set("subscribers.max_interval_ms", "10"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (change.old_value.as_str(), change.new_value.as_str()),
        ("60000", "10")
    );
    assert_eq!(change.effect, "for subscriptions opened from now on");
    let (code, msg) = refusal(
        server
            .books()
            .await
            .subscribe(sub(&["AAPL"], 5, pb::Mode::Conflated, 20))
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("MODE_CONFLATED needs 1..=10"), "{msg}");
    let _held = open(
        &mut server.books().await,
        &["AAPL"],
        5,
        pb::Mode::Conflated,
        10,
    )
    .await;

    admin
        .set_config(set("limits.max_subscribers", "1"))
        .await
        .unwrap();
    admin.set_config(set("idle", "backoff")).await.unwrap();
    let toml = admin
        .get_config(admin_request(pb::GetConfigRequest {}, Some(TOKEN)))
        .await
        .unwrap()
        .into_inner()
        .toml;
    assert!(toml.contains("max_subscribers = 1\n"), "{toml}");
    assert!(toml.contains("max_interval_ms = 10\n"), "{toml}");
    assert!(toml.contains("idle = \"backoff\"\n"), "{toml}");
    let (code, msg) = refusal(
        server
            .books()
            .await
            .subscribe(sub(&["MSFT"], 5, pb::Mode::EveryChange, 0))
            .await,
    );
    assert_eq!(code, Code::ResourceExhausted);
    assert!(msg.starts_with("limit max_subscribers = 1"), "{msg}");

    for (key, value, code, start) in [
        (
            "limits.max_subscribers",
            "0",
            Code::InvalidArgument,
            "limits.max_subscribers is 0",
        ),
        (
            "limits.max_subscribers",
            "lots",
            Code::InvalidArgument,
            "limits.max_subscribers = lots:",
        ),
        (
            "subscribers.blocked_ms",
            "999999",
            Code::InvalidArgument,
            "subscribers.blocked_ms",
        ),
        (
            "idle",
            "auto",
            Code::InvalidArgument,
            "idle = auto is resolved per core",
        ),
        (
            "limits.max_subscriber",
            "1",
            Code::InvalidArgument,
            "no setting",
        ),
        (
            "grpc_addr",
            "\"127.0.0.1:1\"",
            Code::FailedPrecondition,
            "grpc_addr cannot change while serving",
        ),
        (
            "limits.max_message_bytes",
            "10",
            Code::FailedPrecondition,
            "limits.max_message_bytes cannot change",
        ),
    ] {
        let (got, msg) = refusal(admin.set_config(set(key, value)).await);
        assert_eq!(got, code, "{key} = {value}: {msg}");
        assert!(msg.starts_with(start), "{key} = {value}: {msg}");
    }
    // nothing refused was applied
    let toml = admin
        .get_config(admin_request(pb::GetConfigRequest {}, Some(TOKEN)))
        .await
        .unwrap()
        .into_inner()
        .toml;
    assert!(
        toml.contains("max_subscribers = 1\n") && toml.contains("max_message_bytes = 65536\n"),
        "{toml}"
    );
    // and the admin token is required
    let (code, _) = refusal(
        admin
            .set_config(admin_request(
                pb::SetConfigRequest {
                    key: "limits.max_subscribers".into(),
                    value: "9".into(),
                },
                Some("wrong"),
            ))
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    server.running.unwrap().shutdown().await;
}

/// How a fuzzed body is framed.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// One gRPC message frame around the bytes.
    Message,
    /// A frame that claims compression, which was not negotiated.
    Compressed,
    /// A frame whose length says more than the body holds.
    Truncated,
    /// The bytes as they are.
    Raw,
}

/// One fuzzed call: a method (an index into METHODS, or past it an unknown path), whether it
/// carries the admin token, how it is framed, and the bytes.
fn fuzz_case() -> impl proptest::strategy::Strategy<Value = (usize, bool, Framing, Vec<u8>)> {
    use proptest::prelude::*;
    let framing = prop_oneof![
        6 => Just(Framing::Message),
        1 => Just(Framing::Compressed),
        1 => Just(Framing::Truncated),
        2 => Just(Framing::Raw),
    ];
    let bytes = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => proptest::collection::vec(any::<u8>(), 0..2048),
        // bytes that look like protobuf: field tags and lengths, strings
        2 => proptest::collection::vec(prop_oneof![Just(0x0a_u8), Just(0x10), Just(0x12), Just(0x18), Just(0x20), any::<u8>()], 0..48),
        // well-formed protobuf of fields 1 to 6, each a varint or a string, so that most
        // decode and the handlers' own checks see odd values (huge depths, odd symbols,
        // unknown enums, repeated fields)
        6 => proptest::collection::vec(
            (1u8..=6, prop_oneof![
                any::<u64>().prop_map(Field::Varint),
                prop_oneof![
                    Just("AAPL".to_owned()),
                    Just("MSFT".to_owned()),
                    Just(String::new()),
                    "[ -~]{0,12}",
                    Just("limits.max_subscribers".to_owned()),
                    Just("subscribers.heartbeat_ms".to_owned()),
                ].prop_map(Field::Text),
            ]),
            0..6,
        ).prop_map(|fields| protobuf(&fields)),
    ];
    (
        0..controlplane::request_count::METHODS.len() + 1,
        any::<bool>(),
        framing,
        bytes,
    )
}

/// A protobuf field's value.
#[derive(Debug, Clone)]
enum Field {
    Varint(u64),
    Text(String),
}

/// The protobuf encoding of `fields`.
fn protobuf(fields: &[(u8, Field)]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    for (number, value) in fields {
        match value {
            Field::Varint(v) => {
                out.push(number << 3);
                varint(&mut out, *v);
            }
            Field::Text(t) => {
                out.push((number << 3) | 2);
                varint(&mut out, t.len() as u64);
                out.extend_from_slice(t.as_bytes());
            }
        }
    }
    out
}

/// Sends one fuzzed call over `h2`; returns the grpc-status it ended with (`None`: a stream
/// that opened and was let go).
async fn fuzz_call(
    h2: &mut h2::client::SendRequest<bytes::Bytes>,
    addr: SocketAddr,
    (method, token, framing, body): &(usize, bool, Framing, Vec<u8>),
) -> Result<Option<String>, String> {
    use tonic::codegen::http;
    let path = controlplane::request_count::METHODS
        .get(*method)
        .map_or_else(
            || "pinbook.v2.BookService/Nope".to_owned(),
            |m| (*m).to_owned(),
        );
    let mut request = http::Request::post(format!("http://{addr}/{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if *token {
        request = request.header("authorization", format!("Bearer {TOKEN}"));
    }
    let len = u32::try_from(body.len()).unwrap();
    let framed: Vec<u8> = match framing {
        Framing::Message => [&[0u8][..], &len.to_be_bytes(), body].concat(),
        Framing::Compressed => [&[1u8][..], &len.to_be_bytes(), body].concat(),
        Framing::Truncated => [&[0u8][..], &(len + 7).to_be_bytes(), body].concat(),
        Framing::Raw => body.clone(),
    };
    let ready = h2
        .clone()
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    *h2 = ready;
    let (response, mut send) = h2
        .send_request(request.body(()).unwrap(), false)
        .map_err(|e| format!("send: {e}"))?;
    // the server may answer (a refusal by the interceptor) before the body is sent: then the
    // stream is closed already and the response says why
    let _ = send.send_data(framed.into(), true);
    let response = tokio::time::timeout(WAIT, response)
        .await
        .map_err(|_| "no response".to_owned())?
        .map_err(|e| format!("response: {e}"))?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("HTTP {}", response.status()));
    }
    if let Some(status) = response.headers().get("grpc-status") {
        return Ok(Some(status.to_str().unwrap_or("?").to_owned()));
    }
    let mut body = response.into_body();
    if path.ends_with("/Subscribe") {
        // a stream that opened: it ends with a status or sends updates; let it go
        match tokio::time::timeout(Duration::from_millis(200), body.data()).await {
            Ok(Some(Ok(_))) | Err(_) => return Ok(None),
            Ok(Some(Err(e))) => return Err(format!("stream: {e}")),
            Ok(None) => {}
        }
    } else {
        // a unary answer: its message, then the status in the trailers
        loop {
            match tokio::time::timeout(WAIT, body.data()).await {
                Err(_) => return Err("an answer that never ended".into()),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => return Err(format!("answer: {e}")),
                Ok(None) => break,
            }
        }
    }
    let trailers = body
        .trailers()
        .await
        .map_err(|e| format!("trailers: {e}"))?;
    let status = trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .ok_or("a call that ended without grpc-status")?;
    Ok(Some(status.to_str().unwrap_or("?").to_owned()))
}

/// Arbitrary bytes as the request of every method: each call ends with a gRPC status (or opens
/// a stream), the server never drops the connection or stops serving. Cases:
/// `PINBOOK_RPC_FUZZ_CASES` (default 300; BENCHMARKS.md records a long run).
#[test]
fn arbitrary_request_bodies_get_statuses_and_the_server_keeps_serving() {
    use proptest::test_runner::{Config as Runner, TestRunner};
    let cases: u32 = std::env::var("PINBOOK_RPC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (server, h2) = runtime.block_on(async {
        let (server, _, _) = fixture(5_000, 4, 17, policy()).await;
        server.gate.open();
        server.warm("AAPL").await;
        // the rate limit would answer for the handlers: every call here must reach them
        server
            .running
            .as_ref()
            .unwrap()
            .shared
            .admission
            .set(LimitsConfig {
                calls_per_second: 1_000_000,
                ..LimitsConfig::default()
            });
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (h2, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        (server, h2)
    });
    let h2 = std::cell::RefCell::new(h2);
    let codes = std::cell::RefCell::new(std::collections::BTreeMap::<String, u32>::new());
    let mut runner = TestRunner::new(Runner {
        cases,
        failure_persistence: None,
        ..Runner::default()
    });
    runner
        .run(&fuzz_case(), |case| {
            let ended = runtime.block_on(fuzz_call(&mut h2.borrow_mut(), server.addr, &case));
            match ended {
                Ok(code) => {
                    *codes
                        .borrow_mut()
                        .entry(code.unwrap_or_else(|| "stream".into()))
                        .or_default() += 1;
                    Ok(())
                }
                Err(e) => Err(proptest::test_runner::TestCaseError::fail(format!(
                    "{case:?}: {e}"
                ))),
            }
        })
        .unwrap();
    eprintln!("{cases} fuzzed calls, by grpc-status: {:?}", codes.borrow());
    // and it still serves, the same connection included
    let mut h2 = h2.into_inner();
    runtime.block_on(async {
        // a fuzzed call with the token may have removed AAPL (a well-formed RemoveSymbol is
        // among the cases): that is the admin's right, so it is published again first
        let added = server.admin().await.add_symbol(symbol("AAPL")).await;
        if let Err(status) = added {
            assert_eq!(status.code(), Code::AlreadyExists, "{status}");
        }
        server.warm("AAPL").await;
        let ok = fuzz_call(
            &mut h2,
            server.addr,
            &(5, true, Framing::Message, Vec::new()),
        )
        .await
        .unwrap();
        assert_eq!(ok.as_deref(), Some("0"), "ListSymbols after the fuzzing");
        server.running.unwrap().shutdown().await;
    });
}
