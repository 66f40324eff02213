//! Books over NATS (issue 18): `serve --publish` fills a partition, `pinbook gateway` serves
//! it, against a real `nats-server` (JetStream on) started by the test on a loopback port.
//! `scripts/deps --test` installs nats-server.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{STARTUP, Server, eventually, json_lines, ok, text};

/// A `nats-server` child with JetStream, on 127.0.0.1, killed when dropped.
struct Nats {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free TCP port")
        .port()
}

impl Nats {
    fn start() -> Nats {
        Self::spawn(free_port(), &[])
    }

    /// A three-node cluster on loopback, JetStream on every node.
    fn cluster() -> Vec<Nats> {
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let all = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        (0..3)
            .map(|i| {
                Self::spawn(
                    free_port(),
                    &[
                        "--server_name",
                        &format!("n{i}"),
                        "--cluster_name",
                        "pinbook",
                        "--cluster",
                        &format!("nats://127.0.0.1:{}", routes[i]),
                        "--routes",
                        &all,
                    ],
                )
            })
            .collect()
    }

    fn spawn(port: u16, extra: &[&str]) -> Nats {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (scripts/deps --test installs it)");
        let nats = Nats {
            child,
            port,
            _dir: dir,
        };
        eventually("nats-server accepts connections", STARTUP, || {
            TcpStream::connect(("127.0.0.1", port))
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Publishes `payload` on `subject` as a plain NATS client would (the text protocol).
    fn publish_raw(&self, subject: &str, payload: &[u8]) {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to NATS");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a read timeout");
        let mut info = [0u8; 4096];
        let _ = conn.read(&mut info).expect("the server's INFO");
        let mut msg = format!(
            "CONNECT {{\"verbose\":false}}\r\nPUB {subject} {}\r\n",
            payload.len()
        )
        .into_bytes();
        msg.extend_from_slice(payload);
        msg.extend_from_slice(b"\r\nPING\r\n");
        conn.write_all(&msg).expect("publish");
        let mut pong = [0u8; 64];
        let n = conn.read(&mut pong).expect("PONG");
        assert!(text(&pong[..n]).contains("PONG"), "{}", text(&pong[..n]));
    }
}

const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "NVDA"];

/// Each test runs several servers, gateways and NATS nodes (debug builds): one at a time, so
/// a 2-core machine runs them at the pace they are written for.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A generated day of `messages` for 8 symbols.
fn day(dir: &std::path::Path, messages: u64) -> String {
    let file = dir.join("day.itch");
    let file = file.to_str().expect("a UTF-8 path").to_owned();
    ok(
        &Command::new(common::BIN)
            .args(["gen", &file, "-n", &messages.to_string(), "-k", "8"])
            .args(["--seed", "5"])
            .output()
            .expect("run gen"),
        "gen",
    );
    file
}

/// The book of `symbol` a server answers with, depth 1000, as JSON (bids, asks).
fn book(server: &Server, symbol: &str) -> Result<(serde_json::Value, serde_json::Value), String> {
    let out = server.run(&["book", symbol, "--depth", "1000", "--json"]);
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    let v = json_lines(&text(&out.stdout));
    Ok((v[0]["bids"].clone(), v[0]["asks"].clone()))
}

/// `serve` playing `file` at `rate` messages/s and publishing partition `east` on `nats`, and
/// a gateway of that partition; both serving.
fn serve_and_gateway(nats: &Nats, file: &str, rate: u32) -> (Server, Server) {
    let serve = Server::start_with(&[
        "--feed",
        &format!("file:{file}"),
        "--file-rate",
        &rate.to_string(),
        "--publish",
        &nats.url(),
        "--partition",
        "east",
    ]);
    serve.wait_serving(&[]);
    let gateway = Server::start_gateway(&["--from", &nats.url(), "--partitions", "east"]);
    gateway.wait_serving(&[]);
    (serve, gateway)
}

/// Waits until `gateway`'s books of [`SYMBOLS`] are `serve`'s.
fn books_agree(serve: &Server, gateway: &Server) {
    eventually("the gateway's books are serve's", STARTUP, || {
        for symbol in SYMBOLS {
            let want = book(serve, symbol)?;
            let got = book(gateway, symbol)?;
            if want != got {
                return Err(format!("{symbol}: gateway {got:?}, serve {want:?}"));
            }
        }
        Ok(())
    });
}

/// Waits until serve's shard took `messages`.
fn wait_file_done(serve: &Server, messages: u64) {
    eventually(
        "serve took the whole file",
        Duration::from_secs(60),
        || match common::shard_counter(serve, "messages") {
            n if n == messages => Ok(()),
            n => Err(format!("{n} of {messages}")),
        },
    );
}

#[test]
fn a_gateway_serves_what_serve_publishes_and_a_subscriber_cannot_tell_them_apart() {
    let _serial = one_at_a_time();
    let nats = Nats::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let messages = 60_000;
    let file = day(dir.path(), messages);
    let (serve, gateway) = serve_and_gateway(&nats, &file, 10000);
    // a subscriber of the gateway while the file plays: the contract, checked by the client
    let through_gateway = gateway
        .command(&[
            "subscribe",
            "AAPL",
            "MSFT",
            "--depth",
            "5",
            "--json",
            "--seconds",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("subscribe through the gateway");
    // read as it writes: a client blocked on a full pipe would stop reading its stream
    let through_gateway = std::thread::spawn(move || through_gateway.wait_with_output());
    let started = Instant::now();
    wait_file_done(&serve, messages);
    books_agree(&serve, &gateway);
    common::assert_books_match_replay(&serve, &file, &SYMBOLS);
    let out = through_gateway
        .join()
        .expect("the subscriber's thread")
        .expect("the subscriber's output");
    // exit status 3 would mean the client found the contract broken
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        text(&out.stderr)
    );
    let updates = json_lines(&text(&out.stdout));
    let counts = common::check_stream(&updates);
    assert!(
        counts.get("AAPL").is_some_and(|n| *n > 10),
        "the gateway streamed AAPL's changes within {:?}: {counts:?}",
        started.elapsed()
    );
    // status, orders and trades come through too, each stream's contract checked by the
    // client (exit status 3 if broken)
    let status = ok(&gateway.run(&["status", "AAPL", "--json"]), "status");
    assert!(status.contains("AAPL"), "{status}");
    let orders = json_lines(&ok(
        &gateway.run(&["orders", "AAPL", "--json", "--seconds", "2"]),
        "orders through the gateway",
    ));
    let served = json_lines(&ok(
        &serve.run(&["orders", "AAPL", "--json", "--seconds", "2"]),
        "orders from serve",
    ));
    // the last line is each symbol's queues at the end, as `replay --json --orders` prints them
    let queues = |lines: &[serde_json::Value]| {
        lines
            .last()
            .map(|l| (l["bid_orders"].clone(), l["ask_orders"].clone()))
    };
    assert!(
        orders
            .last()
            .is_some_and(|l| l["bid_orders"].as_array().is_some_and(|b| !b.is_empty())),
        "{:?}",
        orders.last()
    );
    assert_eq!(
        queues(&orders),
        queues(&served),
        "the gateway's order queues of AAPL are serve's"
    );
    let _ = nats;
}

#[test]
fn spoofed_and_mangled_messages_on_nats_resync_the_gateway_never_corrupt_it() {
    let _serial = one_at_a_time();
    let nats = Nats::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let messages = 40_000;
    let file = day(dir.path(), messages);
    let (serve, gateway) = serve_and_gateway(&nats, &file, 10000);
    // bytes that are no BookUpdate, and a well-formed delta out of sequence with a made-up
    // level: the first is dropped and counted, the second breaks the subject, which resyncs
    nats.publish_raw("pinbook.v2.east.levels.AAPL", b"\xff\xff\xffnot protobuf");
    let spoof: &[u8] = &[
        0x12, 0x12, // field 2 (delta), 18 bytes
        0x0a, 0x04, b'A', b'A', b'P', b'L', // symbol
        0x10, 0x01, // seq 1
        0x18, 0x01, // side bid
        0x22, 0x06, 0x08, 0xe8, 0x07, 0x10, 0xe8, 0x07, // level price 1000, shares 1000
    ];
    nats.publish_raw("pinbook.v2.east.levels.AAPL", spoof);
    nats.publish_raw("pinbook.v2.east.nonsense.AAPL", b"x");
    wait_file_done(&serve, messages);
    books_agree(&serve, &gateway);
    common::assert_books_match_replay(&serve, &file, &SYMBOLS);
    let metrics = reqwest_metrics(&gateway);
    assert!(
        metrics.contains("pinbook_gateway_bad_messages_total{reason=\"undecodable\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pinbook_gateway_bad_messages_total{reason=\"subject\"} 1"),
        "{metrics}"
    );
    let breaks = metric(
        &metrics,
        "pinbook_gateway_subject_breaks_total{stream=\"levels\"}",
    );
    assert!(
        breaks >= 1.0,
        "the spoofed delta broke AAPL's level subject: {metrics}"
    );
}

/// The independent client's Python (scripts/grpcio-env makes it once) and its stubs.
fn grpcio_python() -> (String, String) {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/grpcio-env"))
        .output()
        .expect("run scripts/grpcio-env");
    assert!(
        out.status.success(),
        "scripts/grpcio-env (python3-venv, and PyPI for grpcio) failed: {}",
        text(&out.stderr)
    );
    let python = text(&out.stdout).trim().to_owned();
    let stubs = std::path::Path::new(&python)
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the virtualenv of the Python")
        .join("stubs")
        .display()
        .to_string();
    (python, stubs)
}

#[test]
fn an_independent_grpcio_client_finds_serve_and_a_gateway_alike() {
    let _serial = one_at_a_time();
    let (python, stubs) = grpcio_python();
    let nats = Nats::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let messages = 60_000;
    let file = day(dir.path(), messages);
    let (serve, gateway) = serve_and_gateway(&nats, &file, 10000);
    // one client of each for longer than the rest of the file takes: it sees the end
    let clients: Vec<_> = [&serve, &gateway]
        .iter()
        .map(|server| {
            let child = Command::new(&python)
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/python/contract_client.py"
                ))
                .args([&stubs, &server.grpc, "10", "10"])
                .args(SYMBOLS)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the Python client");
            std::thread::spawn(move || child.wait_with_output().expect("its output"))
        })
        .collect();
    wait_file_done(&serve, messages);
    for (client, name) in clients.into_iter().zip(["serve", "gateway"]) {
        let out = client.join().expect("the client's thread");
        let report: serde_json::Value = serde_json::from_str(text(&out.stdout).trim())
            .unwrap_or_else(|e| panic!("{name}: {e}: {}", text(&out.stderr)));
        assert!(
            out.status.success(),
            "{name}: the contract broken: {}",
            report["violations"]
        );
        for symbol in SYMBOLS {
            assert!(
                report["updates"][symbol].as_u64().is_some_and(|n| n > 1),
                "{name}: {symbol} streamed: {report}"
            );
            let (bids, asks) = book(&serve, symbol).expect("serve's book");
            let held = &report["books"][symbol];
            // serve's book at depth 1000, the client's at its depth 10
            let top = |side: &serde_json::Value| {
                serde_json::Value::Array(
                    side.as_array()
                        .map_or(Vec::new(), |l| l.iter().take(10).cloned().collect()),
                )
            };
            assert_eq!(held["bids"], top(&bids), "{name}: {symbol} bids at the end");
            assert_eq!(held["asks"], top(&asks), "{name}: {symbol} asks at the end");
        }
    }
}

