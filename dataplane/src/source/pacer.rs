//! [`Pacer`]: releases messages at a fixed rate, without coordinated omission.
//!
//! Message `i` (from 0) is *intended* at `start + i * 1e9 / rate` nanoseconds. A caller that
//! stalls does not push the schedule back: when it returns, everything that fell due meanwhile
//! is due at once (at most `max` per call), so the sender catches up and a latency measured
//! from [`Pacer::scheduled_ns`] includes the time the message waited for the stalled sender.
//!
//! Time is passed in (quinn-proto style), so the pacer is deterministic and tested without a
//! clock.
//!
//! ```
//! use dataplane::source::pacer::Pacer;
//!
//! let mut pacer = Pacer::new(1_000); // one message per millisecond
//! assert_eq!(pacer.allowance(5_000_000, 100), 1); // message 0 is due at the start
//! pacer.release(1);
//! assert_eq!(pacer.allowance(5_999_999, 100), 0);
//! assert_eq!(pacer.scheduled_ns(), 6_000_000);
//! // a 10 ms stall: ten messages fell due, handed out at most 4 at a time
//! assert_eq!(pacer.allowance(15_999_999, 4), 4);
//! ```

const NS_PER_SEC: u128 = 1_000_000_000;

/// Releases messages at `rate` per second from a start time; see the [module docs](self).
///
/// [`Pacer::allowance`] says how many messages are due; [`Pacer::release`] records how many
/// were actually sent. Keeping the two apart lets a sender hand out fewer than it was allowed
/// (a batch that filled up, a file that ended) without losing its place in the schedule.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: u64,
    /// `None` until the first [`Pacer::allowance`] or [`Pacer::start`].
    start: Option<u64>,
    released: u64,
    /// Intended time of message `released`: the fast path of an idle poll compares with it.
    next_ns: u64,
}

impl Pacer {
    /// A pacer releasing `rate_per_sec` messages per second. A rate of 0 is taken as 1 (use
    /// no pacer at all for "as fast as possible").
    pub fn new(rate_per_sec: u64) -> Pacer {
        Pacer {
            rate: rate_per_sec.max(1),
            start: None,
            released: 0,
            next_ns: 0,
        }
    }

    /// The rate, in messages per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Starts the schedule at `now_ns`: message 0 is intended then. Does nothing if the pacer
    /// has already started.
    pub fn start(&mut self, now_ns: u64) {
        if self.start.is_none() {
            self.start = Some(now_ns);
            self.next_ns = now_ns;
        }
    }

    /// Whether the schedule has started.
    pub fn is_started(&self) -> bool {
        self.start.is_some()
    }

    /// How many messages are due at `now_ns` and not yet released, at most `max`. Starts the
    /// schedule at `now_ns` if it has not started. Does not count them as released: call
    /// [`Pacer::release`] with the number actually sent.
    #[inline]
    pub fn allowance(&mut self, now_ns: u64, max: usize) -> usize {
        self.start(now_ns);
        if now_ns < self.next_ns || max == 0 {
            return 0;
        }
        let due = self.due_by(now_ns);
        let behind = due.saturating_sub(self.released);
        usize::try_from(behind).map_or(max, |b| b.min(max))
    }

    /// Records that `n` more messages were sent, moving [`Pacer::scheduled_ns`] on.
    #[inline]
    pub fn release(&mut self, n: usize) {
        self.released = self.released.saturating_add(n as u64);
        self.next_ns = self.intended_ns(self.released);
    }

    /// Messages released since the start.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// The intended time of the next message to release (the start time before the pacer
    /// has started, 0 if not even that is known).
    pub fn scheduled_ns(&self) -> u64 {
        self.next_ns
    }

    /// The intended time of message `index` (0 is the start), saturating at `u64::MAX`.
    pub fn intended_ns(&self, index: u64) -> u64 {
        let offset = u128::from(index) * NS_PER_SEC / u128::from(self.rate);
        let start = u128::from(self.start.unwrap_or(0));
        u64::try_from(start + offset).unwrap_or(u64::MAX)
    }

