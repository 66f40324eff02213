//! Book streams on NATS: [`publisher`] puts every update of every published symbol on a NATS
//! server or cluster ([`subject`] is the scheme), for gateways and any NATS client to read.
//!
//! Guaranteed on every update subject, for as long as one instance publishes the symbol: the
//! subscription contract of `proto/pinbook/v2/book.proto` (seq contiguous from 1, a Resync
//! before any discontinuity, a snapshot after it, checksums). A reader that sees seq 1 again
//! without a Resync is reading a new instance (a restart, or a standby taking over) and starts
//! over from that snapshot. What NATS itself loses (a reader too slow for its server, a node
//! going down) shows as a seq gap, never as a wrong book.

pub mod config;
pub mod counters;
pub mod election;
pub mod publisher;
pub mod subject;

/// The NATS header naming the instance that sent a heartbeat.
pub const INSTANCE_HEADER: &str = "Pinbook-Instance";

/// The NATS client's addresses of `servers` (`nats://HOST:PORT` each, user and password
/// allowed).
///
/// # Errors
/// The first address the client does not take, and why.
pub fn server_addrs(servers: &[String]) -> Result<Vec<async_nats::ServerAddr>, String> {
    if servers.is_empty() {
        return Err("no NATS server given".into());
    }
    servers
        .iter()
        .map(|s| {
            s.parse::<async_nats::ServerAddr>()
                .map_err(|e| format!("{s:?}: {e}"))
        })
        .collect()
}

/// Longest partition name.
pub const MAX_PARTITION: usize = 32;

/// Checks a partition's name: 1 to 32 letters, digits, `-` or `_` (it names a subject token
/// and a key-value bucket).
///
/// # Errors
/// What is wrong with it, for the user.
pub fn valid_partition(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_PARTITION {
        return Err(format!(
            "partition {name:?}: give 1 to {MAX_PARTITION} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "partition {name:?}: {c:?} is not allowed; use letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn partitions_are_tokens_and_bucket_names() {
        assert!(super::valid_partition("default").is_ok());
        assert!(super::valid_partition("east_1-a").is_ok());
        for bad in ["", "a.b", "a b", "*", "a=b", &"x".repeat(33)] {
            assert!(super::valid_partition(bad).is_err(), "{bad}");
        }
    }
}
