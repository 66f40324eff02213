//! One hostile MoldUDP64 datagram in the middle of a real feed: `pinbook serve --feed udp:…`
//! fed by `pinbook publish`, one forged datagram sent from the test while the feed runs. The
//! books must end exactly as an offline replay of the file builds them, not stale, and the
//! datagram must be counted under its own name.

mod common;

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{
    BIN, Server, assert_books_match_replay, eventually, free_udp_addr, generated_day, shard_counter,
};
use dataplane::feed::moldudp64::{encode_end_of_session, encode_heartbeat, encode_packet};

/// Messages in the generated file: at 4000 msg/s the feed runs about a second, long enough to
/// land a datagram in the middle, small enough for loopback UDP to lose nothing.
const MESSAGES: u64 = 4000;
const RATE: &str = "4000";
const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "NVDA"];
/// `pinbook publish`'s session name.
const SESSION: &[u8; 10] = b"PINBOOK   ";

/// A generated day, a server reading UDP on 127.0.0.1, and the publisher feeding it.
struct Feed {
    _dir: tempfile::TempDir,
    file: String,
    server: Server,
    target: String,
    publisher: Child,
}

impl Feed {
    /// Starts the server on `udp:127.0.0.1:PORT{filter}` and the publisher, and waits until the
    /// shard has taken some of the feed (so what is sent next lands mid-stream).
    fn start(filter: &str) -> Feed {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = generated_day(dir.path(), MESSAGES);
        let target = free_udp_addr();
        let server = Server::start_with(&["--feed", &format!("udp:{target}{filter}")]);
        let publisher = Command::new(BIN)
            .args(["publish", &file, "--udp", &target, "--rate", RATE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run pinbook publish");
        let feed = Feed {
            _dir: dir,
            file,
            server,
            target,
            publisher,
        };
        eventually(
            "the shard took part of the feed",
            Duration::from_secs(10),
            || match feed.shard("messages") {
                n if n > 0 => Ok(()),
                n => Err(format!("{n} messages")),
            },
        );
        feed
    }

    /// Counter `name` of the only shard (GetStats).
    fn shard(&self, name: &str) -> u64 {
        shard_counter(&self.server, name)
    }

    /// Sends `datagram` to the server from a socket of its own, bound to `from`.
    fn forge(&self, from: &str, datagram: &[u8]) {
        let socket = UdpSocket::bind(from).expect("bind a forging socket");
        socket.send_to(datagram, &self.target).expect("send");
    }

    /// Waits for the publisher and the shard to finish the file, then checks the books and
    /// that `counter` reached `expected`.
    fn finish(mut self, counter: &str, expected: u64) {
        let status = self.publisher.wait().expect("publish exits");
        assert!(status.success(), "publish failed: {status}");
        eventually(
            "the shard took the whole file",
            Duration::from_secs(10),
            || match (self.shard("messages"), self.shard(counter)) {
                (MESSAGES, n) if n == expected => Ok(()),
                (m, n) => Err(format!("{m} messages, {counter} {n}")),
            },
        );
        assert_books_match_replay(&self.server, &self.file, &SYMBOLS);
        for quiet in ["gaps", "restarts", "duplicates"] {
            assert_eq!(self.shard(quiet), 0, "{quiet}; log:\n{}", self.server.log());
        }
    }
}

#[test]
fn a_packet_overrunning_its_count_is_skipped_whole() {
    let feed = Feed::start("");
    // count 1000, three messages present, at about the next sequence number: it used to move
    // the sequence 1000 ahead, so the real messages after it were dropped as duplicates
    let next = feed.shard("messages") + 1;
    let mut bad = Vec::new();
    encode_packet(SESSION, next, &[b"x", b"y", b"z"], &mut bad).expect("encode");
    bad[18..20].copy_from_slice(&1000u16.to_be_bytes());
    feed.forge("127.0.0.1:0", &bad);
    feed.finish("malformed", 1);
}

#[test]
fn far_future_sequences_do_not_freeze_the_feed() {
    let feed = Feed::start("");
    let mut heartbeat = Vec::new();
    encode_heartbeat(SESSION, 1 << 62, &mut heartbeat);
    feed.forge("127.0.0.1:0", &heartbeat);
    let mut end = Vec::new();
    encode_end_of_session(SESSION, 1 << 40, &mut end);
    feed.forge("127.0.0.1:0", &end);
    let mut messages = Vec::new();
    encode_packet(SESSION, 1 << 50, &[b"x"], &mut messages).expect("encode");
    feed.forge("127.0.0.1:0", &messages);
    feed.finish("implausible_sequence", 3);
}

#[test]
fn a_stray_session_does_not_wipe_the_books() {
    let feed = Feed::start("");
    let mut stray = Vec::new();
    encode_packet(b"EVIL000001", 1, &[b"x"], &mut stray).expect("encode");
    feed.forge("127.0.0.1:0", &stray);
    feed.finish("foreign_session", 1);
}

#[test]
fn datagrams_from_another_sender_are_dropped() {
    // The publisher sends from 127.0.0.1; the forger from 127.0.0.2, another loopback address
    // (Linux answers for all of 127.0.0.0/8).
    if UdpSocket::bind("127.0.0.2:0").is_err() {
        eprintln!("skipping: 127.0.0.2 cannot be bound here");
        return;
    }
    let feed = Feed::start("@127.0.0.1");
    // in sequence and of the right session: only the sender gives it away
    let next = feed.shard("messages") + 1;
    let mut forged = Vec::new();
    encode_heartbeat(SESSION, next + 10, &mut forged);
    feed.forge("127.0.0.2:0", &forged);
    feed.finish("foreign_sender", 1);
}
