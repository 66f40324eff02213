//! [`Queue`]: one subscriber's bounded queue of updates, filled by the event threads and
//! drained by the subscriber's gRPC stream.
//!
//! The writer never waits: when the queue is full the hub drops what it holds and marks it
//! lagging (see `hub`): only the small resyncs stay queued, nothing more is built for it until
//! its stream has taken them ([`Taken::CaughtUp`]). A queue closed with a status ends its
//! stream with that status, after what is queued ([`Queue::close`]) or at once
//! ([`Queue::close_now`], shutdown).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tonic::Status;

use crate::pb::BookUpdate;

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
}

/// A bounded queue of updates for one subscriber.
#[derive(Debug)]
pub struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
    capacity: usize,
    /// A status is set: the stream checks it between sends without taking the lock.
    closing: AtomicBool,
}

impl Queue {
    /// An empty queue of `capacity` updates.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
            closing: AtomicBool::new(false),
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

    /// The queue overflowed: drops everything queued and returns it (the hub rewinds its
    /// sequence numbers to the first update the client will now never see, and queues back
    /// what must not be lost), and marks the queue lagging until its stream has taken what is
    /// queued next.
    pub fn lag(&self) -> Vec<BookUpdate> {
        let mut inner = self.lock();
        inner.lagging = true;
        inner.items.drain(..).collect()
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
        assert_eq!(q.lag().len(), 2);
        q.force(beat(4));
        let mut out = Vec::new();
        assert!(matches!(q.take(10, &mut out), Ok(Taken::CaughtUp)));
        q.resume();
        assert!(matches!(q.take(10, &mut out), Ok(Taken::Some)));
    }
}
