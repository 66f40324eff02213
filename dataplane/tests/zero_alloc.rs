//! Steady-state ring and pool operations never touch the global allocator.
//!
//! A counting allocator counts allocations made by threads that armed it, so other tests
//! running in parallel do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::feed::generator::{Generator, GeneratorConfig};
use dataplane::pool::Pool;
use dataplane::ring::ring;
use dataplane::runtime::command::Command;
use dataplane::runtime::{DataPlane, ShardConfig};
use dataplane::source::memory::MemorySource;
use dataplane::source::{FeedEvent, FeedSource, Polled};
use dataplane::topology::Topology;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// Allocations by shard threads from the moment their loop starts.
static SHARD_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static SHARD: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if ARMED.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
    if SHARD.with(Cell::get) {
        SHARD_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The shard's start hook: from here on, its thread's allocations are counted.
fn arm_shard() {
    SHARD.with(|s| s.set(true));
}

// SAFETY: forwards every call unchanged to the system allocator; counting has no effect on
// the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn counting_allocator_sees_allocations() {
    // The test that cannot fail is no test: prove the counter works.
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);
}

#[test]
fn ring_push_pop_allocates_nothing() {
    let (mut tx, mut rx) = ring::<[u64; 4]>(1024);
    let mut sink = 0;
    let n = allocations_in(|| {
        for i in 0..100_000u64 {
            while tx.push([i; 4]).is_err() {
                rx.pop_batch(64, |v| sink ^= v[0]);
            }
            if i % 3 == 0 {
                let _ = tx.push_slice(&[[i; 4]; 8]);
            }
            if let Some(v) = rx.pop() {
                sink ^= v[1];
            }
        }
        rx.pop_batch(usize::MAX, |v| sink ^= v[2]);
    });
    std::hint::black_box(sink);
    assert_eq!(n, 0, "steady-state ring operations allocated {n} times");
}

#[test]
fn pool_alloc_free_allocates_nothing() {
    let mut pool = Pool::with_capacity(4096);
    let mut live = Vec::with_capacity(4096);
    let n = allocations_in(|| {
        for round in 0..50u64 {
            while let Ok(h) = pool.alloc(round) {
                live.push(h);
            }
            // free every other one, then the rest, in an order that scatters the free list
            for h in live.iter().step_by(2) {
                let _ = pool.free(*h);
            }
            for h in live.drain(..) {
                let _ = pool.free(h);
            }
        }
    });
    assert_eq!(n, 0, "steady-state pool operations allocated {n} times");
    assert!(pool.is_empty());
}

#[test]
fn order_store_and_level_table_operations_allocate_nothing() {
    use dataplane::book::level_table::LevelTable;
    use dataplane::book::order_store::{Order, OrderStore, StoreError};
    use dataplane::feed::itch::Side;

    let mut orders = OrderStore::new(None, 4096).expect("store");
    let mut levels = LevelTable::new(None, 4096).expect("table");
    let order = |reference: u64| Order {
        reference,
        price: (reference % 97) as i64,
        shares: 5,
        slot: 0,
        locate: 1,
        side: Side::Buy,
        epoch: 0,
    };
    let mut sink = 0u64;
    let n = allocations_in(|| {
        // a window of 2 000 live references slides far up (old orders move to the table of
        // older ones), then the store fills until it refuses
        for i in 0..200_000u64 {
            let r = i * 3;
            let _ = orders.insert(order(r));
            let _ = levels.join(1, Side::Buy, (r % 97) as i64, 5);
            if i >= 2_000 {
                let gone = (i - 2_000) * 3;
                sink += u64::from(orders.remove(gone).is_some());
                let _ = levels.leave(1, Side::Buy, (gone % 97) as i64, 5, |q| q);
            }
            sink += u64::from(orders.get(r / 2).is_some());
        }
        let mut r = 1 << 40;
        while orders.insert(order(r)) != Err(StoreError::Full) {
            r += 1;
        }
        sink += u64::from(orders.insert(order(5)) == Err(StoreError::Full));
        sink += orders.remove_where(|o| o.reference % 2 == 0) as u64;
        orders.clear();
    });
    std::hint::black_box(sink);
    assert_eq!(
        n, 0,
        "order store and level table operations allocated {n} times"
    );
}

