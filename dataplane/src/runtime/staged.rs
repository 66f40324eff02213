//! [`Staged`]: the level events of one poll, published to the event ring together.
//!
//! Pushing each event as it is made writes one ring slot and one release store per event,
//! interleaved with the book's own misses. A shard instead stages its level events in a small
//! buffer that stays in L1 and copies them into the ring in one run at the end of each poll
//! (or when the buffer fills), published with one store. An event is staged only when the ring
//! is known to have room for it, so a staged event is never lost; when the ring is full the
//! caller treats the event as before (counted, the symbol resynced).
//!
//! Every other push to the ring must come after [`Staged::publish`], so events stay in the
//! order they were made.

use super::event::Event;
use crate::ring::Producer;

/// Events staged at most before they are published.
pub const STAGE: usize = 256;

/// Events a stage for a grouped source (DBN) holds: a poll's groups are published together,
/// never part of one ([`Staged::for_groups`]).
pub const GROUP_STAGE: usize = 4096;

/// Level events waiting for the end of the poll.
#[derive(Debug)]
pub struct Staged {
    events: Vec<Event>,
    /// Ring slots known free at the last look, less those staged since.
    room: usize,
    /// Events published since [`Staged::take_published`] was last called.
    published: u64,
    /// Events staged at most.
    capacity: usize,
    /// A full stage publishes (false: it refuses the event, as a full ring does).
    publish_when_full: bool,
}

impl Default for Staged {
    fn default() -> Self {
        Self::new()
    }
}

impl Staged {
    /// An empty stage, its buffer reserved.
    pub fn new() -> Self {
        Self {
            events: Vec::with_capacity(STAGE),
            room: 0,
            published: 0,
            capacity: STAGE,
            publish_when_full: true,
        }
    }

    /// A stage for a grouped source: [`GROUP_STAGE`] events, never published before the end
    /// of the poll. An event beyond them is refused like one the ring has no room for (the
    /// caller counts it and resyncs the symbol after the poll), so no group is ever published
    /// in part.
    pub fn for_groups() -> Self {
        Self {
            events: Vec::with_capacity(GROUP_STAGE),
            capacity: GROUP_STAGE,
            publish_when_full: false,
            ..Self::new()
        }
    }

    /// Stages `event` if `ring` will have room for it; false if the ring is full. Always
    /// inlined: the event is then written once, into the stage, instead of being built on the
    /// stack and copied (a copy read back right after its field-wise stores stalls).
    #[inline(always)]
    pub fn stage(&mut self, ring: &mut Producer<Event>, event: Event) -> bool {
        if self.events.len() == self.capacity {
            if !self.publish_when_full {
                return false;
            }
            self.publish(ring);
        }
        if self.events.len() >= self.room {
            // a fresh look at the consumer's progress, only when the last one is used up
            self.room = ring.slots();
            if self.events.len() >= self.room {
                return false;
            }
        }
        self.events.push(event);
        true
    }

    /// Copies the staged events into `ring` and publishes them with one store.
    pub fn publish(&mut self, ring: &mut Producer<Event>) {
        if self.events.is_empty() {
            return;
        }
        // Every staged event had a free slot counted for it, and only this thread pushes.
        let pushed = ring.push_slice(&self.events);
        debug_assert_eq!(pushed, self.events.len());
        self.published += pushed as u64;
        self.events.clear();
        // other pushes may follow before the next stage: look again then
        self.room = 0;
    }

    /// Events published since the last call.
    pub fn take_published(&mut self) -> u64 {
        std::mem::take(&mut self.published)
    }

    /// True when nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring;

    fn event(i: u64) -> Event {
        Event::Stale { first: i, count: 1 }
    }

    #[test]
    fn a_stage_for_groups_never_publishes_before_the_poll_ends() {
        let (mut producer, mut consumer) = ring::ring::<Event>(GROUP_STAGE * 2);
        let mut staged = Staged::for_groups();
        for i in 0..GROUP_STAGE as u64 {
            assert!(staged.stage(&mut producer, event(i)));
        }
        assert!(consumer.pop().is_none(), "nothing published while staging");
        // one more is refused (the symbol is resynced after the poll), not published early
        assert!(!staged.stage(&mut producer, event(GROUP_STAGE as u64)));
        assert!(consumer.pop().is_none());
        staged.publish(&mut producer);
        assert_eq!(staged.take_published(), GROUP_STAGE as u64);
    }

    #[test]
    fn events_are_published_in_order_and_only_with_room() {
        let (mut producer, mut consumer) = ring::ring::<Event>(4);
        let mut staged = Staged::new();
        for i in 0..4 {
            assert!(staged.stage(&mut producer, event(i)));
        }
        // the ring has four slots, all promised
        assert!(!staged.stage(&mut producer, event(4)));
        assert!(
            consumer.pop().is_none(),
            "nothing is visible before publish"
        );
        staged.publish(&mut producer);
        assert_eq!(staged.take_published(), 4);
        let got: Vec<Event> = std::iter::from_fn(|| consumer.pop()).collect();
        assert_eq!(got, (0..4).map(event).collect::<Vec<_>>());
        assert!(staged.stage(&mut producer, event(5)));
        assert!(!staged.is_empty());
    }

    #[test]
    fn a_full_stage_publishes_itself() {
        let (mut producer, mut consumer) = ring::ring::<Event>(2 * STAGE);
        let mut staged = Staged::new();
        for i in 0..STAGE as u64 + 1 {
            assert!(staged.stage(&mut producer, event(i)));
        }
        assert_eq!(staged.take_published(), STAGE as u64);
        staged.publish(&mut producer);
        assert_eq!(staged.take_published(), 1);
        assert_eq!(std::iter::from_fn(|| consumer.pop()).count(), STAGE + 1);
    }
}
