//! `pinbook gateway`: the book service without a data plane, its books from NATS.
//!
//! Each partition read becomes one [`remote_shard`] of a data plane built with
//! `DataPlane::external`: the intake ([`intake`]) moves the partition's subjects to it, it
//! keeps each symbol's [`replica`]s and sends the hub the events a data-plane shard would. The
//! server above — hub, book service, admin, limits, TLS, metrics — is `serve`'s, unchanged,
//! so a client cannot tell a gateway from `serve`: the same contract on every stream, the same
//! statuses. What the gateway adds to the path is NATS's delivery and one more hub.
//!
//! Guaranteed: a book a gateway streams is, update for update, the one the publisher's
//! subscription streamed, or it is resynced (Resync, then a snapshot) when anything between
//! them broke off — a NATS node lost, a message dropped or mangled, a publisher restarted.
//! When the partition's publisher falls silent (no active heartbeat for
//! [`crate::nats::election::READER_SILENCE`] of its intervals), every book of the partition is
//! flagged stale until one beats again; then each is sent again, no longer stale.

pub mod intake;
pub mod remote_shard;
pub mod replica;

use dataplane::runtime::{DataPlane, ShardInfo};

use crate::nats::subject::Subjects;

/// Updates on their way from the intake to a remote shard.
const INBOUND: usize = 65_536;

/// Events a remote shard's ring holds (a resync of a large book goes in whole).
const EVENT_RING: usize = 1 << 20;

/// What `pinbook gateway` was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayOptions {
    /// NATS servers, `nats://HOST:PORT` each.
    pub servers: Vec<String>,
    /// The partitions to serve ([`crate::nats::valid_partition`]).
    pub partitions: Vec<String>,
}

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A server address NATS does not take.
    #[error("--from {servers:?}: {reason}; give nats://HOST:PORT[,nats://HOST:PORT…]")]
    Servers {
        /// As given.
        servers: String,
        /// The client's complaint.
        reason: String,
    },
    /// A partition name that cannot be.
    #[error("{0}")]
    Partition(String),
    /// The shards' threads.
    #[error("cannot start the gateway's shards: {0}")]
    Start(String),
}

/// Connects to NATS (retried in the background while it is away) and starts one remote shard
/// per partition; call from inside the tokio runtime that will serve.
///
/// # Errors
/// Bad server addresses or partition names; threads that cannot start.
pub async fn start(options: &GatewayOptions) -> Result<DataPlane, GatewayError> {
    for p in &options.partitions {
        crate::nats::valid_partition(p).map_err(GatewayError::Partition)?;
    }
    let servers = options.servers.join(",");
    let addrs =
        crate::nats::server_addrs(&options.servers).map_err(|reason| GatewayError::Servers {
            servers: servers.clone(),
            reason,
        })?;
    let client = async_nats::ConnectOptions::new()
        .name("pinbook gateway")
        .retry_on_initial_connect()
        .connect(addrs)
        .await
        .map_err(|e| GatewayError::Servers {
            servers: servers.clone(),
            reason: e.to_string(),
        })?;
    let mut shards = Vec::new();
    // locates are the hub's keys across shards: one counter for all, from 1
    let locates = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(1));
    for (id, partition) in options.partitions.iter().enumerate() {
        let id =
            u16::try_from(id).map_err(|_| GatewayError::Partition("too many partitions".into()))?;
        let (inbound_tx, inbound) = tokio::sync::mpsc::channel(INBOUND);
        let (wants, wants_rx) = tokio::sync::mpsc::unbounded_channel();
        let subjects = Subjects::new(partition);
        tokio::spawn(intake::run(client.clone(), subjects, inbound_tx, wants_rx));
        let info = ShardInfo {
            id,
            core: None,
            pinned: false,
            node: None,
            arena_bytes: 0,
            arena_capacity: 0,
            orders_capacity: 0,
            source: format!("nats {servers} partition {partition}"),
        };
        let locates = std::sync::Arc::clone(&locates);
        let body: dataplane::runtime::ExternalBody = Box::new(move |ext| {
            remote_shard::RemoteShard::new(ext, inbound, wants, locates).run();
        });
        shards.push((info, EVENT_RING, body));
    }
    DataPlane::external(shards).map_err(|e| GatewayError::Start(e.to_string()))
}
