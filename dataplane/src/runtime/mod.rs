//! The pinned data-plane runtime: shard threads, the rings between the planes, and the handle
//! the control plane drives them with.
//!
//! [`DataPlane::start`] spawns one thread per [`ShardConfig`]. Each pins itself to its core,
//! builds its books in an arena bound to that core's NUMA node (first-touched by the pinned
//! thread), logs where it runs and how much it reserved, and then busy-polls its feed (see
//! `runtime/shard.rs` for the loop). Between each shard and the control plane there are three SPSC
//! rings: commands in, acks out, events out.
//!
//! **How one feed reaches several shards.** Every shard reads the whole feed through a source
//! of its own and keeps only the messages of the stock locates it owns: every ITCH message
//! names its locate in the header, so the filter is two bytes and a table lookup, and no
//! thread or ring sits between the feed and the books. A file is memory-mapped once per shard
//! (the pages are shared); UDP needs a multicast group for several shards (each joins it); the
//! simulator is deterministic, so each shard runs the same one. A locate goes to shard
//! `locate % shards`.
//!
//! Guarantees: after startup a shard's loop allocates nothing and makes no syscall besides the
//! feed read and its idle strategy's yield or park (tests/zero_alloc.rs checks the first on the
//! shard thread); a full event ring never blocks it (see [`event`]); every command gets one
//! ack, after its effects are in the event ring.

pub mod command;
pub mod counters;
pub mod event;
pub mod held;
pub mod idle;
mod shard;
mod staged;
pub mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::arena::Arena;
use crate::ring::{Consumer, Producer, ring};
use crate::source::FeedSource;
use crate::topology::Topology;
use command::{Ack, Applied, Command, CommandError};
use event::Event;
use idle::IdleStrategy;
pub use shard::{COMMANDS_PER_ITERATION, Publish, ShardConfig};
use shard::{Shard, ShardRings};
use stats::ShardStats;

/// Commands (and acks) a shard's rings hold.
pub const COMMAND_RING: usize = 64;

/// Why the data plane did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configuration value is unusable.
    #[error("shard {shard}: {reason}")]
    Config {
        /// The shard.
        shard: u16,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The shard could not reserve its memory.
    #[error("shard {shard}: cannot reserve its memory: {reason}")]
    Memory {
        /// The shard.
        shard: u16,
        /// The arena's or the books' error.
        reason: String,
    },
    /// The thread could not be spawned or died during startup.
    #[error("shard {shard}: thread failed to start: {reason}")]
    Thread {
        /// The shard.
        shard: u16,
        /// Why.
        reason: String,
    },
}

/// Why a command did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExecuteError {
    /// A shard refused it.
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// A shard's command ring was full: it is not keeping up. Retry later.
    #[error("shard {0} is not taking commands (its command ring is full); retry later")]
    Busy(u16),
    /// Not every shard answered in time.
    #[error("shard {0} did not acknowledge within the timeout; is it stuck?")]
    Timeout(u16),
}

/// Where a shard runs and what it reserved, as it reported at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard's number.
    pub id: u16,
    /// The core it asked for.
    pub core: Option<usize>,
    /// True if the thread is pinned to `core`.
    pub pinned: bool,
    /// The NUMA node its memory is bound to, if bound.
    pub node: Option<usize>,
    /// Bytes of its arena in use by the books.
    pub arena_bytes: usize,
    /// Bytes its arena reserved.
    pub arena_capacity: usize,
    /// Orders its pool holds at most.
    pub orders_capacity: usize,
    /// Its feed, described.
    pub source: String,
}

/// One running shard, seen from the control plane.
pub struct ShardHandle {
    info: ShardInfo,
    commands: Producer<Command>,
    acks: Consumer<Ack>,
    events: Option<Consumer<Event>>,
    stats: Arc<ShardStats>,
    thread: Option<JoinHandle<()>>,
}

impl ShardHandle {
    /// Where the shard runs.
    pub fn info(&self) -> &ShardInfo {
        &self.info
    }

    /// Its stats, readable at any time without locks.
    pub fn stats(&self) -> &Arc<ShardStats> {
        &self.stats
    }

