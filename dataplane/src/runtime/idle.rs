//! What a busy-polling loop does when an iteration found no work: [`IdleStrategy`] says how,
//! [`Idler`] keeps the state of one loop.
//!
//! The shard loop calls [`Idler::idle`] after an iteration that did nothing and
//! [`Idler::reset`] after one that did something. Consecutive idle iterations escalate:
//! spinning (a `pause`, the core stays ours, reaction in nanoseconds), then yielding (one
//! `sched_yield`: another runnable thread on this core may run), then parking (a short sleep:
//! the core is free, reaction in tens of microseconds).
//!
//! ```
//! use dataplane::runtime::idle::{IdleStrategy, Idled, Idler};
//!
//! let strategy: IdleStrategy = "spin-yield".parse().unwrap();
//! let mut idler = Idler::new(strategy);
//! assert_eq!(idler.idle(), Idled::Spun); // nothing to do: spin
//! idler.reset(); // work arrived: the next idle iteration starts spinning again
//! assert_eq!(idler.streak(), 0);
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How a busy-polling loop spends an iteration that found no work.
///
/// Only [`name`](Self::name) is printed and parsed (`spin`, `spin-yield`, `backoff`); parsing
/// gives the default parameters ([`DEFAULT_SPIN_THEN_YIELD`](Self::DEFAULT_SPIN_THEN_YIELD),
/// [`DEFAULT_BACKOFF`](Self::DEFAULT_BACKOFF)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdleStrategy {
    /// `spin_loop()` on every idle iteration; never a syscall. Lowest latency, and a core at
    /// 100% forever: only for a core nothing else is scheduled on.
    Spin,
    /// Spin for `spins` consecutive idle iterations, then `yield_now()` on each further one.
    /// Lets another runnable thread on the same core in, but still burns the core when there
    /// is none.
    SpinThenYield {
        /// Idle iterations that spin before the first yield.
        spins: u32,
    },
    /// Spin for `spins` consecutive idle iterations, yield for the next `yields`, then sleep
    /// for `park` on each further one. Frees the core when the feed is quiet.
    Backoff {
        /// Idle iterations that spin before the first yield.
        spins: u32,
        /// Idle iterations that yield before the first park.
        yields: u32,
        /// How long each parked idle iteration sleeps.
        park: Duration,
    },
}

impl IdleStrategy {
    /// The names [`FromStr`] accepts and [`Display`](fmt::Display) prints, in that order:
    /// `Spin`, `SpinThenYield`, `Backoff`.
    pub const NAMES: [&'static str; 3] = ["spin", "spin-yield", "backoff"];

    /// `spin-yield` with its default parameters: 1024 spins (roughly 10–50 µs of polling,
    /// depending on the cost of one poll and of `pause` on the CPU) before yielding, so a burst
    /// that pauses briefly is still met by a spinning core.
    pub const DEFAULT_SPIN_THEN_YIELD: Self = Self::SpinThenYield { spins: 1024 };

    /// `backoff` with its default parameters, chosen for a core shared with the control plane
    /// or the OS:
    /// - `spins: 1024`: as in [`DEFAULT_SPIN_THEN_YIELD`](Self::DEFAULT_SPIN_THEN_YIELD), the
    ///   first 10–50 µs of a quiet spell still react in nanoseconds;
    /// - `yields: 64`: about as long again (a `sched_yield` costs around a microsecond) while
    ///   letting the control plane in if it is runnable on this core;
    /// - `park: 50 µs`: then sleep. With Linux's default 50 µs timer slack a wakeup comes every
    ///   ~50–100 µs, so a quiet shard costs about 1% of a core and the first message after a
    ///   long quiet spell waits at most ~100 µs.
    pub const DEFAULT_BACKOFF: Self = Self::Backoff {
        spins: 1024,
        yields: 64,
        park: Duration::from_micros(50),
    };

    /// The default for a shard thread. `core_is_shared` says whether anything else (the
    /// control plane, another shard, the OS's own work) is scheduled on the shard's core.
    ///
    /// [`Spin`](Self::Spin) only on a core of its own: spinning on a shared core takes it
    /// from whoever shares it (on a 2-core machine it starves the control plane).
    /// Otherwise [`DEFAULT_BACKOFF`](Self::DEFAULT_BACKOFF).
    pub const fn default_for(core_is_shared: bool) -> Self {
        if core_is_shared {
            Self::DEFAULT_BACKOFF
        } else {
            Self::Spin
        }
    }

    /// The strategy tests should give their loops: a few spins, then yields, then 20 µs parks,
    /// so a test loop waiting for work leaves the CPU to the rest of the test run (and to
    /// parallel builds) on a 2-core machine. With the `test-support` feature.
    #[cfg(any(test, feature = "test-support"))]
    pub const fn for_tests() -> Self {
        Self::Backoff {
            spins: 64,
            yields: 16,
            park: Duration::from_micros(20),
        }
    }

    /// The strategy's name, one of [`NAMES`](Self::NAMES).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Spin => Self::NAMES[0],
            Self::SpinThenYield { .. } => Self::NAMES[1],
            Self::Backoff { .. } => Self::NAMES[2],
        }
    }
}

