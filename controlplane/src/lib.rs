//! The pinbook control plane: everything that runs off the pinned cores.
//!
//! - [`server`] starts the gRPC server over a started data plane: `pinbook.v2.BookService`
//!   (Subscribe, GetBook), `pinbook.v2.AdminService` (bearer-token protected), grpc.health.v1
//!   and reflection (v1 and v1alpha).
//! - [`hub`] holds the L2 mirror books, rebuilt from the data plane's event rings by one event
//!   thread per shard, and the subscribers with their bounded queues ([`queue`]); it enforces
//!   the subscription contract documented in proto/pinbook/v2/book.proto.
//! - [`checksum`] is the CRC-32 every snapshot and delta carries; `deltas` builds the
//!   snapshots and deltas each subscriber gets.
//! - [`state`] is what the services, the metrics and the server share (no protobuf types);
//!   [`convert`] and [`stats_reply`] build the admin replies from it; [`request_count`] counts
//!   every call once, as a layer on the server; [`metrics`] exports the rest to Prometheus.
//! - Exposure and load: [`tls`] loads and checks the server's certificates (TLS, mutual TLS);
//!   [`auth`] checks bearer tokens in constant time and grants book clients their symbols;
//!   [`limits`] bounds what any client can claim (every refusal RESOURCE_EXHAUSTED naming the
//!   limit, counted, touching no other client); [`live_config`] changes what can change while
//!   serving. Guaranteed: no plaintext listener off loopback without `insecure`, no token in
//!   any output, and no request body — tested with arbitrary bytes on every method — that
//!   stops the server from answering the next call.
//!
//! - Beyond one machine: [`nats`] publishes every update of every published symbol on NATS
//!   (its subject scheme, the key-value snapshots, which instance of a partition publishes);
//!   [`gateway`] serves the same BookService from NATS without a data plane, its partitions
//!   as remote shards under the unchanged hub. Guaranteed: a book a gateway streams is the one
//!   `serve`'s own subscriber streamed, or it is resynced.
//!
//! It knows nothing of ITCH: what it shares with the data plane is the command and event
//! structs carried by the rings, the shards' stats with their counter table
//! (`dataplane::runtime::counters`) and `dataplane::symbol::Symbol`. This crate never uses
//! `unsafe`.
#![forbid(unsafe_code)]

pub mod admin_service;
pub mod auth;
pub mod book_service;
pub mod checksum;
pub mod config;
pub mod contract;
pub mod convert;
pub(crate) mod deltas;
pub mod gateway;
pub mod hub;
pub mod limits;
pub mod live_config;
pub mod metrics;
pub mod mirror;
pub mod nats;
pub mod orders;
pub mod price;
pub mod queue;
pub mod request_count;
pub mod server;
pub mod state;
pub mod stats_reply;
pub mod status;
pub mod stream_contract;
pub(crate) mod symbol;
pub mod tls;

/// The generated pinbook.v2 messages, clients and servers.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("pinbook.v2");
}
