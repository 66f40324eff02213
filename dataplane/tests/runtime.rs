//! The data-plane runtime end to end: real shard threads, real rings, books checked against
//! the plain reference book through nothing but the events a consumer receives.
//!
//! The feed here is a generated stream released by the test in steps (a gate), so a command
//! can land at an exact point of the stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::book::reference::ReferenceBooks;
use dataplane::feed::generator::{Generator, GeneratorConfig};
use dataplane::feed::itch::{Side, parse};
use dataplane::ring::Consumer;
use dataplane::runtime::command::{Applied, Command, CommandError};
use dataplane::runtime::event::{Event, ResyncReason};
use dataplane::runtime::{DataPlane, ExecuteError, Publish, ShardConfig};
use dataplane::source::FeedSource;
use dataplane::source::memory::{Gate, MemorySource, Scripted};
use dataplane::symbol::Symbol;
use dataplane::topology::Topology;

const WAIT: Duration = Duration::from_secs(20);

fn generated(messages: usize, symbols: u16, seed: u64) -> Vec<Vec<u8>> {
    Generator::new(GeneratorConfig { symbols, seed }).messages(messages)
}

fn config(id: u16, shards: u16) -> ShardConfig {
    ShardConfig::for_tests(id, shards)
}

/// Price → (shares, orders), bids then asks.
type Sides = [BTreeMap<i64, (u64, u32)>; 2];

/// L2 books rebuilt from events alone, checking every symbol's sequence is contiguous.
#[derive(Default)]
struct Mirror {
    books: HashMap<u16, Sides>,
    seq: HashMap<u16, u64>,
    resyncs: HashMap<u16, Vec<(ResyncReason, bool)>>,
    added: Vec<u16>,
    removed: Vec<u16>,
    stale: u64,
    fresh: u64,
}

impl Mirror {
    fn apply(&mut self, event: Event) {
        if let Some((locate, seq)) = event.symbol_seq() {
            let last = self.seq.entry(locate).or_insert(0);
            assert_eq!(
                seq,
                *last + 1,
                "locate {locate}: sequence jumped: {event:?}"
            );
            *last = seq;
        }
        match event {
            Event::Level(l) => {
                let side = &mut self.books.entry(l.locate).or_default()[l.side as usize % 2];
                if l.shares == 0 {
                    side.remove(&l.price);
                } else {
                    side.insert(l.price, (l.shares, l.orders));
                }
            }
            Event::Resync {
                locate,
                reason,
                incomplete,
                ..
            } => {
                self.books.insert(locate, Default::default());
                self.resyncs
                    .entry(locate)
                    .or_default()
                    .push((reason, incomplete));
            }
            Event::SymbolAdded { locate, .. } => self.added.push(locate),
            Event::SymbolRemoved { locate, .. } => {
                self.books.remove(&locate);
                self.removed.push(locate);
            }
            Event::Stale { .. } => self.stale += 1,
            Event::Fresh => self.fresh += 1,
            Event::Order(_) | Event::Trade(_) | Event::Status(_) | Event::Market { .. } => {}
        }
    }

    fn drain(&mut self, events: &mut Consumer<Event>) -> usize {
        let mut n = 0;
        while let Some(e) = events.pop() {
            self.apply(e);
            n += 1;
        }
        n
    }

    fn levels(&self, locate: u16, side: Side) -> Vec<(i64, u64, u32)> {
        let Some(book) = self.books.get(&locate) else {
            return Vec::new();
        };
        let map = &book[side as usize % 2];
        let flat = |(p, (s, o)): (&i64, &(u64, u32))| (*p, *s, *o);
        match side {
            Side::Buy => map.iter().rev().map(flat).collect(),
            Side::Sell => map.iter().map(flat).collect(),
        }
    }
}

fn reference_of(messages: &[Vec<u8>]) -> ReferenceBooks {
    let mut reference = ReferenceBooks::new();
    for m in messages {
        reference.apply(&parse(m).unwrap());
    }
    reference
}