impl fmt::Display for IdleStrategy {
    /// Prints the [`name`](IdleStrategy::name) only (parameters are not part of it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that names no idle strategy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown idle strategy {given:?}: use one of spin, spin-yield, backoff")]
pub struct ParseIdleStrategyError {
    /// What was given.
    pub given: String,
}

impl FromStr for IdleStrategy {
    type Err = ParseIdleStrategyError;

    /// Accepts exactly `spin`, `spin-yield` or `backoff`, giving the default parameters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "spin" => Ok(Self::Spin),
            "spin-yield" => Ok(Self::DEFAULT_SPIN_THEN_YIELD),
            "backoff" => Ok(Self::DEFAULT_BACKOFF),
            _ => Err(ParseIdleStrategyError {
                given: s.to_owned(),
            }),
        }
    }
}

/// What one idle iteration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idled {
    /// Spun once (a `pause`).
    Spun,
    /// Gave the core away (`yield_now`).
    Yielded,
    /// Slept for the strategy's park time.
    Parked,
}

/// The idle state of one busy-polling loop: how many idle iterations in a row it has had.
/// Owned by the loop's thread.
#[derive(Clone, Debug)]
pub struct Idler {
    strategy: IdleStrategy,
    /// Idle iterations since the last [`reset`](Self::reset) (saturating).
    streak: u64,
}

impl Idler {
    /// An idler for `strategy`, with no idle iterations yet.
    pub const fn new(strategy: IdleStrategy) -> Self {
        Self {
            strategy,
            streak: 0,
        }
    }

    /// Spends one iteration that found no work, as the strategy says for the current run of
    /// consecutive idle iterations: spin, yield, or park. Returns which it did.
    #[inline]
    pub fn idle(&mut self) -> Idled {
        let streak = self.streak;
        self.streak = streak.saturating_add(1);
        let action = match self.strategy {
            IdleStrategy::Spin => Idled::Spun,
            IdleStrategy::SpinThenYield { spins } if streak < u64::from(spins) => Idled::Spun,
            IdleStrategy::SpinThenYield { .. } => Idled::Yielded,
            IdleStrategy::Backoff { spins, yields, .. } => {
                if streak < u64::from(spins) {
                    Idled::Spun
                } else if streak < u64::from(spins) + u64::from(yields) {
                    Idled::Yielded
                } else {
                    Idled::Parked
                }
            }
        };
        match (action, self.strategy) {
            (Idled::Spun, _) => crate::sync::spin_loop(),
            (Idled::Yielded, _) => std::thread::yield_now(),
            (Idled::Parked, IdleStrategy::Backoff { park, .. }) => std::thread::sleep(park),
            (Idled::Parked, _) => {}
        }
        action
    }

    /// Records that the iteration did work: the next idle iteration starts over at spinning.
    #[inline]
    pub fn reset(&mut self) {
        self.streak = 0;
    }

    /// The current strategy.
    pub const fn strategy(&self) -> IdleStrategy {
        self.strategy
    }

    /// Switches to `strategy` (runtime reconfiguration); the run of idle iterations starts
    /// over.
    pub fn set_strategy(&mut self, strategy: IdleStrategy) {
        self.strategy = strategy;
        self.streak = 0;
    }

