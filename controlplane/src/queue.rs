//! [`Queue`]: one subscriber's bounded queue of updates, filled by the event threads and
//! drained by the subscriber's gRPC stream.
//!
//! The writer never waits: when the queue is full the hub drops what it holds and marks it
//! lagging (see `hub`): only the small resyncs stay queued, nothing more is built for it until
//! its stream has taken them ([`Taken::CaughtUp`]). A queue closed with a status ends its
//! stream with that status, after what is queued ([`Queue::close`]) or at once
//! ([`Queue::close_now`], shutdown).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;
use tonic::Status;

use crate::pb::{BookUpdate, book_update::Update};

/// Outcome of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// The queue was full: nothing was queued.
    Full,
    /// The stream is gone or closed: drop the subscriber.
    Closed,
}

/// What [`Queue::take`] found besides the updates it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Nothing to report.
    Some,
    /// The queue was lagging and is now empty: its stream has taken the resyncs, so the hub
    /// may send the fresh snapshots (`Hub::catch_up`) once these updates are sent.
    CaughtUp,
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<BookUpdate>,
    closed: Option<Status>,
    /// The reader went away.
    gone: bool,
    /// Only resyncs (and removals) are queued; the hub waits for the stream to take them.
    lagging: bool,
    /// What the last overflow dropped, kept so that the event thread neither scans nor frees
    /// it under the hub's lock: [`Queue::settle`] (the stream task) reduces it to `rewinds`.
    discarded: VecDeque<BookUpdate>,
    /// Per symbol, the seq of the first update the overflow dropped.
    rewinds: Option<HashMap<String, u64>>,
}

/// Per symbol, the smallest seq among `items`.
fn first_seqs(items: &VecDeque<BookUpdate>) -> HashMap<String, u64> {
    let mut first: HashMap<String, u64> = HashMap::new();
    for u in items {
        if let Some((symbol, seq)) = symbol_seq(u) {
            first
                .entry(symbol.to_owned())
                .and_modify(|f| *f = (*f).min(seq))
                .or_insert(seq);
        }
    }
    first
}

fn symbol_seq(u: &BookUpdate) -> Option<(&str, u64)> {
    match &u.update {
        Some(Update::Snapshot(s)) => Some((s.symbol.as_str(), s.seq)),
        Some(Update::Delta(d)) => Some((d.symbol.as_str(), d.seq)),
        Some(Update::Orders(s)) => Some((s.symbol.as_str(), s.seq)),
        Some(Update::Order(e)) => Some((e.symbol.as_str(), e.seq)),
        Some(Update::Trade(t)) => Some((t.symbol.as_str(), t.seq)),
        Some(Update::Status(s)) => Some((s.symbol.as_str(), s.seq)),
        Some(Update::Heartbeat(_) | Update::Resync(_) | Update::Removed(_)) | None => None,
    }
}

/// A bounded queue of updates for one subscriber.
#[derive(Debug)]
pub struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
    capacity: usize,
    /// A status is set: the stream checks it between sends without taking the lock.
    closing: AtomicBool,
    /// When (`clock::now_ns`) the stream began waiting for the client to take an update; 0
    /// while it is not waiting. Written by the stream task, read by the hub without a lock.
    blocked_since: AtomicU64,
}

