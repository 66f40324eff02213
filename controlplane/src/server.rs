//! The gRPC server: book and admin services, health, reflection, the event threads that feed
//! the hub, and an orderly shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use dataplane::runtime::stats::ShardStats;
use dataplane::runtime::{DataPlane, ShardInfo};
use tokio::sync::oneshot;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

use crate::admin_service::AdminService;
use crate::auth::{BearerAuth, BookAuth};
use crate::book_service::BookService;
use crate::config::Secret;
use crate::hub::{Hub, Policy, drain};
use crate::limits::{Admission, LimitsConfig, LimitsLayer, Tokens};
use crate::pb;
use crate::request_count::CountRequestsLayer;
pub use crate::state::Shared;
use crate::state::{Serving, StreamLimits};

/// The encoded descriptor set of pinbook.v2, for reflection.
pub const DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pinbook_descriptor.bin"));

/// What the server needs besides the data plane.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen (port 0 picks a free one).
    pub grpc_addr: SocketAddr,
    /// Deepest subscription allowed, levels per side.
    pub max_depth: usize,
    /// Heartbeat interval of idle streams.
    pub heartbeat: Duration,
    /// Subscriber queue limits.
    pub policy: Policy,
    /// The admin token (never empty).
    pub admin_token: Secret,
    /// Who may make book calls, and for which symbols.
    pub book_access: crate::auth::BookAccess,
    /// TLS (and mutual TLS), loaded and checked by [`ServerTls::load`](crate::tls::ServerTls::load);
    /// `None` serves plaintext.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// Cores the event threads are pinned to (round robin); empty: not pinned.
    pub control_cores: Vec<usize>,
    /// The effective configuration, for GetConfig.
    pub config_toml: String,
    /// How long shutdown may take before streams are dropped.
    pub shutdown_timeout: Duration,
    /// What clients may claim.
    pub limits: LimitsConfig,
    /// The intervals conflated subscriptions may ask for, milliseconds (shortest, longest).
    pub conflation_ms: (u32, u32),
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The gRPC address could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; is another pinbook running? pick another --grpc-addr"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// rustls refused the TLS configuration (checked by the config's validation first, so
    /// only a configuration built by hand gets here).
    #[error("TLS: {0}; check tls.cert, tls.key and tls.client_ca")]
    Tls(String),
    /// The reflection service could not load the descriptors (a build problem).
    #[error("reflection: {0}")]
    Reflection(String),
    /// An event thread could not be started.
    #[error("cannot spawn the event thread of shard {shard}: {source}")]
    Spawn {
        /// The shard whose events it would drain.
        shard: u16,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub local_addr: SocketAddr,
    /// Shared state (for metrics and tests).
    pub shared: Arc<Shared>,
    health: HealthReporter,
    stop_grpc: Option<oneshot::Sender<()>>,
    grpc: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    stop_events: Arc<AtomicBool>,
    event_threads: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

/// HTTP/2 streams a connection may open beyond `max_streams_per_connection` subscriptions.
const STREAM_HEADROOM: u32 = 100;

/// The health service names reported.
const SERVICES: [&str; 3] = ["", "pinbook.v2.BookService", "pinbook.v2.AdminService"];

/// Starts the server over a started data plane. Health is NOT_SERVING until every shard has
/// taken messages from its feed and a first book has been published.
///
/// # Errors
/// The address cannot be bound, an event thread cannot be spawned, or reflection cannot
/// load the descriptors.
pub async fn start(options: ServerOptions, mut plane: DataPlane) -> Result<Running, ServerError> {
    let shards: Vec<ShardInfo> = plane.shards().iter().map(|s| s.info().clone()).collect();
    let shard_stats: Vec<Arc<ShardStats>> = plane
        .shards()
        .iter()
        .map(|s| Arc::clone(s.stats()))
        .collect();
    let hub = Arc::new(Hub::new(shards.len(), options.policy));
    let stop_events = Arc::new(AtomicBool::new(false));
    let event_threads =
        spawn_event_threads(&mut plane, &hub, &stop_events, &options.control_cores)?;
    let serving = Arc::new(Serving::default());
    let admission = Admission::new(options.limits);
    let shared = Arc::new(Shared {
        admission: Arc::clone(&admission),
        hub: Arc::clone(&hub),
        plane: Arc::new(Mutex::new(plane)),
        shards,
        shard_stats,
        config: crate::live_config::LiveConfig::new(&options.config_toml),
        stream_limits: Mutex::new(StreamLimits {
            max_depth: options.max_depth,
            heartbeat: options.heartbeat,
            stall: options.policy.stall,
            interval_ms: options.conflation_ms,
        }),
        serving: Arc::clone(&serving),
    });

    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, tonic_health::ServingStatus::NotServing).await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    let (listener, local_addr) = bind(options.grpc_addr).await?;
    let max_message = options.limits.max_message_bytes as usize;
    let admin = InterceptedService::new(
        pb::admin_service_server::AdminServiceServer::new(AdminService::new(Arc::clone(&shared)))
            .max_decoding_message_size(max_message),
        BearerAuth::new(Some(options.admin_token.expose().to_owned()), "admin"),
    );
    let book = InterceptedService::new(
        pb::book_service_server::BookServiceServer::new(BookService::new(Arc::clone(&shared)))
            .max_decoding_message_size(max_message),
        BookAuth::new(options.book_access.clone()),
    );
    let keepalive = options.limits.keepalive();
    let tokens = Tokens::new(
        std::iter::once(&options.admin_token)
            .chain(options.book_access.known_tokens())
            .cloned()
            .collect(),
    );
    let (stop_grpc, stopped) = oneshot::channel::<()>();
    let mut builder = Server::builder();
    if let Some(tls) = options.tls.clone() {
        builder = builder
            .tls_config(tls)
            .map_err(|e| ServerError::Tls(e.to_string()))?;
    }
    let grpc = tokio::spawn(
        builder
            // outermost first: every refusal of the limits is counted too
            .layer(CountRequestsLayer)
            .layer(LimitsLayer::new(admission, tokens))
            // a peer that stops answering pings is dropped within the idle timeout
            .http2_keepalive_interval(Some(keepalive))
            .http2_keepalive_timeout(Some(keepalive))
            // h2's own bound, over the per-connection subscriber limit (which the limits
            // layer enforces with a status) so unary calls fit beside a full connection
            .max_concurrent_streams(Some(
                options
                    .limits
                    .max_streams_per_connection
                    .saturating_add(STREAM_HEADROOM),
            ))
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(16 << 20))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(book)
            .add_service(admin)
            .serve_with_incoming_shutdown(
                // No Nagle: a delta must not wait for the client's delayed ACK (up to 40 ms
                // on Linux) behind another small write on the same connection.
                tokio_stream::StreamExt::map(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    |accepted| {
                        accepted.and_then(|stream| {
                            stream.set_nodelay(true)?;
                            Ok(stream)
                        })
                    },
                ),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    tokio::spawn(serve_when_warm(Arc::clone(&shared), health.clone()));

    Ok(Running {
        local_addr,
        shared,
        health,
        stop_grpc: Some(stop_grpc),
        grpc,
        stop_events,
        event_threads,
        shutdown_timeout: options.shutdown_timeout,
    })
}

/// One event thread per shard, draining its event ring into `hub` until `stop`; pinned to
/// `control_cores` round robin (not pinned when empty).
fn spawn_event_threads(
    plane: &mut DataPlane,
    hub: &Arc<Hub>,
    stop: &Arc<AtomicBool>,
    control_cores: &[usize],
) -> Result<Vec<JoinHandle<()>>, ServerError> {
    let mut threads = Vec::new();
    for (i, shard) in plane.shards_mut().iter_mut().enumerate() {
        let Some(events) = shard.take_events() else {
            continue;
        };
        let hub = Arc::clone(hub);
        let stop = Arc::clone(stop);
        let core = (!control_cores.is_empty()).then(|| control_cores[i % control_cores.len()]);
        let id = shard.info().id;
        let thread = std::thread::Builder::new()
            .name(format!("pinbook-events-{id}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core_affinity::CoreId { id: core });
                }
                drain(&hub, id, events, &stop);
            })
            .map_err(|source| ServerError::Spawn { shard: id, source })?;
        threads.push(thread);
    }
    Ok(threads)
}

