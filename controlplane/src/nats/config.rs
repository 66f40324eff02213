//! `[nats]`: where `serve` publishes its books, and where a gateway reads them.

use serde::{Deserialize, Serialize};

/// `[nats]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// `serve`: NATS servers to publish every update on (`nats://HOST:PORT` each; members of
    /// one cluster). Empty: no publishing.
    pub publish: Vec<String>,
    /// `gateway`: NATS servers to read the books from.
    pub from: Vec<String>,
    /// `serve`: the partition this instance publishes (letters, digits, `-`, `_`).
    pub partition: String,
    /// `gateway`: the partitions it serves, each a shard of the gateway.
    pub partitions: Vec<String>,
    /// How often a symbol's changed snapshot goes to the key-value bucket, in milliseconds.
    pub snapshot_ms: u64,
    /// `serve`: names this instance in its heartbeats; empty: `HOSTNAME-PID`. Of two active
    /// instances of a partition, the one with the greater name yields.
    pub instance: String,
    /// `serve`: a standby of its partition, publishing only while no other instance does.
    pub standby: bool,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            publish: Vec::new(),
            from: Vec::new(),
            partition: "default".into(),
            partitions: vec!["default".into()],
            snapshot_ms: 1000,
            instance: String::new(),
            standby: false,
        }
    }
}

impl NatsConfig {
    /// What is wrong with it, if anything.
    ///
    /// # Errors
    /// The first problem, said for the user.
    pub fn check(&self) -> Result<(), String> {
        super::valid_partition(&self.partition)?;
        if self.partitions.is_empty() {
            return Err("nats.partitions: name at least one partition to serve".into());
        }
        for p in &self.partitions {
            super::valid_partition(p)?;
        }
        if self.snapshot_ms == 0 {
            return Err(
                "nats.snapshot_ms: 0 would store snapshots without pause; give at least 1".into(),
            );
        }
        for server in self.publish.iter().chain(&self.from) {
            if !(server.starts_with("nats://") || server.starts_with("tls://")) {
                return Err(format!(
                    "NATS server {server:?}: give nats://HOST:PORT (or tls://HOST:PORT)"
                ));
            }
        }
        Ok(())
    }

    /// The instance name heartbeats carry.
    pub fn instance(&self) -> String {
        if self.instance.is_empty() {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "pinbook".into());
            format!("{host}-{}", std::process::id())
        } else {
            self.instance.clone()
        }
    }
}
