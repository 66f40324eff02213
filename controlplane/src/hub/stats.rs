//! [`HubStats`]: what the hub counts for the metrics, and [`SnapshotReason`], why a snapshot
//! was sent.

use std::sync::atomic::AtomicU64;

use crate::pb::ResyncReason;

/// Counters the metrics read.
#[derive(Debug, Default)]
pub struct HubStats {
    /// Snapshots sent, by reason, indexed by [`SnapshotReason`].
    pub snapshots: [AtomicU64; SnapshotReason::ALL.len()],
    /// Subscribers closed for being too slow.
    pub slow_closes: AtomicU64,
    /// Upstream sequence breaks seen (a bug if ever non-zero).
    pub upstream_seq_errors: AtomicU64,
    /// Events waiting in each shard's event ring, as its event thread last saw.
    pub ring_occupancy: Vec<AtomicU64>,
}

/// Why a subscriber was sent a snapshot: the `reason` label of `pinbook_snapshots_sent_total`
/// and the index of its count in [`HubStats::snapshots`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotReason {
    /// The first snapshot of a subscription.
    Initial,
    /// The subscriber fell behind.
    SlowConsumer,
    /// The data plane lost messages (a feed gap).
    UpstreamGap,
    /// The data plane's event ring overflowed.
    RingOverflow,
    /// The feed began a new day.
    NewDay,
    /// Asked for (or a reason the data plane did not give).
    Requested,
    /// The feed cleared the book (DBN clear or snapshot).
    Cleared,
}

impl SnapshotReason {
    /// Every reason, in index order.
    pub const ALL: [Self; 7] = [
        Self::Initial,
        Self::SlowConsumer,
        Self::UpstreamGap,
        Self::RingOverflow,
        Self::NewDay,
        Self::Requested,
        Self::Cleared,
    ];

    /// Its label value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::SlowConsumer => "slow_consumer",
            Self::UpstreamGap => "upstream_gap",
            Self::RingOverflow => "ring_overflow",
            Self::NewDay => "new_day",
            Self::Requested => "requested",
            Self::Cleared => "cleared",
        }
    }

    /// The reason of a snapshot sent for `resync` (`None`: a subscription's first).
    pub(super) fn of(resync: Option<ResyncReason>) -> Self {
        match resync {
            None => Self::Initial,
            Some(ResyncReason::SlowConsumer) => Self::SlowConsumer,
            Some(ResyncReason::UpstreamGap) => Self::UpstreamGap,
            Some(ResyncReason::RingOverflow) => Self::RingOverflow,
            Some(ResyncReason::NewDay) => Self::NewDay,
            Some(ResyncReason::Cleared) => Self::Cleared,
            Some(ResyncReason::Requested | ResyncReason::Unspecified) => Self::Requested,
        }
    }
}

/// Index into [`HubStats::snapshots`] of a snapshot sent for `reason`.
pub(super) fn snapshot_slot(reason: Option<ResyncReason>) -> usize {
    SnapshotReason::of(reason) as usize
}