    /// How many messages are intended at or before `now_ns`: the `i` with
    /// `floor(i * 1e9 / rate) <= elapsed`, that is `i * 1e9 < (elapsed + 1) * rate`.
    fn due_by(&self, now_ns: u64) -> u64 {
        let elapsed = now_ns.saturating_sub(self.start.unwrap_or(now_ns));
        let scaled = (u128::from(elapsed) + 1) * u128::from(self.rate);
        u64::try_from(scaled.div_ceil(NS_PER_SEC)).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes and releases everything the pacer allows at `now`.
    fn take(p: &mut Pacer, now: u64, max: usize) -> usize {
        let n = p.allowance(now, max);
        p.release(n);
        n
    }

    #[test]
    fn releases_one_message_per_interval() {
        let mut p = Pacer::new(1_000_000); // one per microsecond
        assert!(!p.is_started());
        assert_eq!(take(&mut p, 100, 10), 1, "message 0 is due at the start");
        assert!(p.is_started());
        assert_eq!(take(&mut p, 100, 10), 0);
        assert_eq!(take(&mut p, 1_099, 10), 0);
        assert_eq!(p.scheduled_ns(), 1_100);
        assert_eq!(take(&mut p, 1_100, 10), 1);
        assert_eq!(take(&mut p, 5_100, 10), 4);
        assert_eq!(p.released(), 6);
        assert_eq!(p.scheduled_ns(), 6_100);
    }

    #[test]
    fn catches_up_after_a_stall_in_chunks_of_max() {
        let mut p = Pacer::new(1_000);
        p.start(0);
        // one second late: messages 0..=1000 are all due
        let mut total = 0;
        let mut calls = 0;
        loop {
            let n = take(&mut p, 1_000_000_000, 64);
            if n == 0 {
                break;
            }
            assert!(n <= 64);
            total += n;
            calls += 1;
        }
        assert_eq!(total, 1_001);
        assert_eq!(calls, 1_001usize.div_ceil(64));
        assert_eq!(p.scheduled_ns(), 1_001_000_000);
    }

    #[test]
    fn allowance_does_not_count_until_released() {
        let mut p = Pacer::new(10);
        p.start(0);
        assert_eq!(p.allowance(250_000_000, 100), 3);
        assert_eq!(p.allowance(250_000_000, 100), 3, "nothing released yet");
        p.release(2);
        assert_eq!(p.allowance(250_000_000, 100), 1);
        assert_eq!(p.scheduled_ns(), 200_000_000);
    }

    #[test]
    fn start_is_lazy_and_only_once() {
        let mut p = Pacer::new(2);
        p.start(1_000);
        p.start(9_000_000_000);
        assert_eq!(p.allowance(1_000, 10), 1);
        assert_eq!(p.intended_ns(3), 1_000 + 1_500_000_000);
        assert_eq!(
            p.allowance(0, 10),
            0,
            "a clock before the start releases nothing"
        );
    }

    #[test]
    fn uneven_rates_never_drift() {
        // 3 per second: intended at 0, 333_333_333, 666_666_666, 1e9, ...
        let mut p = Pacer::new(3);
        p.start(0);
        assert_eq!(take(&mut p, 333_333_332, 10), 1);
        assert_eq!(take(&mut p, 333_333_333, 10), 1);
        assert_eq!(take(&mut p, 999_999_999, 10), 1);
        assert_eq!(take(&mut p, 1_000_000_000, 10), 1);
        assert_eq!(take(&mut p, 3_000_000_000_000, usize::MAX), 8_997);
        assert_eq!(p.released(), 9_001);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let mut p = Pacer::new(u64::MAX);
        p.start(0);
        assert_eq!(p.allowance(u64::MAX, usize::MAX), usize::MAX);
        p.release(usize::MAX);
        p.release(usize::MAX);
        assert_eq!(p.released(), u64::MAX);
        let mut slow = Pacer::new(0);
        assert_eq!(slow.rate(), 1);
        slow.start(u64::MAX - 10);
        slow.release(5);
        assert_eq!(slow.scheduled_ns(), u64::MAX);
        assert_eq!(slow.allowance(u64::MAX, 10), 0);
    }
}

/// Pacing by a file's own timestamps (ITCH BinaryFILE, DBN): a message stamped `ts` is due once
/// `now - start >= (ts - first_ts) / speed`, passes of a looping file following each other.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimestampPace {
    pub(crate) speed: f64,
    /// The clock when the first message was released.
    pub(crate) start_ns: Option<u64>,
    /// The first timestamp of the current pass.
    pub(crate) first_ts: Option<u64>,
    /// Recorded nanoseconds of the passes before this one, so a loop continues smoothly.
    pub(crate) base_ns: u64,
    /// The largest `ts - first_ts` of this pass.
    pub(crate) pass_span_ns: u64,
    /// The clock time the frame at the offset is due; an idle poll compares with it alone.
    pub(crate) waiting_until: u64,
}

