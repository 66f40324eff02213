//! Prometheus metrics on the metrics listener: sampled from the shards' stats and the hub by
//! the control plane (never recorded on a pinned core), rendered by
//! metrics-exporter-prometheus, served at `/metrics` by a small axum router.
//!
//! Names follow Prometheus conventions: `pinbook_` prefix, base units, `_total` counters;
//! labels `shard` and `core`, and where a counter is split by kind, the kind (`limit`,
//! `stream`, `reason`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dataplane::runtime::stats::LatencyHistogram;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::hub::SnapshotReason;
use crate::state::Shared;

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

/// Latency buckets, seconds: 1 µs to 1 s, µs-scale resolution where the data plane lives.
pub const LATENCY_BUCKETS: [f64; 17] = [
    1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3,
    50e-3, 100e-3, 1.0,
];

/// Subscriber queue depth buckets, updates.
pub const DEPTH_BUCKETS: [f64; 9] = [0.0, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7];

/// Installs the process-wide Prometheus recorder, with real histograms (not summaries) for
/// the latencies and the queue depths.
///
/// # Errors
/// A recorder is already installed.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("pinbook_subscriber_queue_depth".into()),
                &DEPTH_BUCKETS,
            )
        })
        .map_err(|e| MetricsError::Install(e.to_string()))?
        .install_recorder()
        .map_err(|e| MetricsError::Install(e.to_string()))
        .inspect(|_| describe())
}

/// The HELP text of every metric.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "pinbook_feed_messages_total",
        "ITCH messages a shard took from its feed, by type letter."
    );
    for family in dataplane::runtime::counters::family::ALL {
        describe_counter!(family.name, family.help);
    }
    describe_gauge!(
        "pinbook_loop_busy_ratio",
        Unit::Percent,
        "Busy share of a shard's loop iterations since start, 0 to 1."
    );
    describe_gauge!(
        "pinbook_loop_max_seconds",
        Unit::Seconds,
        "Longest busy loop iteration of a shard since start."
    );
    describe_gauge!(
        "pinbook_arena_reserved_bytes",
        Unit::Bytes,
        "Bytes of a shard's NUMA arena."
    );
    describe_gauge!(
        "pinbook_arena_used_bytes",
        Unit::Bytes,
        "Bytes of a shard's arena carved for its books."
    );
    describe_gauge!(
        "pinbook_order_pool_used",
        "Orders resting in a shard's order pool."
    );
    describe_gauge!(
        "pinbook_order_pool_capacity",
        "Orders a shard's pool can hold."
    );
    describe_gauge!(
        "pinbook_event_ring_occupancy",
        "Events waiting in a shard's event ring."
    );
    describe_histogram!(
        "pinbook_ingest_to_publish_seconds",
        Unit::Seconds,
        "From a feed message taken by a shard to its events in the ring (one observation per busy loop iteration that published)."
    );
    describe_gauge!("pinbook_subscribers", "Open Subscribe streams.");
    describe_counter!(
        "pinbook_limit_hits_total",
        "Calls refused with RESOURCE_EXHAUSTED by a limit of [limits], by limit."
    );
    crate::nats::counters::describe();
    describe_gauge!(
        "pinbook_nats_active",
        "1 while this serve instance publishes its partition on NATS, 0 while another instance does (a standby); absent without --publish."
    );
    describe_counter!(
        "pinbook_gateway_bad_messages_total",
        "NATS messages a gateway could not use (an unknown subject, an undecodable body, a bad snapshot key), by reason; each is dropped, and the subject resyncs if it left a hole."
    );
    for reason in ["subject", "undecodable", "key"] {
        metrics::counter!("pinbook_gateway_bad_messages_total", "reason" => reason).increment(0);
    }
    for limit in crate::limits::Limit::ALL {
        // every series exists from the start, so a rate over it is 0, not empty
        metrics::counter!("pinbook_limit_hits_total", "limit" => limit.name()).increment(0);
    }
    describe_gauge!(
        "pinbook_stream_subscribers",
        "Open Subscribe streams by what they stream: levels, orders (market by order), trades, \
         status."
    );
    describe_histogram!(
        "pinbook_subscriber_queue_depth",
        "Updates queued per subscriber, sampled every second."
    );
    describe_counter!(
        "pinbook_snapshots_sent_total",
        "Snapshots queued for subscribers, by reason."
    );
    describe_counter!(
        "pinbook_slow_consumer_closes_total",
        "Subscribers closed for being too slow."
    );
    describe_histogram!(
        "pinbook_tick_to_send_seconds",
        Unit::Seconds,
        "From a feed message taken by a shard to a delta handed to a client's stream."
    );
    describe_counter!(
        "pinbook_upstream_sequence_errors_total",
        "Data-plane events whose sequence number did not follow the symbol's last (a bug if not 0)."
    );
    describe_counter!(
        "pinbook_grpc_requests_total",
        "gRPC calls by method and status code."
    );
    describe_gauge!("pinbook_build_info", "Build information; always 1.");
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
        let mut sampler = Sampler::default();
        loop {
            tick.tick().await;
            sampler.sample(&shared);
        }
    })
}

/// What the last sample saw of the shards' latency histograms, to record only what is new.
#[derive(Debug, Default)]
pub struct Sampler {
    last_counts: Vec<Vec<u64>>,
}