fn signal(server: &Server, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill {signal}");
}

/// Whether `server`'s book of `symbol` says it is stale.
fn is_stale(server: &Server, symbol: &str) -> Result<bool, String> {
    let out = server.run(&["book", symbol, "--json"]);
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    json_lines(&text(&out.stdout))[0]["stale"]
        .as_bool()
        .ok_or_else(|| "no stale field".into())
}

#[test]
fn a_silent_publisher_flags_the_gateways_books_stale_until_it_beats_again() {
    let _serial = one_at_a_time();
    let nats = Nats::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let messages = 50_000;
    let file = day(dir.path(), messages);
    let (serve, gateway) = serve_and_gateway(&nats, &file, 5000);
    eventually("AAPL through the gateway, not stale", STARTUP, || {
        if is_stale(&gateway, "AAPL")? {
            Err("stale".to_owned())
        } else {
            Ok(())
        }
    });
    let subscriber = gateway
        .command(&["subscribe", "AAPL", "--json", "--seconds", "25"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("subscribe through the gateway");
    let subscriber = std::thread::spawn(move || subscriber.wait_with_output());
    std::thread::sleep(Duration::from_secs(1));
    // serve stops (its NATS connection stays open, it only stops beating and publishing):
    // after 5 of its 1 s heartbeats the gateway's books say they may be old
    signal(&serve, "-STOP");
    eventually(
        "the gateway flags AAPL stale",
        Duration::from_secs(20),
        || {
            is_stale(&gateway, "AAPL")?
                .then_some(())
                .ok_or_else(|| "not yet".to_owned())
        },
    );
    signal(&serve, "-CONT");
    eventually("AAPL fresh again", Duration::from_secs(20), || {
        if is_stale(&gateway, "AAPL")? {
            Err("stale".to_owned())
        } else {
            Ok(())
        }
    });
    wait_file_done(&serve, messages);
    books_agree(&serve, &gateway);
    common::assert_books_match_replay(&gateway, &file, &SYMBOLS);
    let out = subscriber
        .join()
        .expect("the subscriber's thread")
        .expect("the subscriber's output");
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        text(&out.stderr)
    );
    let updates = json_lines(&text(&out.stdout));
    common::check_stream(&updates);
    // the subscriber was told: a resync, a stale snapshot, later a resync and a fresh one
    let told: Vec<(String, bool)> = updates
        .iter()
        .filter_map(|u| match u["type"].as_str() {
            Some("resync") => Some((u["reason"].as_str().unwrap_or("").to_owned(), false)),
            Some("snapshot") => Some(("snapshot".to_owned(), u["stale"] == true)),
            _ => None,
        })
        .collect();
    let stale_at = told
        .iter()
        .position(|(kind, stale)| kind == "snapshot" && *stale)
        .unwrap_or_else(|| panic!("no stale snapshot: {told:?}"));
    assert_eq!(
        told[stale_at - 1].0,
        "RESYNC_REASON_UPSTREAM_GAP",
        "a resync said why: {told:?}"
    );
    assert!(
        told[stale_at + 1..]
            .iter()
            .any(|(kind, stale)| kind == "snapshot" && !*stale),
        "a fresh snapshot followed: {told:?}"
    );
}

/// The gateway's metrics page.
fn reqwest_metrics(server: &Server) -> String {
    let mut conn = TcpStream::connect(&server.metrics).expect("connect to metrics");
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.metrics
    )
    .expect("request metrics");
    let mut body = String::new();
    conn.read_to_string(&mut body).expect("read metrics");
    body
}

