//! [`Queue`]: one subscriber's bounded queue of updates, filled by the event threads and
//! drained by the subscriber's gRPC stream.
//!
//! The writer never waits: when the queue is full it is emptied and the hub sends a resync
//! instead (see `hub`). A queue closed with a status ends its stream with that status.

use std::collections::VecDeque;
use std::sync::Mutex;

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

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<BookUpdate>,
    closed: Option<Status>,
    /// The reader went away.
    gone: bool,
}

/// A bounded queue of updates for one subscriber.
#[derive(Debug)]
pub struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
    capacity: usize,
}

impl Queue {
    /// An empty queue of `capacity` updates.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
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

    /// Queues `update` even past the capacity (a resync's snapshot after the queue was
    /// emptied).
    pub fn force(&self, update: BookUpdate) {
        let mut inner = self.lock();
        if inner.gone || inner.closed.is_some() {
            return;
        }
        inner.items.push_back(update);
        drop(inner);
        self.notify.notify_one();
    }

    /// Drops everything queued and returns it (the hub rewinds its sequence numbers to the
    /// first update the client will now never see).
    pub fn clear(&self) -> Vec<BookUpdate> {
        let mut inner = self.lock();
        inner.items.drain(..).collect()
    }

    /// Ends the stream with `status` once what is queued before it is sent (nothing is:
    /// the queue is emptied, the status goes out next).
    pub fn close(&self, status: Status) {
        let mut inner = self.lock();
        inner.items.clear();
        if inner.closed.is_none() {
            inner.closed = Some(status);
        }
        drop(inner);
        self.notify.notify_one();
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

    /// Takes up to `max` updates into `out`; `Err` with the closing status once closed.
    pub fn take(&self, max: usize, out: &mut Vec<BookUpdate>) -> Result<(), Status> {
        let mut inner = self.lock();
        if let Some(status) = inner.closed.take() {
            inner.gone = true;
            return Err(status);
        }
        let n = inner.items.len().min(max);
        out.extend(inner.items.drain(..n));
        Ok(())
    }

    /// Waits until something may have been queued.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}