    /// Idle iterations since the last [`reset`](Self::reset) or strategy change.
    pub const fn streak(&self) -> u64 {
        self.streak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each of `calls` idle calls did: `s` spun, `y` yielded, `p` parked.
    fn trace(idler: &mut Idler, calls: usize) -> String {
        (0..calls)
            .map(|_| match idler.idle() {
                Idled::Spun => 's',
                Idled::Yielded => 'y',
                Idled::Parked => 'p',
            })
            .collect()
    }

    #[test]
    fn spin_only_spins() {
        let mut idler = Idler::new(IdleStrategy::Spin);
        assert_eq!(trace(&mut idler, 1000), "s".repeat(1000));
        assert_eq!(idler.streak(), 1000);
    }

    #[test]
    fn spin_then_yield_escalates_once() {
        let mut idler = Idler::new(IdleStrategy::SpinThenYield { spins: 3 });
        assert_eq!(trace(&mut idler, 6), "sssyyy");
    }

    #[test]
    fn spin_then_yield_with_no_spins_yields_at_once() {
        let mut idler = Idler::new(IdleStrategy::SpinThenYield { spins: 0 });
        assert_eq!(trace(&mut idler, 2), "yy");
    }

    #[test]
    fn backoff_spins_then_yields_then_parks() {
        let mut idler = Idler::new(IdleStrategy::Backoff {
            spins: 2,
            yields: 2,
            park: Duration::from_micros(1),
        });
        assert_eq!(trace(&mut idler, 7), "ssyyppp");
    }

    #[test]
    fn reset_starts_over_at_spinning() {
        let mut idler = Idler::new(IdleStrategy::Backoff {
            spins: 1,
            yields: 1,
            park: Duration::from_micros(1),
        });
        assert_eq!(trace(&mut idler, 3), "syp");
        idler.reset();
        assert_eq!(idler.streak(), 0);
        assert_eq!(trace(&mut idler, 3), "syp");
    }

    #[test]
    fn set_strategy_starts_over() {
        let mut idler = Idler::new(IdleStrategy::SpinThenYield { spins: 1 });
        assert_eq!(trace(&mut idler, 2), "sy");
        let backoff = IdleStrategy::Backoff {
            spins: 1,
            yields: 0,
            park: Duration::from_micros(1),
        };
        idler.set_strategy(backoff);
        assert_eq!(idler.strategy(), backoff);
        assert_eq!(idler.streak(), 0);
        assert_eq!(trace(&mut idler, 2), "sp");
    }

    #[test]
    fn names_round_trip() {
        for (name, strategy) in IdleStrategy::NAMES.iter().zip([
            IdleStrategy::Spin,
            IdleStrategy::DEFAULT_SPIN_THEN_YIELD,
            IdleStrategy::DEFAULT_BACKOFF,
        ]) {
            assert_eq!(name.parse::<IdleStrategy>(), Ok(strategy));
            assert_eq!(strategy.to_string(), *name);
            assert_eq!(strategy.name(), *name);
            assert_eq!(strategy.to_string().parse::<IdleStrategy>(), Ok(strategy));
        }
        // Parameters are not printed: any spin-yield prints as spin-yield.
        assert_eq!(
            IdleStrategy::SpinThenYield { spins: 7 }.to_string(),
            "spin-yield"
        );
    }

    #[test]
    fn unknown_names_are_rejected_with_the_accepted_ones() {
        for bad in ["", "Spin", "yield", "spin_yield", " backoff", "park"] {
            let err = bad.parse::<IdleStrategy>().unwrap_err();
            assert_eq!(err.given, bad);
            let msg = err.to_string();
            for name in IdleStrategy::NAMES {
                assert!(msg.contains(name), "{msg:?} does not list {name}");
            }
        }
        assert_eq!(
            "sleep".parse::<IdleStrategy>().unwrap_err().to_string(),
            r#"unknown idle strategy "sleep": use one of spin, spin-yield, backoff"#
        );
    }

    #[test]
    fn defaults() {
        assert_eq!(IdleStrategy::default_for(false), IdleStrategy::Spin);
        assert_eq!(
            IdleStrategy::default_for(true),
            IdleStrategy::DEFAULT_BACKOFF
        );
        // Tests must never spin forever on a shared 2-core machine.
        assert!(matches!(
            IdleStrategy::for_tests(),
            IdleStrategy::Backoff { .. }
        ));
    }
}