impl TimestampPace {
    /// When a message stamped `ts` is due on the local clock (`now` starts the replay).
    pub(crate) fn due_ns(&mut self, ts: Option<u64>, now: u64) -> u64 {
        let start = *self.start_ns.get_or_insert(now);
        // A message too short to carry a timestamp goes with the one before it.
        let ts = ts.or(self.first_ts.map(|first| first + self.pass_span_ns));
        let Some(ts) = ts else { return start };
        let first = *self.first_ts.get_or_insert(ts);
        let since_first = ts.saturating_sub(first);
        self.pass_span_ns = self.pass_span_ns.max(since_first);
        let recorded = self.base_ns.saturating_add(since_first);
        start.saturating_add((recorded as f64 / self.speed) as u64)
    }

    /// A new pass begins where the last one ended.
    pub(crate) fn restart(&mut self) {
        self.base_ns = self.base_ns.saturating_add(self.pass_span_ns);
        self.first_ts = None;
        self.pass_span_ns = 0;
    }
}

impl TimestampPace {
    /// Pacing `speed` times faster than recorded, starting at the first message's time.
    pub(crate) const fn new(speed: f64) -> Self {
        Self {
            speed,
            start_ns: None,
            first_ts: None,
            base_ns: 0,
            pass_span_ns: 0,
            waiting_until: 0,
        }
    }
}

/// How fast a file source (ITCH BinaryFILE, DBN) releases messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the shard polls: `max` messages per poll.
    Unpaced,
    /// A fixed rate in messages per second (see [`Pacer`]; no coordinated omission).
    Rate(u64),
    /// The file's own timestamps (ITCH: header bytes 5..11, ns since midnight; DBN:
    /// `ts_event`), scaled: a message is released once `now - start >= (ts - first_ts) /
    /// speed`. `speed` 1.0 is real time, 10.0 ten times faster.
    Timestamps {
        /// The replay speed relative to the recorded day; positive and finite.
        speed: f64,
    },
}

/// A [`Pace`] that never releases anything, or not at a speed that can be computed.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PaceError {
    /// [`Pace::Rate`] of 0.
    #[error("a pace of 0 messages per second never releases anything; use Pace::Unpaced")]
    ZeroRate,
    /// [`Pace::Timestamps`] with a speed that is not positive and finite.
    #[error(
        "timestamp replay speed {speed} is not a positive finite number; use 1.0 for real time"
    )]
    BadSpeed {
        /// The speed given.
        speed: f64,
    },
}

/// A checked [`Pace`] with its state: what a file source's polls consult.
#[derive(Debug)]
pub(crate) enum Pacing {
    Unpaced,
    Rate(Pacer),
    Timestamps(TimestampPace),
}

impl Pacing {
    /// The pacing `pace` asks for.
    pub(crate) fn of(pace: Pace) -> Result<Self, PaceError> {
        match pace {
            Pace::Unpaced => Ok(Self::Unpaced),
            Pace::Rate(0) => Err(PaceError::ZeroRate),
            Pace::Rate(rate) => Ok(Self::Rate(Pacer::new(rate))),
            Pace::Timestamps { speed } if !(speed.is_finite() && speed > 0.0) => {
                Err(PaceError::BadSpeed { speed })
            }
            Pace::Timestamps { speed } => Ok(Self::Timestamps(TimestampPace::new(speed))),
        }
    }

    /// How many messages a poll at `now` may release, at most `max` (timestamp pacing checks
    /// each message's own time as it goes).
    #[inline]
    pub(crate) fn budget(&mut self, now: u64, max: usize) -> usize {
        match self {
            Self::Unpaced => max,
            Self::Rate(pacer) => pacer.allowance(now, max),
            Self::Timestamps(t) if now < t.waiting_until => 0,
            Self::Timestamps(_) => max,
        }
    }
}
