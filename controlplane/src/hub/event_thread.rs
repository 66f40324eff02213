//! The body of an event thread: [`drain`] one shard's event ring into the hub.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dataplane::ring::Consumer;
use dataplane::runtime::event::Event;
use dataplane::runtime::idle::{IdleStrategy, Idler};

use super::Hub;

/// How an event thread idles when its ring is empty: yield for about a millisecond of quiet
/// (cheap when the core has nothing else to run), then sleep 50 µs per poll (a sleep costs its
/// length plus the timer's slack in latency).
const EVENT_THREAD_IDLE: IdleStrategy = IdleStrategy::Backoff {
    spins: 0,
    yields: 4096,
    park: Duration::from_micros(50),
};

/// Empty polls between two [`Hub::tick`]s of an idle event thread.
const TICK_EVERY: u64 = 64;

/// Drains `events` into `hub` until `stop` is set: the body of one event thread. Idles as
/// `EVENT_THREAD_IDLE` says when the ring stays empty, ticking the hub now and then.
pub fn drain(hub: &Hub, shard: u16, mut events: Consumer<Event>, stop: &AtomicBool) {
    let mut batch = Vec::with_capacity(1024);
    let mut idler = Idler::new(EVENT_THREAD_IDLE);
    let occupancy = hub.stats.ring_occupancy.get(shard as usize);
    while !stop.load(Ordering::Relaxed) {
        if let Some(o) = occupancy {
            o.store(events.len() as u64, Ordering::Relaxed);
        }
        events.pop_batch(1024, |e| batch.push(e));
        if batch.is_empty() {
            idler.idle();
            if idler.streak().is_multiple_of(TICK_EVERY) {
                hub.tick();
            }
            continue;
        }
        idler.reset();
        hub.apply(shard, &batch);
        batch.clear();
    }
}
