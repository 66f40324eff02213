//! Prometheus metrics on the metrics listener: sampled from the shards' stats and the hub by
//! the control plane (never recorded on a pinned core), rendered by
//! metrics-exporter-prometheus, served at `/metrics` by a small axum router.
//!
//! Names follow Prometheus conventions: `pinbook_` prefix, base units, `_total` counters,
//! labels `shard` and `core` only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::hub::SNAPSHOT_REASONS;
use crate::server::Shared;

/// Why metrics could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The recorder could not be installed (one per process).
    #[error("cannot install the metrics recorder: {0}")]
    Install(String),
    /// The listener could not be bound.
    #[error("cannot listen for metrics on {addr}: {source}; pick another --metrics-addr")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Installs the process-wide Prometheus recorder.
///
/// # Errors
/// A recorder is already installed.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| MetricsError::Install(e.to_string()))
}

/// Serves `handle`'s rendering at `GET /metrics` on `addr`; returns the bound address.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    handle: PrometheusHandle,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), MetricsError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move { handle.render() }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics listener stopped: {e}");
        }
    });
    Ok((local, task))
}

/// Samples the shards' stats and the hub into the recorder every `interval`, forever.
pub fn spawn_sampler(shared: Arc<Shared>, interval: Duration) -> tokio::task::JoinHandle<()> {
    metrics::gauge!("pinbook_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            sample(&shared);
        }
    })
}

/// One sample of everything.
pub fn sample(shared: &Shared) {
    for (info, stats) in shared.shards.iter().zip(&shared.shard_stats) {
        let s = stats.snapshot();
        let shard = info.id.to_string();
        let core = info
            .core
            .map_or_else(|| "none".to_owned(), |c| c.to_string());
        let labels = [("shard", shard.clone()), ("core", core.clone())];
        let counter = |name: &'static str, value: u64| {
            metrics::counter!(name, &labels).absolute(value);
        };
        counter("pinbook_feed_messages_total", s.messages());
        counter("pinbook_feed_parse_errors_total", s.parse_errors);
        counter("pinbook_book_unknown_references_total", s.unknown_refs);
        counter("pinbook_feed_gaps_total", s.gaps);
        counter("pinbook_feed_messages_lost_total", s.messages_lost);
        counter("pinbook_event_ring_full_total", s.ring_full);
        counter("pinbook_resyncs_total", s.resyncs);
        counter("pinbook_events_published_total", s.events_published);
        counter("pinbook_loop_busy_iterations_total", s.busy_iterations);
        counter("pinbook_loop_idle_iterations_total", s.idle_iterations);
        metrics::gauge!("pinbook_loop_busy_ratio", &labels).set(s.busy_ratio());
        metrics::gauge!("pinbook_loop_max_seconds", &labels).set(s.max_loop_ns as f64 / 1e9);
        metrics::gauge!("pinbook_arena_reserved_bytes", &labels).set(info.arena_bytes as f64);
    }
    let (subscribers, deepest) = shared.hub.subscribers();
    metrics::gauge!("pinbook_subscribers").set(subscribers as f64);
    metrics::gauge!("pinbook_subscriber_queue_max_depth").set(deepest as f64);
    for (i, reason) in SNAPSHOT_REASONS.iter().enumerate() {
        metrics::counter!("pinbook_snapshots_sent_total", "reason" => *reason)
            .absolute(shared.hub.stats.snapshots[i].load(Ordering::Relaxed));
    }
    metrics::counter!("pinbook_slow_consumer_closes_total")
        .absolute(shared.hub.stats.slow_closes.load(Ordering::Relaxed));
}