/// Orders resting in the reference book of `locate`.
fn orders_of(reference: &ReferenceBooks, locate: u16) -> u32 {
    [Side::Buy, Side::Sell]
        .iter()
        .flat_map(|&side| reference.levels(locate, side))
        .map(|(_, _, orders)| orders)
        .sum()
}

/// Started data plane over gated feeds: one per shard, each with the whole stream.
struct Harness {
    plane: DataPlane,
    events: Vec<Consumer<Event>>,
    gates: Vec<Gate>,
    mirror: Mirror,
}

impl Harness {
    fn start(configs: Vec<ShardConfig>, script: impl Fn() -> Vec<Scripted>) -> Harness {
        let mut gates = Vec::new();
        let sources: Vec<Box<dyn FeedSource>> = configs
            .iter()
            .map(|_| {
                let (source, gate) = MemorySource::new(script());
                gates.push(gate);
                Box::new(source) as Box<dyn FeedSource>
            })
            .collect();
        let topology = Arc::new(Topology::fallback());
        let mut plane = DataPlane::start(topology, configs, sources).unwrap();
        let events = plane
            .shards_mut()
            .iter_mut()
            .map(|s| s.take_events().unwrap())
            .collect();
        Harness {
            plane,
            events,
            gates,
            mirror: Mirror::default(),
        }
    }

    fn processed(&self) -> u64 {
        self.plane
            .shards()
            .iter()
            .map(|s| s.stats().snapshot().messages())
            .min()
            .unwrap_or(0)
    }

