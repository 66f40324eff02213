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
use tonic::transport::Server;

use crate::admin_service::AdminService;
use crate::auth::BearerAuth;
use crate::book_service::BookService;
use crate::hub::{Hub, Policy, SymbolView, drain};
use crate::pb;
use crate::request_count::CountRequestsLayer;

/// The encoded descriptor set of pinbook.v1, for reflection.
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
    pub admin_token: String,
    /// A token for the book service, if it is protected.
    pub book_token: Option<String>,
    /// Cores the event threads are pinned to (round robin); empty: not pinned.
    pub control_cores: Vec<usize>,
    /// The effective configuration, for GetConfig.
    pub config_toml: String,
    /// How long shutdown may take before streams are dropped.
    pub shutdown_timeout: Duration,
}

/// State the services share.
#[derive(Debug)]
pub struct Shared {
    /// Mirrors and subscribers.
    pub hub: Arc<Hub>,
    /// The data plane, for commands.
    pub plane: Arc<Mutex<DataPlane>>,
    /// Each shard's startup report.
    pub shards: Vec<ShardInfo>,
    /// Each shard's stats.
    pub shard_stats: Vec<Arc<ShardStats>>,
    /// Deepest subscription allowed.
    pub max_depth: usize,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// How long a stream waits for its client to take an update before closing it as too
    /// slow ([`Policy::stall`]).
    pub stall: Duration,
    /// The effective configuration.
    pub config_toml: String,
    /// Books are warm and the server is not shutting down.
    pub serving: AtomicBool,
}

impl Shared {
    /// UNAVAILABLE while warming up or shutting down.
    ///
    /// # Errors
    /// The status to return.
    pub fn check_serving(&self) -> Result<(), Status> {
        if self.serving.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Status::unavailable(
                "pinbook is warming up or shutting down; retry shortly",
            ))
        }
    }

    /// The admin view of one symbol.
    pub fn symbol_info(&self, s: &SymbolView) -> pb::SymbolInfo {
        let core = self
            .shards
            .get(s.shard as usize)
            .and_then(|i| i.core)
            .unwrap_or(0);
        pb::SymbolInfo {
            symbol: s.symbol.clone(),
            state: if s.published {
                pb::SymbolState::Published as i32
            } else {
                pb::SymbolState::Removed as i32
            },
            shard: u32::from(s.shard),
            core: core as u32,
            updates: s.updates,
            levels: s.levels as u32,
            stock_locate: u32::from(s.locate),
            incomplete: s.incomplete,
            stale: s.stale,
        }
    }

    /// Per-shard stats for GetStats.
    pub fn stats(&self) -> pb::GetStatsResponse {
        let shards = self
            .shards
            .iter()
            .zip(&self.shard_stats)
            .map(|(info, stats)| crate::stats_reply::shard_stats(info, &stats.snapshot()))
            .collect();
        pb::GetStatsResponse {
            shards,
            subscribers: self.hub.subscribers() as u64,
        }
    }
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
    health: tonic_health::server::HealthReporter,
    stop_grpc: Option<oneshot::Sender<()>>,
    grpc: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    stop_events: Arc<AtomicBool>,
    event_threads: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

/// The health service names reported.
const SERVICES: [&str; 3] = ["", "pinbook.v1.BookService", "pinbook.v1.AdminService"];

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
    let mut event_threads = Vec::new();
    for (i, shard) in plane.shards_mut().iter_mut().enumerate() {
        let Some(events) = shard.take_events() else {
            continue;
        };
        let hub = Arc::clone(&hub);
        let stop = Arc::clone(&stop_events);
        let core = (!options.control_cores.is_empty())
            .then(|| options.control_cores[i % options.control_cores.len()]);
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
        event_threads.push(thread);
    }
    let shared = Arc::new(Shared {
        hub: Arc::clone(&hub),
        plane: Arc::new(Mutex::new(plane)),
        shards,
        shard_stats,
        max_depth: options.max_depth,
        heartbeat: options.heartbeat,
        stall: options.policy.stall,
        config_toml: options.config_toml.clone(),
        serving: AtomicBool::new(false),
    });

    let (health, health_service) = tonic_health::server::health_reporter();
    for service in SERVICES {
        health
            .set_service_status(service, tonic_health::ServingStatus::NotServing)
            .await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;

    let listener = tokio::net::TcpListener::bind(options.grpc_addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: options.grpc_addr,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: options.grpc_addr,
        source,
    })?;
    let admin = pb::admin_service_server::AdminServiceServer::with_interceptor(
        AdminService::new(Arc::clone(&shared)),
        BearerAuth::new(Some(options.admin_token.clone()), "admin"),
    );
    let book = pb::book_service_server::BookServiceServer::with_interceptor(
        BookService::new(Arc::clone(&shared)),
        BearerAuth::new(options.book_token.clone(), "book"),
    );
    let (stop_grpc, stopped) = oneshot::channel::<()>();
    let grpc = tokio::spawn(
        Server::builder()
            .layer(CountRequestsLayer)
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
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

    // Warm once every shard published a book.
    {
        let shared = Arc::clone(&shared);
        let health = health.clone();
        tokio::spawn(async move {
            // Warm: every shard has taken messages from its feed and a first book is out. (A
            // shard need not publish anything itself: `--symbols` may name none of its own.)
            while !(shared.hub.any_published()
                && shared
                    .shard_stats
                    .iter()
                    .all(|s| s.snapshot().messages() > 0))
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            shared.serving.store(true, Ordering::Release);
            for service in SERVICES {
                health
                    .set_service_status(service, tonic_health::ServingStatus::Serving)
                    .await;
            }
            tracing::info!("books are warm: serving");
        });
    }

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

impl Running {
    /// Shuts down: health NOT_SERVING, open streams end with UNAVAILABLE "shutting down", the
    /// server stops accepting, event threads and shards stop. Bounded by the shutdown timeout.
    pub async fn shutdown(mut self) {
        self.shared.serving.store(false, Ordering::Release);
        for service in SERVICES {
            self.health
                .set_service_status(service, tonic_health::ServingStatus::NotServing)
                .await;
        }
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
