//! [`Simulator`]: the synthetic [`Generator`] running live, paced or flat out.
//!
//! The default feed: the service runs with no input at all. Each message is generated into
//! one buffer allocated at construction and handed over as a slice of it; the generator's
//! books never outgrow their preallocated size, so polling allocates nothing (see
//! `tests/zero_alloc.rs`).

use super::pacer::Pacer;
use super::{FeedEvent, FeedSource, Polled};
use crate::feed::generator::{Generator, GeneratorConfig};

/// Room for the longest message the generator writes (NOII, 50 bytes), with margin.
const MESSAGE_BUFFER: usize = 128;

/// What a [`Simulator`] generates, and how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulatorOptions {
    /// Number of symbols (stock locates `1..=symbols`); 0 is taken as 1.
    pub symbols: u16,
    /// RNG seed: the same seed and symbols give the same stream.
    pub seed: u64,
    /// Messages per second; 0 generates as fast as the shard polls.
    pub rate: u64,
}

/// A live synthetic ITCH 5.0 feed; see the [module docs](self). It never ends.
#[derive(Debug)]
pub struct Simulator {
    generator: Generator,
    pacer: Option<Pacer>,
    message: Vec<u8>,
    options: SimulatorOptions,
    messages: u64,
}

impl Simulator {
    /// A simulator for `options`. Allocates the generator's books and the message buffer.
    pub fn new(options: SimulatorOptions) -> Simulator {
        Simulator {
            generator: Generator::new(GeneratorConfig {
                symbols: options.symbols,
                seed: options.seed,
            }),
            pacer: (options.rate > 0).then(|| Pacer::new(options.rate)),
            message: Vec::with_capacity(MESSAGE_BUFFER),
            options,
            messages: 0,
        }
    }

    /// The symbol names, locate 1 first.
    pub fn symbol_names(&self) -> impl Iterator<Item = &str> {
        self.generator.symbol_names()
    }

    /// Messages generated so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// The intended time of the next message when paced (for latency measured from intended
    /// time), `None` when unpaced.
    pub fn scheduled_ns(&self) -> Option<u64> {
        self.pacer.as_ref().map(Pacer::scheduled_ns)
    }
}

impl FeedSource for Simulator {
    fn poll(&mut self, now: u64, max: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> Polled {
        let due = match &mut self.pacer {
            Some(pacer) => pacer.allowance(now, max),
            None => max,
        };
        if due == 0 {
            return Polled::Idle;
        }
        for _ in 0..due {
            self.message.clear();
            self.generator.next_into(&mut self.message);
            sink(FeedEvent::Message(&self.message));
        }
        if let Some(pacer) = &mut self.pacer {
            pacer.release(due);
        }
        self.messages += due as u64;
        Polled::Events(due)
    }

    fn describe(&self) -> String {
        let pace = match self.options.rate {
            0 => "unpaced".to_owned(),
            rate => format!("at {rate} msg/s"),
        };
        format!(
            "simulator of {} symbols (seed {}) {pace}",
            self.options.symbols.max(1),
            self.options.seed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock;
    use crate::feed::itch::parse;

    fn collect(sim: &mut Simulator, max: usize) -> (Polled, Vec<Vec<u8>>) {
        let mut out = Vec::new();
        let polled = sim.poll(clock::now_ns(), max, &mut |e| match e {
            FeedEvent::Message(m) => out.push(m.to_vec()),
            other => panic!("a simulator only sends messages: {other:?}"),
        });
        (polled, out)
    }

    #[test]
    fn unpaced_gives_max_valid_messages_per_poll() {
        let mut sim = Simulator::new(SimulatorOptions {
            symbols: 3,
            seed: 1,
            rate: 0,
        });
        let (polled, messages) = collect(&mut sim, 50);
        assert_eq!(polled, Polled::Events(50));
        assert_eq!(messages.len(), 50);
        assert_eq!(
            &messages[..2].iter().map(|m| m[0]).collect::<Vec<_>>(),
            b"SR"
        );
        for m in &messages {
            parse(m).unwrap_or_else(|e| panic!("{e}: {m:?}"));
        }
        assert_eq!(sim.messages(), 50);
        assert_eq!(sim.scheduled_ns(), None);
        assert_eq!(
            sim.symbol_names().collect::<Vec<_>>(),
            ["AAPL", "MSFT", "NVDA"]
        );
        assert_eq!(sim.describe(), "simulator of 3 symbols (seed 1) unpaced");
    }

    #[test]
    fn the_stream_is_the_generators() {
        let options = SimulatorOptions {
            symbols: 4,
            seed: 7,
            rate: 0,
        };
        let mut sim = Simulator::new(options);
        let mut generator = Generator::new(GeneratorConfig {
            symbols: 4,
            seed: 7,
        });
        for _ in 0..20 {
            let (_, messages) = collect(&mut sim, 100);
            for m in messages {
                let mut expected = Vec::new();
                generator.next_into(&mut expected);
                assert_eq!(m, expected);
            }
        }
    }

    #[test]
    fn paced_releases_by_the_clock() {
        let mut sim = Simulator::new(SimulatorOptions {
            symbols: 2,
            seed: 1,
            rate: 1_000,
        });
        let t0 = clock::now_ns();
        let (polled, messages) = collect(&mut sim, 100);
        assert_eq!((polled, messages.len()), (Polled::Events(1), 1));
        let scheduled = sim.scheduled_ns().expect("paced");
        assert!(scheduled > t0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (_, messages) = collect(&mut sim, 1_000);
        let elapsed_ms = (clock::now_ns() - t0) / 1_000_000;
        let n = messages.len() as u64;
        assert!((19..=elapsed_ms + 1).contains(&n), "{n} in {elapsed_ms} ms");
        assert!(sim.describe().contains("1000 msg/s"));
    }
}
