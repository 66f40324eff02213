//! A generated ITCH stream released at a fixed rate, each message stamped with its intended
//! release time (so latencies are measured from when a message was due: no coordinated
//! omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dataplane::feed::generator::{Generator, GeneratorConfig};
use dataplane::source::pacer::Pacer;
use dataplane::source::{FeedEvent, FeedSource, Polled};

/// A generated stream, released at `rate` messages per second (0: as fast as taken), each
/// message stamped with its intended release time.
pub struct Paced {
    bytes: Vec<u8>,
    frames: Vec<(usize, usize)>,
    next: usize,
    rate: u64,
    /// The schedule of the paced part (message `warmup` is its message 0), started by the
    /// first poll after the gate opens. Unpaced (`rate` 0) it runs at `u64::MAX` per second:
    /// every message is then due at once and intended at the start (`i * 1e9 / u64::MAX`
    /// rounds to 0), which is what an unpaced feed's stamps have always been.
    pacer: Pacer,
    /// Messages released at once before the paced part (directory, first orders).
    warmup: usize,
    /// The paced part starts once this is set (always, when `None`).
    go: Option<Arc<AtomicBool>>,
}

impl Paced {
    /// `messages` generated messages (120 symbols, seed 1) at `rate` per second (0: unpaced).
    pub fn new(messages: u64, rate: u64) -> Paced {
        let mut generator = Generator::new(GeneratorConfig {
            symbols: 120,
            seed: 1,
        });
        let mut bytes = Vec::with_capacity(messages as usize * 34);
        let mut frames = Vec::with_capacity(messages as usize);
        for _ in 0..messages {
            let start = bytes.len();
            generator.next_into(&mut bytes);
            frames.push((start, bytes.len()));
        }
        Paced {
            bytes,
            frames,
            next: 0,
            rate,
            pacer: Pacer::new(if rate == 0 { u64::MAX } else { rate }),
            warmup: 0,
            go: None,
        }
    }

    /// Releases the first `warmup` messages at once, and the rest (paced from that moment)
    /// only after `go` is set: subscribers can connect in between.
    pub fn gated(mut self, warmup: usize, go: Arc<AtomicBool>) -> Paced {
        self.warmup = warmup.min(self.frames.len());
        self.go = Some(go);
        self
    }
}

impl FeedSource for Paced {
    fn poll(&mut self, now: u64, max: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> Polled {
        if self.next == self.frames.len() {
            return Polled::Ended;
        }
        if self.next < self.warmup {
            let end = self.warmup.min(self.next + max);
            for i in self.next..end {
                let (a, b) = self.frames[i];
                sink(FeedEvent::Message(&self.bytes[a..b]));
            }
            let n = end - self.next;
            self.next = end;
            return Polled::Events(n);
        }
        if self
            .go
            .as_ref()
            .is_some_and(|go| !go.load(Ordering::Acquire))
        {
            return Polled::Idle;
        }
        let left = self.frames.len() - self.next;
        let n = self.pacer.allowance(now, max.min(left));
        if n == 0 {
            return Polled::Idle;
        }
        for i in self.next..self.next + n {
            let at = self.pacer.intended_ns((i - self.warmup) as u64);
            let (a, b) = self.frames[i];
            let message = &mut self.bytes[a..b];
            // ITCH timestamp: 6 bytes big-endian at offset 5
            message[5..11].copy_from_slice(&at.to_be_bytes()[2..]);
            sink(FeedEvent::Message(message));
        }
        self.pacer.release(n);
        self.next += n;
        Polled::Events(n)
    }

    fn describe(&self) -> String {
        format!(
            "{} generated messages at {} msg/s",
            self.frames.len(),
            self.rate
        )
    }
}
