//! [`Subscriber`] and the slow-consumer policy (see the [hub's docs](super)): when a subscriber
//! lags, when it is closed, and [`Clock`], how the hub tells that a stream's client stopped
//! reading.

use ahash::AHashMap as HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tonic::Status;

use super::stats::HubStats;
use super::{Mode, Policy};
use crate::deltas::{Held, update};
use crate::mirror::Mirror;
use crate::pb::{self, ResyncReason, book_update::Update};
use crate::queue::Queue;

/// One subscription: its queue, what its client holds of each symbol, and where it stands
/// under the slow-consumer policy.
#[derive(Debug)]
pub(super) struct Subscriber {
    pub(super) queue: Arc<Queue>,
    pub(super) depth: usize,
    pub(super) mode: Mode,
    pub(super) stream: super::Stream,
    pub(super) held: HashMap<u16, Held>,
    pub(super) next_due: Instant,
    pub(super) resyncs: Vec<Instant>,
    /// Since when its queue holds only resyncs and it waits for the stream to take them.
    pub(super) lagging: Option<Instant>,
    /// Closed as too slow: it gets nothing more, and is counted once.
    pub(super) closed: bool,
}

impl Subscriber {
    /// Closes it as too slow, after what is queued (its resyncs), and counts it once.
    pub(super) fn close_slow(&mut self, stats: &HubStats, why: String) {
        if self.closed {
            return;
        }
        self.closed = true;
        stats.slow_closes.fetch_add(1, Ordering::Relaxed);
        self.queue.close(Status::resource_exhausted(why));
    }

    /// Closes it if it has been lagging longer than `stall`; true if it is closed.
    pub(super) fn stalled_lagging(
        &mut self,
        stats: &HubStats,
        now: Instant,
        stall: Duration,
    ) -> bool {
        if let Some(since) = self.lagging
            && now.saturating_duration_since(since) > stall
        {
            self.close_slow(
                stats,
                format!(
                    "subscriber too slow: it did not read its SLOW_CONSUMER resync within \
                     {stall:?}; read faster, ask for less depth, or use MODE_CONFLATED"
                ),
            );
        }
        self.closed
    }

    /// Its queue overflowed, or its client stopped reading, at `now`: it lags (see
    /// [`Subscriber::lag`]), or is closed if this is one overflow too many within
    /// `policy.window`.
    pub(super) fn overflowed(
        &mut self,
        mirrors: &HashMap<u16, Mirror>,
        policy: &Policy,
        stats: &HubStats,
        now: Instant,
    ) {
        if self.closed || self.lagging.is_some() {
            return;
        }
        self.resyncs
            .retain(|t| now.duration_since(*t) < policy.window);
        self.resyncs.push(now);
        let overflows = self.resyncs.len();
        self.lag(mirrors, policy, now);
        if overflows > policy.max_resyncs {
            self.close_slow(
                stats,
                format!(
                    "subscriber too slow: its queue of {} updates overflowed {overflows} times \
                     within {:?}; read faster, ask for less depth, or use MODE_CONFLATED",
                    policy.queue, policy.window
                ),
            );
        }
    }

    /// Drops what it has queued (removals excepted), queues a SLOW_CONSUMER resync of each
    /// symbol it holds, and marks it lagging: nothing more is built for it until its stream
    /// has taken them ([`Hub::catch_up`](super::Hub::catch_up)). O(symbols held), no book read: the
    /// dropped updates are read and freed by its stream task ([`Queue::settle`]), off this
    /// lock (30 subscribers overflowing on one event took 44 ms here when they were not; see
    /// benches/grpc.rs, slow_consumers).
    pub(super) fn lag(&mut self, mirrors: &HashMap<u16, Mirror>, policy: &Policy, now: Instant) {
        // What was queued is dropped; the seqs restart from the first dropped update of each
        // symbol when it catches up (`catch_up`), so they stay contiguous across the resync.
        // A removal is the last word on its symbol: it is never dropped.
        for removal in self.queue.lag() {
            self.queue.force(removal);
        }
        let detail = format!(
            "you fell behind (your queue of {} updates overflowed, or your connection took \
             nothing for {:?}); queued updates were dropped; a fresh snapshot follows once you \
             have read this",
            policy.queue, policy.blocked
        );
        for locate in self.held.keys() {
            let Some(mirror) = mirrors.get(locate) else {
                continue;
            };
            self.queue.force(update(Update::Resync(pb::Resync {
                symbol: mirror.symbol.clone(),
                reason: ResyncReason::SlowConsumer as i32,
                detail: detail.clone(),
            })));
        }
        self.lagging = Some(now);
    }
}

/// [`dataplane::clock::now_ns`], read at most once per pass over the subscribers, and only when
/// some subscriber's stream is waiting for its client.
#[derive(Default)]
pub(super) struct Clock(Option<u64>);

