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
