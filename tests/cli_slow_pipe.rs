//! `pinbook subscribe` writing to a pipe nobody reads for a while is a slow client like any
//! other: the server resyncs it (SLOW_CONSUMER) and its contract checker accepts that, and the
//! stream never dies of an HTTP/2 protocol error (h2 closes a connection whose peer leaves
//! too many small DATA frames unread: `RESOURCE_EXHAUSTED: h2 protocol error`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::{Server, check_stream, json_lines, text};

/// `pinbook_snapshots_sent_total{reason="slow_consumer"}` on the server's metrics endpoint.
fn slow_consumer_snapshots(server: &Server) -> u64 {
    let mut http = TcpStream::connect(&server.metrics).expect("connect to the metrics endpoint");
    write!(
        http,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.metrics
    )
    .expect("send the request");
    let mut body = String::new();
    http.read_to_string(&mut body).expect("read the metrics");
    body.lines()
        .find_map(|l| l.strip_prefix("pinbook_snapshots_sent_total{reason=\"slow_consumer\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_subscriber_writing_to_a_stalled_pipe_is_resynced_not_cut_off() {
    let config = tempfile::NamedTempFile::new().expect("a config file");
    // a small queue, so 3 s of not reading overflows it; a long stall time and many resyncs
    // allowed, so it is not closed for that stall, nor for reading slower than the feed later
    std::fs::write(
        config.path(),
        "[subscribers]\nqueue = 1024\nstall_ms = 60000\nmax_resyncs = 1000\n",
    )
    .expect("write the config");
    let server = Server::start_with(&[
        "--sim-rate",
        "40000",
        "--sim-symbols",
        "5",
        "--config",
        config.path().to_str().expect("a UTF-8 path"),
    ]);
    server.wait_serving(&[]);
    let mut child = server
        .command(&[
            "subscribe",
            "AAPL",
            "--depth",
            "1000",
            "--json",
            "--seconds",
            "6",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the subscriber");
    // as `| (sleep 3; cat)`: the pipe fills and the subscriber's writes block
    std::thread::sleep(Duration::from_secs(3));
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("its stdout")
        .read_to_string(&mut stdout)
        .expect("read its stdout");
    let out = child.wait_with_output().expect("its exit");
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "subscribe ended {}: {stderr}\nserver log:\n{}",
        out.status,
        server.log()
    );
    assert!(!stderr.contains("h2 protocol error"), "{stderr}");
    assert!(!stderr.contains("CONTRACT VIOLATION"), "{stderr}");
    let updates = json_lines(&stdout);
    check_stream(&updates);
    assert!(
        updates
            .iter()
            .any(|u| u["type"] == "resync" && u["reason"] == "RESYNC_REASON_SLOW_CONSUMER"),
        "no SLOW_CONSUMER resync in {} updates",
        updates.len()
    );
    assert!(slow_consumer_snapshots(&server) > 0);
}