impl Clock {
    /// True if `queue`'s stream has waited longer than `limit` for its client to take an
    /// update.
    pub(super) fn blocked_too_long(&mut self, queue: &Queue, limit: Duration) -> bool {
        let Some(since) = queue.blocked_since() else {
            return false;
        };
        let now = *self.0.get_or_insert_with(dataplane::clock::now_ns);
        now.saturating_sub(since) > u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            queue: 4,
            max_resyncs: 2,
            window: Duration::from_secs(10),
            stall: Duration::from_secs(5),
            blocked: Duration::from_secs(1),
        }
    }

    /// A subscriber holding AAPL (locate 7), and the mirrors that name it.
    fn subscriber() -> (Subscriber, HashMap<u16, Mirror>) {
        let mut held = HashMap::new();
        held.insert(
            7,
            Held {
                seq: 3,
                bids: Vec::new(),
                asks: Vec::new(),
                dirty: false,
                awaiting: false,
            },
        );
        let sub = Subscriber {
            queue: Arc::new(Queue::new(policy().queue)),
            depth: 10,
            mode: Mode::EveryChange,
            stream: super::super::Stream::Levels,
            held,
            next_due: Instant::now(),
            resyncs: Vec::new(),
            lagging: None,
            closed: false,
        };
        let mut mirrors = HashMap::new();
        mirrors.insert(7, Mirror::new("AAPL".into(), 7, 0));
        (sub, mirrors)
    }

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    /// What its stream would take now.
    fn queued(sub: &Subscriber) -> Vec<Update> {
        let mut out = Vec::new();
        sub.queue.settle();
        let _ = sub.queue.take(usize::MAX, &mut out);
        out.into_iter().filter_map(|u| u.update).collect()
    }

    #[test]
    fn an_overflow_drops_the_queue_and_sends_one_slow_consumer_resync_per_symbol() {
        let (mut sub, mirrors) = subscriber();
        let stats = HubStats::default();
        let t0 = Instant::now();
        sub.overflowed(&mirrors, &policy(), &stats, t0);
        assert_eq!(sub.lagging, Some(t0));
        assert!(!sub.closed);
        match queued(&sub).as_slice() {
            [Update::Resync(r)] => {
                assert_eq!(r.symbol, "AAPL");
                assert_eq!(r.reason, ResyncReason::SlowConsumer as i32);
                assert!(r.detail.contains("fell behind"), "{}", r.detail);
            }
            other => panic!("{other:?}"),
        }
        // lagging: a second overflow changes nothing until it catches up
        sub.overflowed(&mirrors, &policy(), &stats, at(t0, 1));
        assert_eq!(sub.resyncs.len(), 1);
        assert_eq!(sub.lagging, Some(t0));
    }

    #[test]
    fn one_overflow_too_many_within_the_window_closes_it_once() {
        let (mut sub, mirrors) = subscriber();
        let stats = HubStats::default();
        let t0 = Instant::now();
        for secs in [0, 1] {
            sub.overflowed(&mirrors, &policy(), &stats, at(t0, secs));
            assert!(!sub.closed, "{} overflows are tolerated", secs + 1);
            sub.lagging = None; // it caught up
        }
        sub.overflowed(&mirrors, &policy(), &stats, at(t0, 2));
        assert!(sub.closed, "the third within 10 s closes it");
        assert_eq!(stats.slow_closes.load(Ordering::Relaxed), 1);
        sub.close_slow(&stats, "again".into());
        assert_eq!(
            stats.slow_closes.load(Ordering::Relaxed),
            1,
            "closed and counted once"
        );
    }

    #[test]
    fn overflows_further_apart_than_the_window_never_close_it() {
        let (mut sub, mirrors) = subscriber();
        let stats = HubStats::default();
        let t0 = Instant::now();
        for i in 0..10 {
            sub.overflowed(&mirrors, &policy(), &stats, at(t0, 11 * i));
            assert!(!sub.closed, "overflow {i}");
            sub.lagging = None;
        }
        assert_eq!(sub.resyncs.len(), 1, "older overflows left the window");
        assert_eq!(stats.slow_closes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_subscriber_lagging_longer_than_stall_is_closed() {
        let (mut sub, mirrors) = subscriber();
        let stats = HubStats::default();
        let t0 = Instant::now();
        sub.lag(&mirrors, &policy(), t0);
        assert!(!sub.stalled_lagging(&stats, at(t0, 5), policy().stall));
        assert!(sub.stalled_lagging(&stats, at(t0, 6), policy().stall));
        assert_eq!(stats.slow_closes.load(Ordering::Relaxed), 1);
        let (_, status) = sub.queue.take_rest();
        let status = status.map(|s| (s.code(), s.message().to_owned()));
        assert!(
            matches!(&status, Some((tonic::Code::ResourceExhausted, m)) if m.contains("within 5s")),
            "{status:?}"
        );
    }

    #[test]
    fn the_clock_says_blocked_only_past_the_limit() {
        let queue = Queue::new(4);
        let mut clock = Clock::default();
        assert!(
            !clock.blocked_too_long(&queue, Duration::ZERO),
            "not waiting"
        );
        // waiting for 2 ms (the shard clock may start near 0: stay well above it)
        std::thread::sleep(Duration::from_millis(5));
        queue.set_blocked(dataplane::clock::now_ns().saturating_sub(2_000_000));
        assert!(clock.blocked_too_long(&queue, Duration::from_millis(1)));
        assert!(!clock.blocked_too_long(&queue, Duration::from_secs(60)));
    }
}
