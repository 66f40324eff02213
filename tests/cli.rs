//! The binary as a user runs it: help, version, topology, and a clear error on bad input.

use std::process::Command;

fn pinbook(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pinbook"))
        .args(args)
        .output()
        .expect("run the pinbook binary")
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
fn unknown_command_is_a_usage_error() {
    let out = pinbook(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}

#[test]
fn gen_then_replay_builds_books_and_prints_json() {
    let dir = std::env::temp_dir().join(format!("pinbook-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("day.itch");
    let file = file.to_str().unwrap();
    let out = pinbook(&[
        "gen",
        file,
        "--messages",
        "20000",
        "--symbols",
        "5",
        "--seed",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

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
    std::fs::remove_dir_all(&dir).ok();
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
    let dir = std::env::temp_dir().join(format!("pinbook-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cut.itch");
    let full = dir.join("full.itch");
    let out = pinbook(&["gen", full.to_str().unwrap(), "-n", "100", "-k", "2"]);
    assert!(out.status.success());
    let bytes = std::fs::read(&full).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 5]).unwrap();
    let out = pinbook(&["replay", file.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("99 messages"), "{stdout}");
    assert!(stdout.contains(r#"frames {"truncated": 1}"#), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}