    /// Releases the feed up to `n` events and waits until every shard took them, draining
    /// events meanwhile unless `stall`.
    fn release(&mut self, n: usize, messages_by_then: u64, stall: bool) {
        for gate in &self.gates {
            gate.open_to(n);
        }
        let deadline = Instant::now() + WAIT;
        while self.processed() < messages_by_then {
            if !stall {
                self.drain();
            }
            assert!(
                Instant::now() < deadline,
                "shards did not take the feed in time"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Drains until every ring stays empty and nothing is owed.
    fn settle(&mut self) {
        let deadline = Instant::now() + WAIT;
        let mut quiet = 0;
        while quiet < 20 {
            quiet = if self.drain() == 0 { quiet + 1 } else { 0 };
            assert!(Instant::now() < deadline, "events did not settle");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn drain(&mut self) -> usize {
        let mut n = 0;
        for events in &mut self.events {
            n += self.mirror.drain(events);
        }
        n
    }

    fn assert_matches(&self, reference: &ReferenceBooks, locates: &[u16]) {
        for &locate in locates {
            for side in [Side::Buy, Side::Sell] {
                assert_eq!(
                    self.mirror.levels(locate, side),
                    reference.levels(locate, side),
                    "locate {locate} {side:?}"
                );
            }
        }
    }
}

fn messages(script: &[Scripted]) -> u64 {
    script
        .iter()
        .filter(|s| matches!(s, Scripted::Message(_)))
        .count() as u64
}

#[test]
fn events_rebuild_every_book_across_two_shards() {
    let stream = generated(150_000, 40, 7);
    let reference = reference_of(&stream);
    let script = || stream.iter().cloned().map(Scripted::Message).collect();
    let mut h = Harness::start(vec![config(0, 2), config(1, 2)], script);
    let total = stream.len();
    h.release(total, total as u64, false);
    h.settle();
    let locates = reference.locates();
    assert!(locates.len() >= 40);
    h.assert_matches(&reference, &locates);
    assert_eq!(
        h.mirror.added.len(),
        40,
        "every listed symbol was added once"
    );
    // Both shards read the whole feed; each published only its own locates (the mirror's
    // sequence check would have caught a locate published twice).
    for (i, shard) in h.plane.shards().iter().enumerate() {
        let s = shard.stats().snapshot();
        assert_eq!(s.messages(), total as u64, "shard {i} saw the whole feed");
    }
}

#[test]
fn a_stalled_consumer_gets_resyncs_and_ends_identical() {
    let stream = generated(120_000, 20, 3);
    let reference = reference_of(&stream);
    let mut c = config(0, 1);
    c.books.max_levels_per_side = 256;
    c.event_ring = c.min_event_ring(); // 514 events: fills at once while stalled
    let script = || stream.iter().cloned().map(Scripted::Message).collect();
    let mut h = Harness::start(vec![c], script);
    // stall through the first half, then drain normally
    h.release(60_000, 60_000, true);
    h.release(stream.len(), stream.len() as u64, false);
    h.settle();
    h.assert_matches(&reference, &reference.locates());
    let stats = h.plane.shards()[0].stats().snapshot();
    assert!(stats.ring_full > 0, "the ring filled");
    assert!(stats.resyncs > 0, "and resyncs were sent");
    let ring_full_resyncs = h
        .mirror
        .resyncs
        .values()
        .flatten()
        .filter(|(r, _)| *r == ResyncReason::RingFull)
        .count() as u64;
    assert!(ring_full_resyncs > 0);
    assert_eq!(
        stats.resyncs,
        h.mirror
            .resyncs
            .values()
            .map(|v| v.len() as u64)
            .sum::<u64>(),
        "every resync counted was received"
    );
}

#[test]
fn a_symbol_added_halfway_gets_a_correct_book_at_once() {
    let stream = generated(100_000, 12, 11);
    let half = stream.len() / 2;
    let reference_half = reference_of(&stream[..half]);
    let reference = reference_of(&stream);
    let mut c = config(0, 1);
    c.publish = Publish::Only(vec![Symbol::parse("AAPL").unwrap()]);
    let script = || stream.iter().cloned().map(Scripted::Message).collect();
    let mut h = Harness::start(vec![c], script);
    h.release(half, half as u64, false);
    h.settle();
    let msft = 2;
    assert!(
        h.mirror.levels(msft, Side::Buy).is_empty(),
        "not published yet"
    );

    let added = h
        .plane
        .execute(
            |id| Command::AddSymbol {
                id,
                symbol: Symbol::parse("MSFT").unwrap(),
            },
            WAIT,
        )
        .unwrap();
    assert_eq!(added, Applied::Added { locate: msft });
    h.settle();
    // its first book is the whole book at this point, complete
    h.assert_matches(&reference_half, &[msft]);
    assert_eq!(h.mirror.resyncs[&msft], [(ResyncReason::Added, false)]);

    // duplicate and unknown requests are refused clearly
    let again = h.plane.execute(
        |id| Command::AddSymbol {
            id,
            symbol: Symbol::parse("MSFT").unwrap(),
        },
        WAIT,
    );
    assert!(matches!(
        again,
        Err(ExecuteError::Refused(CommandError::AlreadyActive(_)))
    ));
    let unknown = h.plane.execute(
        |id| Command::AddSymbol {
            id,
            symbol: Symbol::parse("NOPE").unwrap(),
        },
        WAIT,
    );
    let err = unknown.unwrap_err();
    assert!(matches!(
        err,
        ExecuteError::Refused(CommandError::UnknownSymbol(_))
    ));
    assert!(err.to_string().contains("unknown symbol NOPE"), "{err}");

    h.release(stream.len(), stream.len() as u64, false);
    h.settle();
    h.assert_matches(&reference, &[1, msft]);
}

#[test]
fn messages_held_across_full_polls_are_never_stranded_or_reordered_with_commands() {
    // A shard keeps its last few messages in flight across polls that fill their batch (64
    // here); it must still handle them when the feed pauses on a batch boundary, and before a
    // command that arrives while the feed streams.
    let stream = generated(200_000, 8, 13);
    let reference = reference_of(&stream);
    let [aapl, msft] = ["AAPL", "MSFT"].map(|s| Symbol::parse(s).unwrap());
    let configs = vec![ShardConfig {
        publish: Publish::Only(vec![aapl]),
        // room for every event of the stream: a consumer starved of its core (a loaded
        // machine) must not turn into ring-full resyncs, which this test does not expect
        event_ring: 1 << 19,
        ..config(0, 1)
    }];
    let script = || stream.iter().cloned().map(Scripted::Message).collect();
    let mut h = Harness::start(configs, script);
    let boundary = 64 * 1_000;
    h.release(boundary, boundary as u64, false);
    h.settle();
    h.assert_matches(&reference_of(&stream[..boundary]), &[1]);

    // the rest at full speed, with a command landing somewhere inside it
    for gate in &h.gates {
        gate.open_to(stream.len());
    }
    h.plane
        .execute(|id| Command::AddSymbol { id, symbol: msft }, WAIT)
        .unwrap();
    h.release(stream.len(), stream.len() as u64, false);
    h.settle();
    assert_eq!(h.mirror.resyncs[&2], [(ResyncReason::Added, false)]);
    h.assert_matches(&reference, &[1, 2]);
}

#[test]
fn removing_a_symbol_stops_publishing_and_re_adding_serves_it_complete() {
    let stream = generated(60_000, 6, 5);
    let script = || stream.iter().cloned().map(Scripted::Message).collect();
    let mut h = Harness::start(vec![config(0, 1)], script);
    h.release(30_000, 30_000, false);
    h.settle();
    let before = h.plane.shards()[0].stats().snapshot();
    let symbol = Symbol::parse("AAPL").unwrap();
    let removed = h
        .plane
        .execute(|id| Command::RemoveSymbol { id, symbol }, WAIT)
        .unwrap();
    let Applied::Removed { locate, orders } = removed else {
        panic!("{removed:?}");
    };
    assert_eq!(locate, 1);
    let kept = orders_of(&reference_of(&stream[..30_000]), 1);
    assert_eq!(orders, kept, "its book is kept whole");
    h.settle();
    assert_eq!(h.mirror.removed, [1]);
    assert!(h.mirror.levels(1, Side::Buy).is_empty());
    let again = h
        .plane
        .execute(|id| Command::RemoveSymbol { id, symbol }, WAIT);
    assert!(matches!(
        again,
        Err(ExecuteError::Refused(CommandError::NotActive(_)))
    ));

    h.release(45_000, 45_000, false);
    h.plane
        .execute(|id| Command::AddSymbol { id, symbol }, WAIT)
        .unwrap();
    h.settle();
    assert_eq!(
        h.mirror.resyncs[&1].last(),
        Some(&(ResyncReason::Added, false)),
        "the book was maintained while unpublished: complete, not flagged"
    );
    h.assert_matches(&reference_of(&stream[..45_000]), &[1]);
    h.release(stream.len(), stream.len() as u64, false);
    h.settle();
    h.assert_matches(&reference_of(&stream), &[1]);
    assert!(h.plane.shards()[0].stats().snapshot().commands >= before.commands + 3);
}

#[test]
fn operator_adds_and_removes_outlive_a_new_day() {
    let stream = generated(20_000, 4, 11);
    // the stream twice: its start-of-messages event begins the second day
    let script = || {
        let day: Vec<Scripted> = stream.iter().cloned().map(Scripted::Message).collect();
        [day.clone(), day].concat()
    };
    let total = messages(&script());
    // the generator lists AAPL, MSFT, NVDA … at locates 1, 2, 3 …
    let [aapl, msft, nvda] = ["AAPL", "MSFT", "NVDA"].map(|s| Symbol::parse(s).unwrap());
    let configs = vec![ShardConfig {
        publish: Publish::Only(vec![aapl, msft]),
        ..config(0, 1)
    }];
    let mut h = Harness::start(configs, script);
    h.release(10_000, 10_000, false);
    h.settle();
    h.plane
        .execute(|id| Command::RemoveSymbol { id, symbol: aapl }, WAIT)
        .unwrap();
    h.plane
        .execute(|id| Command::AddSymbol { id, symbol: nvda }, WAIT)
        .unwrap();
    h.release(script().len(), total, false);
    h.settle();
    assert_eq!(h.plane.shards()[0].stats().snapshot().restarts, 0);
    assert_eq!(
        h.mirror.added,
        [1, 2, 3],
        "AAPL and MSFT listed, NVDA added; nothing after"
    );
    assert_eq!(h.mirror.removed, [1]);
    assert!(
        !h.mirror.books.contains_key(&1),
        "AAPL stays removed on the new day"
    );
    assert!(
        h.mirror.resyncs[&3].contains(&(ResyncReason::NewDay, false)),
        "NVDA, added by the operator, is still published on the new day: {:?}",
        h.mirror.resyncs[&3]
    );
    h.assert_matches(&reference_of(&stream), &[2, 3]);
}

#[test]
fn a_feed_gap_makes_the_shard_stale_until_a_new_day() {
    let stream = generated(20_000, 4, 9);
    let script = || {
        let mut s: Vec<Scripted> = stream[..10_000]
            .iter()
            .cloned()
            .map(Scripted::Message)
            .collect();
        s.push(Scripted::Gap {
            first: 10_001,
            count: 5,
        });
        s.extend(stream[10_000..].iter().cloned().map(Scripted::Message));
        // the generator's stream starts with a start-of-messages event: a new day
        s.extend(stream.iter().cloned().map(Scripted::Message));
        s
    };
    let total = messages(&script());
    let mut h = Harness::start(vec![config(0, 1)], script);
    h.release(script().len(), total, false);
    h.settle();
    assert_eq!(h.mirror.stale, 1);
    assert_eq!(h.mirror.fresh, 1);
    let stats = h.plane.shards()[0].stats().snapshot();
    assert_eq!((stats.gaps, stats.messages_lost), (1, 5));
    // after the new day the books are those of the replayed stream alone
    h.assert_matches(&reference_of(&stream), &[1, 2, 3, 4]);
}

#[test]
fn bad_configs_are_refused_with_the_fix() {
    let mut c = config(0, 1);
    c.event_ring = 10;
    let sources: Vec<Box<dyn FeedSource>> = vec![Box::new(MemorySource::new(Vec::new()).0)];
    let topology = Arc::new(Topology::fallback());
    let err = DataPlane::start(Arc::clone(&topology), vec![c], sources)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("raise it to at least 1026"),
        "{err}"
    );

    let mut c = config(0, 1);
    c.core = Some(10_000);
    let sources: Vec<Box<dyn FeedSource>> = vec![Box::new(MemorySource::new(Vec::new()).0)];
    let err = DataPlane::start(topology, vec![c], sources).err().unwrap();
    assert!(
        err.to_string().contains("core 10000 does not exist"),
        "{err}"
    );
}

#[test]
fn a_udp_feed_with_a_lost_packet_makes_the_shard_stale() {
    use dataplane::feed::moldudp64::encode_packet;
    use dataplane::source::udp::UdpSource;

    let stream = generated(3_000, 8, 13);
    let source = UdpSource::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let target = source.local_addr().unwrap();
    let topology = Arc::new(Topology::fallback());
    let mut plane = DataPlane::start(topology, vec![config(0, 1)], vec![Box::new(source)]).unwrap();
    let mut events = plane.shards_mut()[0].take_events().unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let session = *b"TEST      ";
    let mut sequence = 1u64;
    let mut packet = Vec::new();
    let mut sent = 0u64;
    for (i, chunk) in stream.chunks(20).enumerate() {
        let messages: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        packet.clear();
        encode_packet(&session, sequence, &messages, &mut packet).unwrap();
        sequence += messages.len() as u64;
        if i == 50 {
            continue; // lost on the way
        }
        socket.send_to(&packet, target).unwrap();
        sent += messages.len() as u64;
        if i % 10 == 0 {
            // let the shard keep up: loopback drops what overflows the socket buffer
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut mirror = Mirror::default();
    let deadline = Instant::now() + WAIT;
    while plane.shards()[0].stats().snapshot().messages() < sent {
        mirror.drain(&mut events);
        assert!(
            Instant::now() < deadline,
            "the shard did not receive the feed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    mirror.drain(&mut events);
    let stats = plane.shards()[0].stats().snapshot();
    assert_eq!((stats.gaps, stats.messages_lost), (1, 20));
    assert_eq!(mirror.stale, 1, "the consumer was told");
    assert_eq!(mirror.fresh, 0, "and nothing has repaired it yet");
}
