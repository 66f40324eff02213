//! The binary as a user runs it: help, version, topology, and a clear error on bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

fn pinbook(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pinbook"))
        .args(args)
        .output()
        .expect("run the pinbook binary")
}

/// `pinbook gen DIR/day.itch ARGS…`, which must succeed; the file written.
fn generate(dir: &Path, args: &[&str]) -> PathBuf {
    let file = dir.join("day.itch");
    let out = pinbook(&[&["gen", file.to_str().expect("a UTF-8 path")][..], args].concat());
    assert!(
        out.status.success(),
        "pinbook gen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

#[test]
fn version_names_the_crate_version() {
    let out = pinbook(&["--version"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("pinbook {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_the_commands() {
    let out = pinbook(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("topology"));
}

#[test]
fn topology_describes_every_allowed_cpu() {
    let out = pinbook(&["topology"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.to_lowercase().contains("numa"), "{stdout}");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for cpu in 0..cpus {
        assert!(
            stdout.contains(&format!("cpu {cpu}")),
            "cpu {cpu} missing from:\n{stdout}"
        );
    }
}

#[test]
fn a_malformed_symbol_is_a_usage_error() {
    for args in [
        &["subscribe", "AA PL"][..],
        &["book", "TOOLONGNAME"],
        &["symbols", "add", ""],
    ] {
        let out = pinbook(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a symbol"), "{args:?}: {err}");
    }
}

#[test]
fn unknown_command_is_a_usage_error() {
    let out = pinbook(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}

#[test]
fn gen_then_replay_builds_books_and_prints_json() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = generate(
        dir.path(),
        &["--messages", "20000", "--symbols", "5", "--seed", "3"],
    );
    let file = file.to_str().expect("a UTF-8 path");

    let out = pinbook(&[
        "replay",
        file,
        "--json",
        "--depth",
        "3",
        "--symbols",
        "AAPL,MSFT",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["messages"], 20000);
    let books = json["books"].as_object().unwrap();
    assert_eq!(books.len(), 2);
    for (symbol, book) in books {
        let bids = book["bids"].as_array().unwrap();
        let asks = book["asks"].as_array().unwrap();
        assert!(!bids.is_empty() && bids.len() <= 3, "{symbol}: {bids:?}");
        assert!(!asks.is_empty() && asks.len() <= 3, "{symbol}: {asks:?}");
        // best first: bids descending, asks ascending, and the book is not crossed
        let price = |l: &serde_json::Value| l[0].as_u64().unwrap();
        assert!(bids.windows(2).all(|w| price(&w[0]) > price(&w[1])));
        assert!(asks.windows(2).all(|w| price(&w[0]) < price(&w[1])));
        assert!(price(&bids[0]) < price(&asks[0]));
        for level in bids.iter().chain(asks) {
            assert!(level[1].as_u64().unwrap() > 0 && level[2].as_u64().unwrap() > 0);
        }
    }
    // the same file twice gives the same books
    let again = pinbook(&[
        "replay",
        file,
        "--json",
        "--depth",
        "3",
        "--symbols",
        "AAPL,MSFT",
    ]);
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn replay_reports_bad_input_clearly() {
    let out = pinbook(&["replay", "/nonexistent/day.itch"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open ITCH file /nonexistent/day.itch"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("No such file").count(),
        1,
        "cause said once: {stderr}"
    );

    let out = pinbook(&["replay", "/dev/null", "--symbols", "AAPL"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no asked-for symbol in the file is an error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("none of the symbols AAPL"));

    let out = pinbook(&["replay", "/dev/null", "--depth", "0"]);
    assert_eq!(out.status.code(), Some(2), "a bad flag is a usage error");

    // a truncated file: the whole frames are replayed, the cut one is counted
    let dir = tempfile::tempdir().expect("a temporary directory");
    let full = generate(dir.path(), &["-n", "100", "-k", "2"]);
    let file = dir.path().join("cut.itch");
    let bytes = std::fs::read(&full).expect("read the generated file");
    std::fs::write(&file, &bytes[..bytes.len() - 5]).expect("write the cut file");
    let out = pinbook(&["replay", file.to_str().expect("a UTF-8 path")]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("99 messages"), "{stdout}");
    assert!(stdout.contains(r#"frames {"truncated": 1}"#), "{stdout}");

    // two bytes spliced in at a frame boundary: the framing is lost once, and said so
    let mut at = 0;
    while at < bytes.len() / 2 {
        at += 2 + usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
    }
    let spliced = dir.path().join("spliced.itch");
    std::fs::write(
        &spliced,
        [&bytes[..at], &[0xFF, 0xFF][..], &bytes[at..]].concat(),
    )
    .expect("write the spliced file");
    let out = pinbook(&["replay", spliced.to_str().expect("a UTF-8 path")]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the framing was lost once (a damaged or spliced file?)"),
        "{stderr}"
    );
}

/// What a receiver saw of a `pinbook publish` run.
#[derive(Debug, Default)]
struct Received {
    message_packets: u64,
    messages: u64,
    /// Packets whose sequence was not the one after the packet before.
    discontinuities: u64,
    ends: u64,
    /// The sequence of the end-of-session packets (one past the last message).
    end_sequence: u64,
    last_was_end: bool,
}

/// Runs `pinbook publish FILE --udp <a local socket> EXTRA…` and receives until three
/// end-of-session packets arrived (or 10 s passed).
fn publish_and_receive(file: &str, extra: &[&str]) -> (Received, std::process::Output) {
    use dataplane::feed::moldudp64::{Packet, PacketKind};
    use std::time::{Duration, Instant};

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let target = socket.local_addr().unwrap().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_pinbook"))
        .args(["publish", file, "--udp", &target])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the pinbook binary");
    let mut seen = Received::default();
    let mut next = 1;
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.ends < 3 && Instant::now() < deadline {
        let Ok(len) = socket.recv(&mut buf) else {
            continue;
        };
        let packet = Packet::parse(&buf[..len]).expect("a MoldUDP64 packet");
        assert_eq!(packet.session(), b"PINBOOK   ");
        seen.last_was_end = packet.kind() == PacketKind::EndOfSession;
        match packet.kind() {
            PacketKind::Messages => {
                assert!(len <= 1400, "a packet of {len} bytes");
                seen.message_packets += 1;
                for message in packet.messages() {
                    message.expect("a whole message block");
                    seen.messages += 1;
                }
                seen.discontinuities += u64::from(packet.sequence() != next);
                next = packet.next_sequence();
            }
            PacketKind::EndOfSession => {
                seen.ends += 1;
                seen.end_sequence = packet.sequence();
            }
            PacketKind::Heartbeat => {}
        }
    }
    (seen, child.wait_with_output().expect("publish exits"))
}

#[test]
fn publish_sends_the_whole_file_then_ends_the_session() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = generate(dir.path(), &["-n", "2000", "-k", "3"]);
    let file = file.to_str().expect("a UTF-8 path");

    // 20 k msg/s: loopback UDP drops what overflows the receiver's socket buffer, so the rate
    // leaves this reader slack even on a loaded machine
    let (seen, out) = publish_and_receive(file, &["--rate", "20000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(seen.messages, 2000, "{seen:?}");
    assert_eq!(seen.discontinuities, 0, "{seen:?}");
    assert_eq!((seen.ends, seen.end_sequence), (3, 2001), "{seen:?}");
    assert!(seen.last_was_end);
    assert!(
        stderr.contains(&format!(
            "published 2000 messages in {} packets",
            seen.message_packets
        )),
        "{stderr}"
    );

    let (dropping, out) = publish_and_receive(file, &["--rate", "20000", "--drop-every", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // (how many messages share a packet depends on timing, so the two runs' packet counts
    // are not compared)
    assert!(dropping.messages < 2000, "{dropping:?}");
    assert!(
        dropping.discontinuities >= dropping.message_packets - 1,
        "{dropping:?}"
    );
    assert_eq!(
        dropping.end_sequence, 2001,
        "dropped packets still use their numbers"
    );
    assert!(stderr.contains("packets dropped on purpose"), "{stderr}");
}

#[test]
fn publish_reports_bad_arguments_clearly() {
    let out = pinbook(&["publish", "/nonexistent/day.itch", "--udp", "127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open ITCH file /nonexistent/day.itch"),
        "{stderr}"
    );

    let out = pinbook(&["publish", "/dev/null", "--udp", "no-port-here"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is empty"), "{stderr}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = generate(dir.path(), &["-n", "100", "-k", "2"]);
    let file = file.to_str().expect("a UTF-8 path");
    let out = pinbook(&["publish", file, "--udp", "no-port-here"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot resolve --udp \"no-port-here\""),
        "{stderr}"
    );

    for bad in [
        &["--rate", "fast"][..],
        &["--batch", "0"],
        &["--session", "ELEVENCHARS"],
    ] {
        let out = pinbook(&[&["publish", file, "--udp", "127.0.0.1:9"][..], bad].concat());
        assert_eq!(out.status.code(), Some(2), "{bad:?} is a usage error");
    }
}

#[test]
fn replay_orders_lists_every_levels_queue_as_the_reference_book_holds_it() {
    use dataplane::book::reference::ReferenceBooks;
    use dataplane::feed::binaryfile::{BinaryFile, Frames};
    use dataplane::feed::itch::{Side, parse};

    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = generate(
        dir.path(),
        &["--messages", "50000", "--symbols", "4", "--seed", "9"],
    );
    let mut reference = ReferenceBooks::new();
    let bytes = BinaryFile::open(&file).expect("the generated file");
    for frame in Frames::new(bytes.bytes()).flatten() {
        if let Ok(message) = parse(frame) {
            reference.apply(&message);
        }
    }
    let out = pinbook(&[
        "replay",
        file.to_str().expect("a UTF-8 path"),
        "--json",
        "--orders",
        "--depth",
        "1000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut compared = 0;
    for locate in reference.locates() {
        let Some(symbol) = reference.symbol(locate) else {
            continue;
        };
        let book = &json["books"][symbol];
        for (side, key, levels) in [
            (Side::Buy, "bid_orders", "bids"),
            (Side::Sell, "ask_orders", "asks"),
        ] {
            let want: Vec<Vec<(u64, u32)>> = reference
                .levels(locate, side)
                .iter()
                .map(|&(price, _, _)| reference.queue(locate, side, price))
                .collect();
            let got: Vec<Vec<(u64, u32)>> = serde_json::from_value(book[key].clone())
                .expect("[[reference, shares], …] per level");
            assert_eq!(got, want, "{symbol} {key}");
            assert_eq!(book[levels].as_array().map(Vec::len), Some(want.len()));
            compared += want.iter().map(Vec::len).sum::<usize>();
        }
    }
    assert!(compared > 100, "orders compared: {compared}");
}
