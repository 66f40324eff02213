//! [`MemorySource`]: a feed held in memory, released up to a limit its [`Gate`] raises.
//!
//! For tests and benches that must put a command or a check at an exact point of a stream:
//! the source hands out its messages in order, never past the gate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{FeedEvent, FeedSource, Polled};

/// One scripted feed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// An ITCH message, unframed.
    Message(Vec<u8>),
    /// A gap of `count` messages from sequence `first`.
    Gap {
        /// First lost sequence number.
        first: u64,
        /// Messages lost.
        count: u64,
    },
}

/// Raises the limit of a [`MemorySource`] from any thread.
#[derive(Debug, Clone)]
pub struct Gate(Arc<AtomicUsize>);

impl Gate {
    /// Lets the source hand out its first `n` events.
    pub fn open_to(&self, n: usize) {
        self.0.store(n, Ordering::Release);
    }

    /// Lets the source hand out everything.
    pub fn open(&self) {
        self.open_to(usize::MAX);
    }
}

/// A scripted feed.
#[derive(Debug)]
pub struct MemorySource {
    events: Vec<Scripted>,
    next: usize,
    limit: Arc<AtomicUsize>,
}

impl MemorySource {
    /// A source of `events`, closed (nothing released) until its gate is opened.
    pub fn new(events: Vec<Scripted>) -> (MemorySource, Gate) {
        let limit = Arc::new(AtomicUsize::new(0));
        let gate = Gate(Arc::clone(&limit));
        (
            MemorySource {
                events,
                next: 0,
                limit,
            },
            gate,
        )
    }

    /// A source of ITCH messages.
    pub fn messages(messages: impl IntoIterator<Item = Vec<u8>>) -> (MemorySource, Gate) {
        Self::new(messages.into_iter().map(Scripted::Message).collect())
    }
}

impl FeedSource for MemorySource {
    fn poll(&mut self, _now: u64, max: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> Polled {
        if self.next >= self.events.len() {
            return Polled::Ended;
        }
        let end = self
            .limit
            .load(Ordering::Acquire)
            .min(self.events.len())
            .min(self.next.saturating_add(max));
        let mut n = 0;
        while self.next < end {
            match &self.events[self.next] {
                Scripted::Message(m) => sink(FeedEvent::Message(m)),
                Scripted::Gap { first, count } => sink(FeedEvent::Gap {
                    first: *first,
                    count: *count,
                }),
            }
            self.next += 1;
            n += 1;
        }
        if n == 0 {
            Polled::Idle
        } else {
            Polled::Events(n)
        }
    }

    fn describe(&self) -> String {
        format!("{} scripted events in memory", self.events.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_up_to_the_gate_in_order() {
        let (mut source, gate) = MemorySource::messages((0..5u8).map(|i| vec![b'S', i]));
        let mut seen = Vec::new();
        let mut sink = |e: FeedEvent<'_>| {
            if let FeedEvent::Message(m) = e {
                seen.push(m[1]);
            }
        };
        assert_eq!(source.poll(0, 10, &mut sink), Polled::Idle);
        gate.open_to(2);
        assert_eq!(source.poll(0, 10, &mut sink), Polled::Events(2));
        gate.open();
        assert_eq!(source.poll(0, 2, &mut sink), Polled::Events(2));
        assert_eq!(source.poll(0, 10, &mut sink), Polled::Events(1));
        assert_eq!(source.poll(0, 10, &mut sink), Polled::Ended);
        assert_eq!(seen, [0, 1, 2, 3, 4]);
    }
}