/// Sets every service's health to `status`.
async fn set_health(health: &HealthReporter, status: tonic_health::ServingStatus) {
    for service in SERVICES {
        health.set_service_status(service, status).await;
    }
}

/// Binds the gRPC listener; returns it with the address it got.
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), ServerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    Ok((listener, local))
}

/// Marks the server serving once it is warm: every shard has taken messages from its feed
/// and a first book is out. (A shard need not publish anything itself: `--symbols` may name
/// none of its own.)
async fn serve_when_warm(shared: Arc<Shared>, health: HealthReporter) {
    while !(shared.hub.any_published()
        && shared
            .shard_stats
            .iter()
            .all(|s| s.snapshot().messages() > 0))
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shared.serving.set(true);
    set_health(&health, tonic_health::ServingStatus::Serving).await;
    tracing::info!("books are warm: serving");
}

impl Running {
    /// Shuts down: health NOT_SERVING, open streams end with UNAVAILABLE "shutting down", the
    /// server stops accepting, event threads and shards stop. Bounded by the shutdown timeout.
    pub async fn shutdown(mut self) {
        self.shared.serving.set(false);
        set_health(&self.health, tonic_health::ServingStatus::NotServing).await;
        self.shared
            .hub
            .close_all(&Status::unavailable("pinbook is shutting down"));
        if let Some(stop) = self.stop_grpc.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(self.shutdown_timeout, &mut self.grpc).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("gRPC server ended with an error: {e}"),
            Ok(Err(e)) => tracing::warn!("gRPC server task failed: {e}"),
            Err(_) => {
                tracing::warn!(
                    "gRPC server did not stop within {:?}; dropping its connections",
                    self.shutdown_timeout
                );
                self.grpc.abort();
            }
        }
        self.stop_events.store(true, Ordering::Relaxed);
        for thread in self.event_threads.drain(..) {
            let _ = thread.join();
        }
        let plane = Arc::clone(&self.shared.plane);
        let _ = tokio::task::spawn_blocking(move || {
            plane.lock().unwrap_or_else(|e| e.into_inner()).stop();
        })
        .await;
    }
}
