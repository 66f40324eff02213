//! The NATS side's counters, declared once: each is a Prometheus counter with a `stream`
//! label (`levels`, `orders`, `trades`, `status`), every series registered at start.

use super::subject::{STREAMS, stream_token};
use crate::hub::Stream;

/// One counter of the NATS side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Updates handed to the NATS client.
    Published,
    /// Updates the NATS client refused.
    PublishErrors,
    /// Publisher subscriptions that ended (NATS too slow or away) and were opened again.
    StreamRestarts,
    /// Snapshots put in the key-value bucket.
    SnapshotsStored,
    /// Snapshots (or the bucket) that could not be stored; retried.
    SnapshotErrors,
    /// Subjects a gateway found broken (a seq gap, a checksum that does not add up, an
    /// update that does not fit); each resyncs its symbol.
    SubjectBreaks,
}

impl Counter {
    /// Every counter.
    pub const ALL: [Counter; 6] = [
        Counter::Published,
        Counter::PublishErrors,
        Counter::StreamRestarts,
        Counter::SnapshotsStored,
        Counter::SnapshotErrors,
        Counter::SubjectBreaks,
    ];

    /// Its Prometheus name.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::Published => "pinbook_nats_published_total",
            Counter::PublishErrors => "pinbook_nats_publish_errors_total",
            Counter::StreamRestarts => "pinbook_nats_stream_restarts_total",
            Counter::SnapshotsStored => "pinbook_nats_snapshots_stored_total",
            Counter::SnapshotErrors => "pinbook_nats_snapshot_errors_total",
            Counter::SubjectBreaks => "pinbook_gateway_subject_breaks_total",
        }
    }

    /// Its HELP text.
    pub const fn help(self) -> &'static str {
        match self {
            Counter::Published => "Updates published on NATS, by stream.",
            Counter::PublishErrors => "Updates the NATS client refused to publish, by stream.",
            Counter::StreamRestarts => {
                "Publisher subscriptions that fell behind NATS (or lost it) and were reopened with a Resync, by stream."
            }
            Counter::SnapshotsStored => {
                "Snapshots put in the partition's key-value bucket, by stream."
            }
            Counter::SnapshotErrors => {
                "Snapshots (or the bucket's creation) NATS did not take, retried, by stream."
            }
            Counter::SubjectBreaks => {
                "Subjects a gateway found broken (a seq gap, a checksum mismatch, an update that does not fit), by stream; each resyncs its symbol."
            }
        }
    }
}

/// Adds `n` to `counter` of `stream`.
pub fn add(counter: Counter, stream: Stream, n: u64) {
    metrics::counter!(counter.name(), "stream" => stream_token(stream)).increment(n);
}

/// Describes every counter and registers each series at 0.
pub fn describe() {
    for counter in Counter::ALL {
        metrics::describe_counter!(counter.name(), counter.help());
        for stream in STREAMS {
            add(counter, stream, 0);
        }
    }
}