/// The value of the series `name` (with its labels) on a metrics page, 0 if absent.
fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Every node's URL, `first` first.
fn urls(cluster: &[Nats], first: usize) -> String {
    let mut order: Vec<usize> = (0..cluster.len()).collect();
    order.rotate_left(first);
    order
        .iter()
        .map(|&i| cluster[i].url())
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn a_cluster_loses_a_node_then_a_primary_and_clients_of_both_gateways_only_see_resyncs() {
    let _serial = one_at_a_time();
    let mut cluster = Nats::cluster();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let messages = 60_000;
    let file = day(dir.path(), messages);
    let feed = format!("file:{file}");
    let partition = |name: &str, symbols: &str, instance: &str, standby: bool, first: usize| {
        let nats = urls(&cluster, first);
        let mut args = vec![
            "--feed",
            &feed,
            "--file-rate",
            "5000",
            "--symbols",
            symbols,
            "--publish",
            &nats,
            "--partition",
            name,
            "--instance",
            instance,
        ];
        if standby {
            args.push("--standby");
        }
        let server = Server::start_with(&args);
        let first = symbols.split(',').next().unwrap_or("AAPL");
        eventually("the partition serves its first symbol", STARTUP, || {
            book(&server, first).map(|_| ())
        });
        server
    };
    let primary_a = partition("a", "AAPL,MSFT", "a-primary", false, 0);
    let standby_a = partition("a", "AAPL,MSFT", "a-standby", true, 1);
    let b = partition("b", "NVDA", "b-primary", false, 2);
    let gateways: Vec<Server> = (0..2)
        .map(|i| {
            let g = Server::start_gateway(&["--from", &urls(&cluster, i), "--partitions", "a,b"]);
            eventually("the gateway serves both partitions", STARTUP, || {
                book(&g, "AAPL")
                    .and_then(|_| book(&g, "NVDA"))
                    .map(|_| ())
                    .map_err(|e| format!("{e}\ngateway log:\n{}", g.log()))
            });
            g
        })
        .collect();
    // each read as it writes (a client blocked on a full pipe would stop reading its stream)
    let clients: Vec<std::thread::JoinHandle<std::process::Output>> = gateways
        .iter()
        .flat_map(|g| {
            ["AAPL", "NVDA"]
                .map(|symbol| {
                    g.command(&[
                        "subscribe",
                        symbol,
                        "--depth",
                        "10",
                        "--json",
                        "--seconds",
                        "25",
                    ])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("a subscriber")
                })
                .map(|child: Child| {
                    std::thread::spawn(move || child.wait_with_output().expect("output"))
                })
        })
        .collect();
    // a node goes, then partition a's primary; its standby takes over
    std::thread::sleep(Duration::from_secs(2));
    drop(cluster.remove(0));
    std::thread::sleep(Duration::from_secs(2));
    let killed = Command::new("kill")
        .args(["-9", &primary_a.pid().to_string()])
        .status()
        .expect("kill the primary");
    assert!(killed.success());
    wait_file_done(&standby_a, messages);
    for gateway in &gateways {
        eventually(
            "the gateway's books are replay's",
            Duration::from_secs(60),
            || {
                for symbol in SYMBOLS {
                    let owner = if symbol == "NVDA" { &b } else { &standby_a };
                    let want = book(owner, symbol)?;
                    let got = book(gateway, symbol)?;
                    if want != got {
                        return Err(format!("{symbol}: gateway {got:?}, serve {want:?}"));
                    }
                }
                Ok(())
            },
        );
    }
    common::assert_books_match_replay(&standby_a, &file, &["AAPL", "MSFT"]);
    common::assert_books_match_replay(&b, &file, &["NVDA"]);
    let mut resyncs = 0;
    for client in clients {
        let out = client.join().expect("a subscriber's output");
        assert!(
            out.status.success(),
            "{}: {}",
            out.status,
            text(&out.stderr)
        );
        let updates = json_lines(&text(&out.stdout));
        common::check_stream(&updates);
        resyncs += updates.iter().filter(|u| u["type"] == "resync").count();
    }
    assert!(
        resyncs >= 2,
        "the switch to the standby was announced to AAPL's clients"
    );
}
