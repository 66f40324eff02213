//! What the server's parts share while it runs, without protobuf types (the replies are built
//! in [`crate::convert`] and [`crate::stats_reply`]):
//! - [`Shared`]: the hub, the data plane and its shards' reports and stats (the admin service,
//!   the metrics sampler, and tests through [`crate::server::Running`]);
//! - [`Serving`]: whether calls are served now (warm, not shutting down);
//! - [`StreamLimits`]: what the book service allows a subscription.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dataplane::runtime::stats::ShardStats;
use dataplane::runtime::{DataPlane, ShardInfo};
use tonic::Status;

use crate::hub::Hub;

/// Whether the services answer: off while the books warm up and once shutdown began.
#[derive(Debug, Default)]
pub struct Serving(AtomicBool);

impl Serving {
    /// Starts or stops serving.
    pub fn set(&self, serving: bool) {
        self.0.store(serving, Ordering::Release);
    }

    /// UNAVAILABLE while warming up or shutting down.
    ///
    /// # Errors
    /// The status to return.
    pub fn check(&self) -> Result<(), Status> {
        if self.0.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Status::unavailable(
                "pinbook is warming up or shutting down; retry shortly",
            ))
        }
    }
}

/// What a subscription may ask for, and how its stream is kept alive.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Deepest subscription allowed, levels per side.
    pub max_depth: usize,
    /// Heartbeat interval of idle streams.
    pub heartbeat: Duration,
    /// How long a stream waits for its client to take an update before closing it as too
    /// slow ([`crate::hub::Policy::stall`]).
    pub stall: Duration,
    /// The intervals a conflated subscription may ask for, in milliseconds.
    pub interval_ms: (u32, u32),
}

impl StreamLimits {
    /// The limits `[subscribers]` sets.
    pub fn of(s: &crate::config::SubscribersConfig) -> Self {
        Self {
            max_depth: s.max_depth as usize,
            heartbeat: Duration::from_millis(s.heartbeat_ms),
            stall: Duration::from_millis(s.stall_ms),
            interval_ms: (s.min_interval_ms, s.max_interval_ms),
        }
    }
}

/// State the server's parts share.
#[derive(Debug)]
pub struct Shared {
    /// The limits on clients, and what is open against them.
    pub admission: Arc<crate::limits::Admission>,
    /// Mirrors and subscribers.
    pub hub: Arc<Hub>,
    /// The data plane, for commands.
    pub plane: Arc<Mutex<DataPlane>>,
    /// Each shard's startup report.
    pub shards: Vec<ShardInfo>,
    /// Each shard's stats.
    pub shard_stats: Vec<Arc<ShardStats>>,
    /// The configuration in force, for GetConfig and SetConfig.
    pub config: crate::live_config::LiveConfig,
    /// What subscriptions opened from now on may ask for.
    pub stream_limits: Mutex<StreamLimits>,
    /// Whether calls are served now.
    pub serving: Arc<Serving>,
}

impl Shared {
    /// What subscriptions opened now may ask for.
    pub fn stream_limits(&self) -> StreamLimits {
        *self.stream_limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes what subscriptions opened from now on may ask for.
    pub fn set_stream_limits(&self, limits: StreamLimits) {
        *self.stream_limits.lock().unwrap_or_else(|e| e.into_inner()) = limits;
    }
}