#[test]
fn applying_itch_messages_to_the_books_allocates_nothing() {
    use dataplane::book::{Books, BooksConfig};
    use dataplane::feed::generator::{Generator, GeneratorConfig};
    use dataplane::feed::itch::parse;

    // Generate first (the generator allocates), then replay: warm-up, then counted.
    let mut generator = Generator::new(GeneratorConfig {
        symbols: 50,
        seed: 11,
    });
    let mut stream = Vec::new();
    let mut frames = Vec::new();
    for _ in 0..300_000 {
        let start = stream.len();
        generator.next_into(&mut stream);
        frames.push(start..stream.len());
    }
    let config = BooksConfig {
        max_orders: 1 << 16,
        max_levels: 1 << 16,
        max_levels_per_side: 1 << 12,
        max_symbols: 64,
    };
    let mut books: Books<'_> = Books::new(config, None).unwrap();
    let mut changes = 0u64;
    let (warm, counted) = frames.split_at(100_000);
    for range in warm {
        books.apply(&parse(&stream[range.clone()]).unwrap(), &mut |_| {
            changes += 1
        });
    }
    let n = allocations_in(|| {
        for range in counted {
            if let Ok(message) = parse(&stream[range.clone()]) {
                books.apply(&message, &mut |_| changes += 1);
            }
        }
    });
    assert_eq!(n, 0, "applying 200 000 messages allocated {n} times");
    assert!(
        changes > 200_000,
        "the books did change ({changes} changes)"
    );
    assert_eq!(books.stats().messages, 300_000);
}

#[test]
fn the_shard_loop_allocates_nothing() {
    // Levels, resyncs, ring-full and commands all happen with the counter armed: a small
    // event ring that the test drains only now and then.
    let messages = Generator::new(GeneratorConfig {
        symbols: 50,
        seed: 2,
    })
    .messages(300_000);
    let total = messages.len() as u64;
    let config = ShardConfig {
        event_ring: 2048,
        on_start: Some(arm_shard),
        ..ShardConfig::for_tests(0, 1)
    };
    // The whole stream, as fast as the shard takes it.
    let (source, gate) = MemorySource::messages(messages);
    gate.open();
    let source: Box<dyn FeedSource> = Box::new(source);
    let mut plane =
        DataPlane::start(Arc::new(Topology::fallback()), vec![config], vec![source]).unwrap();
    let mut events = plane.shards_mut()[0].take_events().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = 0u64;
    let mut commanded = false;
    loop {
        let done = plane.shards()[0].stats().snapshot().messages();
        if done >= total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shard did not finish in time"
        );
        std::thread::sleep(Duration::from_millis(2));
        // Nothing is drained for the first 50,000 messages: far more events than the ring
        // holds, so the ring fills and resyncs follow, however fast this machine is.
        if done < 50_000 {
            continue;
        }
        while events.pop().is_some() {
            received += 1;
        }
        if !commanded && received > 10_000 {
            // events keep being drained while the commands wait for their acks, as the
            // control plane does
            commanded = true;
            let symbol = dataplane::symbol::Symbol::from_itch(*b"MSFT    ");
            let commands: [fn(u64, dataplane::symbol::Symbol) -> Command; 2] = [
                |id, symbol| Command::RemoveSymbol { id, symbol },
                |id, symbol| Command::AddSymbol { id, symbol },
            ];
            for command in commands {
                let id = plane.submit(|id| command(id, symbol)).unwrap();
                while plane.try_collect(id).is_none() {
                    assert!(Instant::now() < deadline, "no ack in time");
                    while events.pop().is_some() {
                        received += 1;
                    }
                }
            }
        }
    }
    plane.stop();
    let stats = plane.shards()[0].stats().snapshot();
    assert!(commanded);
    assert!(stats.ring_full > 0 && stats.resyncs > 0, "{stats:?}");
    assert_eq!(SHARD_ALLOCATIONS.load(Ordering::Relaxed), 0);
}

#[test]
fn simulator_poll_allocates_nothing_after_warm_up() {
    use dataplane::source::simulator::{Simulator, SimulatorOptions};

    let mut simulator = Simulator::new(SimulatorOptions {
        symbols: 20,
        seed: 5,
        rate: 0,
    });
    let mut bytes = 0usize;
    let mut run = |simulator: &mut Simulator, messages: u64| {
        let mut left = messages;
        while left > 0 {
            let polled = simulator.poll(
                dataplane::clock::now_ns(),
                256.min(left as usize),
                &mut |e| {
                    if let FeedEvent::Message(m) = e {
                        bytes += m.len();
                    }
                },
            );
            let Polled::Events(n) = polled else {
                panic!("an unpaced simulator always has messages: {polled:?}")
            };
            left -= n as u64;
        }
    };
    run(&mut simulator, 200_000);
    let n = allocations_in(|| run(&mut simulator, 200_000));
    assert_eq!(
        n, 0,
        "polling 200 000 simulated messages allocated {n} times"
    );
    assert_eq!(simulator.messages(), 400_000);
    assert!(
        bytes > 400_000 * 19,
        "real messages were handed over ({bytes} bytes)"
    );
}