impl Queue {
    /// An empty queue of `capacity` updates.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
            closing: AtomicBool::new(false),
            blocked_since: AtomicU64::new(0),
        }
    }

    /// The stream waits for the client to take an update, since `now_ns` (not 0).
    pub fn set_blocked(&self, now_ns: u64) {
        self.blocked_since.store(now_ns.max(1), Ordering::Relaxed);
    }

    /// The stream handed an update over: it is not waiting for the client.
    pub fn clear_blocked(&self) {
        self.blocked_since.store(0, Ordering::Relaxed);
    }

    /// Since when (`clock::now_ns`) the stream has been waiting for the client to take an
    /// update, if it is waiting.
    pub fn blocked_since(&self) -> Option<u64> {
        match self.blocked_since.load(Ordering::Relaxed) {
            0 => None,
            since => Some(since),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep going with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `update` if there is room.
    pub fn push(&self, update: BookUpdate) -> Pushed {
        let mut inner = self.lock();
        if inner.gone || inner.closed.is_some() {
            return Pushed::Closed;
        }
        if inner.items.len() >= self.capacity {
            return Pushed::Full;
        }
        inner.items.push_back(update);
        drop(inner);
        self.notify.notify_one();
        Pushed::Queued
    }

    /// Queues `update` even past the capacity (snapshots, removals, resyncs: bounded by the
    /// symbols held, not by the feed's rate).
    pub fn force(&self, update: BookUpdate) {
        let mut inner = self.lock();
        if inner.gone || inner.closed.is_some() {
            return;
        }
        inner.items.push_back(update);
        drop(inner);
        self.notify.notify_one();
    }

    /// The queue overflowed: drops everything queued, and marks the queue lagging until its
    /// stream has taken what is queued next. Returns copies of the removals dropped (a removal
    /// is never lost: the hub queues them again). O(1) but for a scan of the discriminants: the
    /// dropped updates are freed, and their seqs read, by [`Queue::settle`] later.
    pub fn lag(&self) -> Vec<BookUpdate> {
        let mut inner = self.lock();
        inner.lagging = true;
        let dropped = std::mem::take(&mut inner.items);
        let removals = dropped
            .iter()
            .filter(|u| matches!(u.update, Some(Update::Removed(_))))
            .cloned()
            .collect();
        if inner.discarded.is_empty() {
            inner.discarded = dropped;
        } else {
            inner.discarded.extend(dropped);
        }
        removals
    }

    /// Reduces what the last overflow dropped to the first dropped seq of each symbol, and
    /// frees it: the stream task calls it before [`Hub::catch_up`](crate::hub::Hub::catch_up),
    /// so that this work is off the hub's lock.
    pub fn settle(&self) {
        let mut inner = self.lock();
        if inner.discarded.is_empty() {
            return;
        }
        let mut first = first_seqs(&inner.discarded);
        if let Some(earlier) = inner.rewinds.take() {
            for (symbol, seq) in earlier {
                first
                    .entry(symbol)
                    .and_modify(|f| *f = (*f).min(seq))
                    .or_insert(seq);
            }
        }
        inner.rewinds = Some(first);
        let dropped = std::mem::take(&mut inner.discarded);
        drop(inner);
        drop(dropped);
    }

    /// Per symbol, the seq of the first update the last overflow dropped (the client saw
    /// everything before it); the queue forgets it.
    pub fn take_rewinds(&self) -> HashMap<String, u64> {
        self.settle();
        self.lock().rewinds.take().unwrap_or_default()
    }

    /// The seq of the first update of `symbol` the last overflow dropped, if it dropped any.
    pub fn first_dropped(&self, symbol: &str) -> Option<u64> {
        let inner = self.lock();
        let settled = inner.rewinds.as_ref().and_then(|r| r.get(symbol).copied());
        let unsettled = inner
            .discarded
            .iter()
            .filter_map(symbol_seq)
            .filter(|(s, _)| *s == symbol)
            .map(|(_, seq)| seq)
            .min();
        match (settled, unsettled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The hub caught up with a lagging queue: it is a normal queue again.
    pub fn resume(&self) {
        self.lock().lagging = false;
    }

    /// True while lagging.
    pub fn is_lagging(&self) -> bool {
        self.lock().lagging
    }

    /// Ends the stream with `status` once what is queued now is sent (a slow consumer's
    /// resyncs reach it before the status). Nothing more is queued.
    pub fn close(&self, status: Status) {
        self.set_closed(status, false);
    }

    /// Ends the stream with `status` next: what is queued is dropped (shutdown).
    pub fn close_now(&self, status: Status) {
        self.set_closed(status, true);
    }

    fn set_closed(&self, status: Status, drop_queued: bool) {
        let mut inner = self.lock();
        if drop_queued {
            inner.items.clear();
        }
        if inner.closed.is_none() {
            inner.closed = Some(status);
        }
        self.closing.store(true, Ordering::Release);
        drop(inner);
        self.notify.notify_one();
    }

    /// True once a status is set (cheap: no lock).
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// The reader is gone: pushes fail from now on.
    pub fn abandon(&self) {
        self.lock().gone = true;
    }

    /// Updates queued now.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes up to `max` updates into `out`. Once closed, what is still queued comes first;
    /// then `Err` with the closing status.
    pub fn take(&self, max: usize, out: &mut Vec<BookUpdate>) -> Result<Taken, Status> {
        let mut inner = self.lock();
        if inner.items.is_empty()
            && let Some(status) = inner.closed.take()
        {
            inner.gone = true;
            return Err(status);
        }
        let n = inner.items.len().min(max);
        out.extend(inner.items.drain(..n));
        if inner.lagging && inner.items.is_empty() && inner.closed.is_none() {
            return Ok(Taken::CaughtUp);
        }
        Ok(Taken::Some)
    }

    /// Takes everything queued and the closing status, if the queue is closed (the stream
    /// ends now, with what is queued and the status after what it already holds).
    pub fn take_rest(&self) -> (Vec<BookUpdate>, Option<Status>) {
        let mut inner = self.lock();
        inner.gone = true;
        let rest = inner.items.drain(..).collect();
        (rest, inner.closed.take())
    }

    /// Waits until something may have been queued.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{self, book_update::Update};

    fn beat(n: u64) -> BookUpdate {
        BookUpdate {
            update: Some(Update::Heartbeat(pb::Heartbeat { send_ns: n })),
        }
    }

    #[test]
    fn a_close_delivers_what_is_queued_first_and_close_now_does_not() {
        let q = Queue::new(4);
        assert_eq!(q.push(beat(1)), Pushed::Queued);
        q.close(Status::resource_exhausted("slow"));
        assert_eq!(q.push(beat(2)), Pushed::Closed);
        let mut out = Vec::new();
        assert!(matches!(q.take(10, &mut out), Ok(Taken::Some)));
        assert_eq!(out, [beat(1)]);
        let status = q.take(10, &mut out).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);

        let q = Queue::new(4);
        q.force(beat(1));
        q.close_now(Status::unavailable("bye"));
        let mut out = Vec::new();
        assert!(q.take(10, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn a_lagging_queue_reports_once_drained() {
        let q = Queue::new(2);
        q.force(beat(1));
        q.force(beat(2));
        assert_eq!(q.push(beat(3)), Pushed::Full);
        assert!(q.lag().is_empty(), "no removal was dropped");
        q.force(beat(4));
        let mut out = Vec::new();
        assert!(matches!(q.take(10, &mut out), Ok(Taken::CaughtUp)));
        q.resume();
        assert!(matches!(q.take(10, &mut out), Ok(Taken::Some)));
    }

    fn delta(symbol: &str, seq: u64) -> BookUpdate {
        BookUpdate {
            update: Some(Update::Delta(pb::BookDelta {
                symbol: symbol.into(),
                seq,
                ..pb::BookDelta::default()
            })),
        }
    }

    #[test]
    fn an_overflow_keeps_removals_and_tells_the_first_dropped_seq_of_each_symbol() {
        let q = Queue::new(8);
        let removed = BookUpdate {
            update: Some(Update::Removed(pb::SymbolRemoved {
                symbol: "B".into(),
                seq: 3,
            })),
        };
        for u in [delta("A", 5), delta("B", 2), removed.clone(), delta("A", 6)] {
            q.force(u);
        }
        assert_eq!(q.lag(), [removed]);
        assert!(q.is_empty());
        assert_eq!(q.first_dropped("A"), Some(5));
        q.settle();
        assert_eq!(q.first_dropped("A"), Some(5));
        assert_eq!(q.first_dropped("C"), None);
        let rewinds = q.take_rewinds();
        assert_eq!((rewinds["A"], rewinds["B"], rewinds.len()), (5, 2, 2));
        assert!(q.take_rewinds().is_empty());
    }
}