impl Sampler {
    /// One sample of everything.
    pub fn sample(&mut self, shared: &Shared) {
        self.last_counts.resize(shared.shards.len(), Vec::new());
        for (i, (info, stats)) in shared.shards.iter().zip(&shared.shard_stats).enumerate() {
            let s = stats.snapshot();
            let shard = info.id.to_string();
            let core = info
                .core
                .map_or_else(|| "none".to_owned(), |c| c.to_string());
            let labels = [("shard", shard.clone()), ("core", core.clone())];
            for t in b'A'..=b'Z' {
                let n = s.messages_of(t);
                if n > 0 {
                    let kind = (t as char).to_string();
                    metrics::counter!("pinbook_feed_messages_total", "shard" => shard.clone(), "core" => core.clone(), "type" => kind)
                        .absolute(n);
                }
            }
            for (counter, value) in s.counters() {
                let family = counter.family;
                match (family.label, counter.label) {
                    (Some(key), Some(label)) => metrics::counter!(family.name, "shard" => shard.clone(), "core" => core.clone(), key => label)
                        .absolute(value),
                    _ => metrics::counter!(family.name, &labels).absolute(value),
                }
            }
            let gauge = |name: &'static str, value: f64| {
                metrics::gauge!(name, &labels).set(value);
            };
            gauge("pinbook_loop_busy_ratio", s.busy_ratio());
            gauge("pinbook_loop_max_seconds", s.max_loop_ns as f64 / 1e9);
            gauge("pinbook_arena_reserved_bytes", info.arena_capacity as f64);
            gauge("pinbook_arena_used_bytes", info.arena_bytes as f64);
            gauge("pinbook_order_pool_used", s.orders_live as f64);
            gauge("pinbook_order_pool_capacity", info.orders_capacity as f64);
            let occupancy = shared
                .hub
                .stats
                .ring_occupancy
                .get(i)
                .map_or(0, |o| o.load(Ordering::Relaxed));
            gauge("pinbook_event_ring_occupancy", occupancy as f64);
            // New observations of the shard's own histogram, each at the middle of its bucket
            // (the shard's buckets are at most 12.5 % wide, so that is within ~6 %).
            let counts = s.ingest_to_publish.counts();
            let last = &mut self.last_counts[i];
            last.resize(counts.len(), 0);
            let histogram = metrics::histogram!("pinbook_ingest_to_publish_seconds", &labels);
            for (b, (&now, before)) in counts.iter().zip(last.iter_mut()).enumerate() {
                let new = now.saturating_sub(*before);
                if new > 0 {
                    let upper = LatencyHistogram::bucket_upper_bound(b).min(10_000_000_000);
                    let lower = LatencyHistogram::bucket_lower_bound(b).min(upper);
                    let middle = lower + (upper - lower) / 2;
                    histogram.record_many(middle as f64 / 1e9, new as usize);
                }
                *before = now;
            }
        }
        let depths = shared.hub.queue_depths();
        metrics::gauge!("pinbook_subscribers").set(depths.len() as f64);
        let by_stream = shared.hub.subscribers_by_stream();
        for (stream, n) in ["levels", "orders", "trades", "status"]
            .into_iter()
            .zip(by_stream)
        {
            metrics::gauge!("pinbook_stream_subscribers", "stream" => stream).set(n as f64);
        }
        let depth = metrics::histogram!("pinbook_subscriber_queue_depth");
        for d in depths {
            depth.record(d as f64);
        }
        for reason in SnapshotReason::ALL {
            metrics::counter!("pinbook_snapshots_sent_total", "reason" => reason.name())
                .absolute(shared.hub.stats.snapshots[reason as usize].load(Ordering::Relaxed));
        }
        metrics::counter!("pinbook_slow_consumer_closes_total")
            .absolute(shared.hub.stats.slow_closes.load(Ordering::Relaxed));
        metrics::counter!("pinbook_upstream_sequence_errors_total")
            .absolute(shared.hub.stats.upstream_seq_errors.load(Ordering::Relaxed));
    }
}

/// Counts one gRPC call by method and status code (the server's
/// [`CountRequests`](crate::request_count::CountRequests) layer calls it).
pub fn count_request(method: &'static str, code: tonic::Code) {
    metrics::counter!(
        "pinbook_grpc_requests_total",
        "method" => method,
        "code" => code_name(code)
    )
    .increment(1);
}

/// The canonical name of a gRPC code: `OK`, `INVALID_ARGUMENT`, …
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The tick-to-send histogram: a stream task fetches it once and passes it to
/// [`record_tick_to_send`] for each delta.
pub fn tick_to_send() -> metrics::Histogram {
    metrics::histogram!("pinbook_tick_to_send_seconds")
}

/// Records one update's tick-to-send latency in `histogram` (from [`tick_to_send`]): ingest
/// (data plane) → handed to a client's stream.
pub fn record_tick_to_send(histogram: &metrics::Histogram, ingest_ns: u64, send_ns: u64) {
    if ingest_ns != 0 && send_ns >= ingest_ns {
        histogram.record((send_ns - ingest_ns) as f64 / 1e9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_canonical_names() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(
            code_name(tonic::Code::ResourceExhausted),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(code_name(tonic::Code::Unavailable), "UNAVAILABLE");
    }
}