    /// Its event ring's consumer, taken once by whoever drains it.
    pub fn take_events(&mut self) -> Option<Consumer<Event>> {
        self.events.take()
    }
}

/// What a shard-like thread of [`DataPlane::external`] is given: the rings and stats a shard
/// has, seen from its side.
pub struct External {
    /// Its number, as in its [`ShardInfo`].
    pub id: u16,
    /// Commands from the control plane; each is answered with one [`Ack`] on `acks`.
    pub commands: Consumer<Command>,
    /// Answers to `commands`.
    pub acks: Producer<Ack>,
    /// Events to the control plane, under the contract of [`event`].
    pub events: Producer<Event>,
    /// Its stats, as a shard keeps them (what it does not count stays 0).
    pub stats: Arc<ShardStats>,
    /// Set when the data plane stops: return then.
    pub stop: Arc<AtomicBool>,
}

/// The body of a shard-like thread of [`DataPlane::external`].
pub type ExternalBody = Box<dyn FnOnce(External) + Send>;

/// The running shards.
pub struct DataPlane {
    shards: Vec<ShardHandle>,
    stop: Arc<AtomicBool>,
    next_id: u64,
    /// Acks that arrived for commands not being waited for yet.
    early: Vec<Ack>,
}

impl DataPlane {
    /// Starts one shard per config, each polling the source at the same index; returns once
    /// every shard has pinned itself and reserved its memory.
    ///
    /// # Errors
    /// A bad config value, memory that cannot be reserved, or a thread that cannot start;
    /// shards already started are stopped.
    pub fn start(
        topology: Arc<Topology>,
        configs: Vec<ShardConfig>,
        sources: Vec<Box<dyn FeedSource>>,
    ) -> Result<DataPlane, StartError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut plane = DataPlane {
            shards: Vec::with_capacity(configs.len()),
            stop: Arc::clone(&stop),
            next_id: 1,
            early: Vec::new(),
        };
        if configs.len() != sources.len() {
            return Err(StartError::Config {
                shard: 0,
                reason: format!(
                    "{} shards but {} feed sources",
                    configs.len(),
                    sources.len()
                ),
            });
        }
        for (config, source) in configs.into_iter().zip(sources) {
            let handle = spawn(Arc::clone(&topology), config, source, Arc::clone(&stop))?;
            plane.shards.push(handle);
        }
        Ok(plane)
    }

    /// A data plane of shard-like threads that are not shards: each runs `body` with the
    /// rings and stats a shard would have, and the control plane cannot tell it from one (a
    /// gateway's mirror of a remote partition answers commands and sends events as a shard
    /// does). `body` must return once its [`External::stop`] is set.
    ///
    /// # Errors
    /// A thread that cannot be spawned; those already started are stopped.
    pub fn external(
        shards: Vec<(ShardInfo, usize, ExternalBody)>,
    ) -> Result<DataPlane, StartError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut plane = DataPlane {
            shards: Vec::with_capacity(shards.len()),
            stop: Arc::clone(&stop),
            next_id: 1,
            early: Vec::new(),
        };
        for (info, event_ring, body) in shards {
            let (events, events_rx) = ring(event_ring);
            let (commands_tx, commands) = ring(COMMAND_RING);
            let (acks, acks_rx) = ring(COMMAND_RING);
            let stats = Arc::new(ShardStats::default());
            let external = External {
                id: info.id,
                commands,
                acks,
                events,
                stats: Arc::clone(&stats),
                stop: Arc::clone(&stop),
            };
            let thread = std::thread::Builder::new()
                .name(format!("pinbook-mirror-{}", info.id))
                .spawn(move || body(external))
                .map_err(|e| StartError::Thread {
                    shard: info.id,
                    reason: e.to_string(),
                })?;
            plane.shards.push(ShardHandle {
                info,
                commands: commands_tx,
                acks: acks_rx,
                events: Some(events_rx),
                stats,
                thread: Some(thread),
            });
        }
        Ok(plane)
    }

    /// The shards.
    pub fn shards(&self) -> &[ShardHandle] {
        &self.shards
    }

    /// The shards, mutably (to take their event consumers).
    pub fn shards_mut(&mut self) -> &mut [ShardHandle] {
        &mut self.shards
    }

    /// Sends `command` (given a fresh id) to every shard without waiting; returns the id to
    /// pass to [`DataPlane::try_collect`].
    ///
    /// # Errors
    /// [`ExecuteError::Busy`] if a shard's command ring is full. Shards before it did get
    /// the command; their acks are dropped when they come.
    pub fn submit(&mut self, command: impl Fn(u64) -> Command) -> Result<u64, ExecuteError> {
        let id = self.next_id;
        self.next_id += 1;
        for shard in &mut self.shards {
            if shard.commands.push(command(id)).is_err() {
                return Err(ExecuteError::Busy(shard.info.id));
            }
        }
        Ok(id)
    }

    /// The combined outcome of command `id` once every shard has acked it, or `None` while
    /// some have not.
    pub fn try_collect(&mut self, id: u64) -> Option<Result<Applied, ExecuteError>> {
        for shard in &mut self.shards {
            while let Some(ack) = shard.acks.pop() {
                // acks of abandoned commands are dropped
                if ack.id >= id.saturating_sub(1024) {
                    self.early.push(ack);
                }
            }
        }
        let answered = self.early.iter().filter(|a| a.id == id).count();
        if answered < self.shards.len() {
            return None;
        }
        let acks: Vec<Ack> = self.early.iter().filter(|a| a.id == id).copied().collect();
        self.early.retain(|a| a.id != id);
        Some(combine(&acks))
    }

    /// Sends `command` to every shard and waits (sleeping 50 µs between looks) until all
    /// have acked it or `timeout` passed.
    ///
    /// # Errors
    /// A shard's refusal, a full command ring, or a timeout.
    pub fn execute(
        &mut self,
        command: impl Fn(u64) -> Command,
        timeout: Duration,
    ) -> Result<Applied, ExecuteError> {
        let id = self.submit(command)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(outcome) = self.try_collect(id) {
                return outcome;
            }
            if Instant::now() >= deadline {
                let answered: Vec<u16> = self
                    .early
                    .iter()
                    .filter(|a| a.id == id)
                    .map(|a| a.shard)
                    .collect();
                let missing = self
                    .shards
                    .iter()
                    .map(|s| s.info.id)
                    .find(|s| !answered.contains(s))
                    .unwrap_or(0);
                return Err(ExecuteError::Timeout(missing));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Stops every shard and waits for their threads.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for shard in &mut self.shards {
            if let Some(thread) = shard.thread.take()
                && thread.join().is_err()
            {
                tracing::error!(shard = shard.info.id, "shard thread panicked");
            }
        }
    }
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field(
                "shards",
                &self.shards.iter().map(|s| &s.info).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One outcome from every shard's: the owner's answer wins.
fn combine(acks: &[Ack]) -> Result<Applied, ExecuteError> {
    if let Some(done) = acks.iter().find_map(|a| match a.outcome {
        Ok(Applied::NotOwned) => None,
        Ok(applied) => Some(applied),
        Err(_) => None,
    }) {
        return Ok(done);
    }
    let refused = acks
        .iter()
        .filter_map(|a| a.outcome.err())
        .min_by_key(|e| matches!(e, CommandError::UnknownSymbol(_)));
    match refused {
        Some(e) => Err(e.into()),
        None => Ok(Applied::NotOwned),
    }
}

fn spawn(
    topology: Arc<Topology>,
    config: ShardConfig,
    mut source: Box<dyn FeedSource>,
    stop: Arc<AtomicBool>,
) -> Result<ShardHandle, StartError> {
    let id = config.id;
    if config.event_ring < config.min_event_ring() {
        return Err(StartError::Config {
            shard: id,
            reason: format!(
                "event ring of {} events cannot hold one full book ({} levels per side); \
                 raise it to at least {}",
                config.event_ring,
                config.books.max_levels_per_side,
                config.min_event_ring()
            ),
        });
    }
    if let Some(core) = config.core
        && topology.cpu(core).is_none()
    {
        return Err(StartError::Config {
            shard: id,
            reason: format!(
                "core {core} does not exist on this machine (cores: {:?})",
                topology.allowed_cpus()
            ),
        });
    }
    let (events, events_rx) = ring(config.event_ring);
    let (commands_tx, commands) = ring(COMMAND_RING);
    let (acks, acks_rx) = ring(COMMAND_RING);
    let stats = Arc::new(ShardStats::default());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<ShardInfo, StartError>>();
    let shard_stats = Arc::clone(&stats);
    let described = source.describe();
    let thread = std::thread::Builder::new()
        .name(format!("pinbook-shard-{id}"))
        .spawn(move || {
            let rings = ShardRings {
                events,
                commands,
                acks,
            };
            let pinned = config.core.is_some_and(|core| {
                core_affinity::set_for_current(core_affinity::CoreId { id: core })
            });
            let node = config.core.and_then(|core| topology.node_of_cpu(core));
            let bytes = shard::arena_bytes(&config);
            let fail = |reason: String| {
                let _ = ready_tx.send(Err(StartError::Memory { shard: id, reason }));
            };
            let arena = match Arena::new(&topology, node, bytes) {
                Ok(arena) => arena,
                Err(e) => return fail(e.to_string()),
            };
            let mut shard = match Shard::new(&config, &arena, rings, shard_stats) {
                Ok(shard) => shard,
                Err(e) => return fail(e.to_string()),
            };
            let info = ShardInfo {
                id,
                core: config.core,
                pinned,
                node: arena.node(),
                arena_bytes: arena.used(),
                arena_capacity: arena.capacity(),
                orders_capacity: config.books.max_orders,
                source: source.describe(),
            };
            tracing::info!(
                shard = id,
                core = ?config.core,
                pinned,
                node = ?arena.node(),
                binding = ?arena.binding(),
                reserved_mib = arena.used() >> 20,
                feed = %info.source,
                idle = %config.idle,
                "shard started"
            );
            if ready_tx.send(Ok(info)).is_err() {
                return;
            }
            if let Some(hook) = config.on_start {
                hook();
            }
            shard.run(&mut *source, &stop);
        })
        .map_err(|e| StartError::Thread {
            shard: id,
            reason: e.to_string(),
        })?;
    let info = match ready_rx.recv() {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = thread.join();
            return Err(StartError::Thread {
                shard: id,
                reason: format!("it exited during startup (feed: {described})"),
            });
        }
    };
    Ok(ShardHandle {
        info,
        commands: commands_tx,
        acks: acks_rx,
        events: Some(events_rx),
        stats,
        thread: Some(thread),
    })
}

/// The idle strategy a shard on `core` gets by default: pure spin only when the core is shared
/// with nothing — not with the control plane (`control_cores`), and not with the OS (some
/// allowed core is left over for it beyond the data and control cores).
pub fn default_idle(
    topology: &Topology,
    core: Option<usize>,
    data_cores: &[usize],
    control_cores: &[usize],
) -> IdleStrategy {
    let Some(core) = core else {
        return IdleStrategy::default_for(true);
    };
    let spare_for_os = topology
        .allowed_cpus()
        .iter()
        .any(|c| !data_cores.contains(c) && !control_cores.contains(c));
    IdleStrategy::default_for(control_cores.contains(&core) || !spare_for_os)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_spin_only_on_a_core_shared_with_nothing() {
        let topology = Topology::fallback();
        let cpus = topology.allowed_cpus().to_vec();
        // the data plane on one core, the control plane on the same one: shared
        let first = cpus[0];
        assert_ne!(
            default_idle(&topology, Some(first), &[first], &[first]),
            IdleStrategy::Spin
        );
        // unpinned shards never spin
        assert_ne!(default_idle(&topology, None, &[], &[]), IdleStrategy::Spin);
        if let [control, data, _os, ..] = cpus[..] {
            assert_eq!(
                default_idle(&topology, Some(data), &[data], &[control]),
                IdleStrategy::Spin
            );
        }
        if let [control, data] = cpus[..] {
            // two cores: nothing is left for the OS, so the shard's core is shared with it
            assert_ne!(
                default_idle(&topology, Some(data), &[data], &[control]),
                IdleStrategy::Spin
            );
        }
    }
}
