//! `serve --publish`: every update a subscriber would get, of every published symbol, on NATS.
//!
//! The publisher is a subscriber of the hub like any gRPC client, through the same code path
//! ([`BookService::stream`]): for each batch of symbols it opens one subscription per stream
//! kind (levels at the server's maximum depth, orders, trades, status, every change) and
//! publishes each update on the symbol's subject ([`Subjects::updates`]), renumbered so that a
//! subject's seq stays contiguous for as long as this process publishes the symbol, across
//! the subscriptions it reopens. The hub's contract therefore holds on every subject: a
//! snapshot first, then deltas, a Resync before any discontinuity, checksums throughout.
//!
//! It never blocks the control plane: NATS behind or away makes the publisher a slow
//! subscriber, which the hub resyncs and closes as it would any; the publisher counts it,
//! waits until NATS is back and opens the subscription again, announcing a Resync on each of
//! its subjects first. Books keep serving over gRPC meanwhile.
//!
//! Snapshots for joiners: the level book of each symbol, as the subject's updates left it at a
//! seq, is put in the partition's key-value bucket ([`Subjects::bucket`]) every
//! `snapshot_every` when it changed (copied out of the pump's replica once per period, not
//! per update: a snapshot is at most two periods old), and the last status likewise.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use prost::Message;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

use super::counters::{self, Counter};
use super::subject::{STREAMS, Subjects};
use crate::book_service::BookService;
use crate::contract::Checker;
use crate::hub::{Mode, Stream};
use crate::pb::{self, BookUpdate, book_update::Update};
use crate::state::Shared;

/// How often the publisher looks for symbols published since it last looked.
const WATCH_SYMBOLS: Duration = Duration::from_millis(200);

/// How long a pump waits before opening its subscription again, and between looks at a
/// disconnected NATS.
const REOPEN_BACKOFF: Duration = Duration::from_millis(200);

/// Copies of the snapshot bucket NATS keeps, where the cluster has that many nodes.
const BUCKET_REPLICAS: usize = 3;

/// A pump sends its subjects again from snapshots at most this often when readers ask.
const RESEND_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// The pumps running, for the readers' resync requests.
type Pumps = Arc<Mutex<Vec<(Stream, Arc<Batch>, Arc<Notify>)>>>;

/// What `serve --publish` was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOptions {
    /// NATS servers, `nats://HOST:PORT` each (a cluster's members: any one is enough).
    pub servers: Vec<String>,
    /// The partition this instance publishes ([`super::valid_partition`]).
    pub partition: String,
    /// Names this instance in its heartbeats (a primary and a standby of one partition
    /// differ by it).
    pub instance: String,
    /// How often changed snapshots go to the key-value bucket.
    pub snapshot_every: Duration,
    /// How often the instance beats on [`Subjects::heartbeat`].
    pub heartbeat: Duration,
    /// A standby: publishes only once no other instance of the partition does
    /// ([`super::election`]).
    pub standby: bool,
}

/// Why the publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A server address NATS does not take.
    #[error("--publish {servers:?}: {reason}; give nats://HOST:PORT[,nats://HOST:PORT…]")]
    Servers {
        /// As given.
        servers: String,
        /// The client's complaint.
        reason: String,
    },
}

/// The running publisher; [`Publisher::stop`] ends it.
pub struct Publisher {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Publisher {
    /// Connects (in the background: an absent NATS is retried, not an error) and starts
    /// publishing every symbol the hub publishes, now and later.
    ///
    /// # Errors
    /// Server addresses the client cannot parse.
    pub async fn start(shared: Arc<Shared>, options: PublishOptions) -> Result<Self, PublishError> {
        let servers =
            super::server_addrs(&options.servers).map_err(|reason| PublishError::Servers {
                servers: options.servers.join(","),
                reason,
            })?;
        let client = async_nats::ConnectOptions::new()
            .name(format!("pinbook serve {}", options.instance))
            .retry_on_initial_connect()
            .connect(servers)
            .await
            .map_err(|e| PublishError::Servers {
                servers: options.servers.join(","),
                reason: e.to_string(),
            })?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(shared, client, options, stopped));
        Ok(Self { stop, task })
    }

    /// Stops publishing and waits for the publisher's tasks to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// What a pump shares with the snapshot task: each symbol's level book as published.
type Books = Arc<Mutex<HashMap<String, Snapshot>>>;

/// A symbol's latest snapshot-to-be, and whether it changed since it was last stored.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    levels: Option<pb::BookSnapshot>,
    status: Option<pb::TradingStatus>,
    dirty: bool,
}

async fn run(
    shared: Arc<Shared>,
    client: async_nats::Client,
    options: PublishOptions,
    mut stopped: watch::Receiver<bool>,
) {
    let subjects = Subjects::new(&options.partition);
    let books: Books = Arc::default();
    let (active_tx, active) = watch::channel(false);
    let mut tasks = vec![
        tokio::spawn(store_snapshots(
            client.clone(),
            subjects.clone(),
            Arc::clone(&books),
            options.snapshot_every,
            active.clone(),
            stopped.clone(),
        )),
        tokio::spawn(super::election::run(
            client.clone(),
            subjects.clone(),
            super::election::Candidate {
                instance: options.instance.clone(),
                standby: options.standby,
                every: options.heartbeat,
            },
            active_tx,
            stopped.clone(),
        )),
    ];
    let pumps: Pumps = Arc::default();
    tasks.push(tokio::spawn(answer_resyncs(
        client.clone(),
        subjects.clone(),
        Arc::clone(&pumps),
        stopped.clone(),
    )));
    // symbols a pump publishes now; a pump drops the ones removed, so a symbol published
    // again is taken as new
    let live: Arc<Mutex<HashSet<String>>> = Arc::default();
    let service = BookService::new(Arc::clone(&shared));
    loop {
        let fresh: Vec<String> = {
            let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
            let fresh: Vec<String> = shared
                .hub
                .symbols()
                .into_iter()
                .filter(|v| v.published && !live.contains(&v.symbol))
                .map(|v| v.symbol)
                .collect();
            live.extend(fresh.iter().cloned());
            fresh
        };
        // pumps whose symbols were all removed have ended
        pumps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, batch, _)| !batch.symbols().is_empty());
        if !fresh.is_empty() {
            let batch = Batch::new(fresh);
            for stream in STREAMS {
                let resend = Arc::new(Notify::new());
                pumps.lock().unwrap_or_else(|e| e.into_inner()).push((
                    stream,
                    Arc::clone(&batch),
                    Arc::clone(&resend),
                ));
                tasks.push(tokio::spawn(pump(Pump {
                    resend,
                    active: active.clone(),
                    service: service.clone(),
                    shared: Arc::clone(&shared),
                    client: client.clone(),
                    subjects: subjects.clone(),
                    stream,
                    batch: Arc::clone(&batch),
                    live: Arc::clone(&live),
                    books: Arc::clone(&books),
                    snapshot_every: options.snapshot_every,
                    stopped: stopped.clone(),
                })));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(WATCH_SYMBOLS) => {}
            _ = stopped.changed() => break,
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let _ = client.flush().await;
}

/// Symbols published together, and those of them still published.
struct Batch {
    symbols: Mutex<Vec<String>>,
}

impl Batch {
    fn new(symbols: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            symbols: Mutex::new(symbols),
        })
    }

    fn symbols(&self) -> Vec<String> {
        self.symbols
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets `symbol` (removed); returns how many are left.
    fn remove(&self, symbol: &str) -> usize {
        let mut symbols = self.symbols.lock().unwrap_or_else(|e| e.into_inner());
        symbols.retain(|s| s != symbol);
        symbols.len()
    }
}

/// One stream kind of one batch, moved from the hub to NATS.
struct Pump {
    /// Notified when a reader asks for the subjects again.
    resend: Arc<Notify>,
    /// Whether this instance publishes the partition now.
    active: watch::Receiver<bool>,
    service: BookService,
    shared: Arc<Shared>,
    client: async_nats::Client,
    subjects: Subjects,
    stream: Stream,
    batch: Arc<Batch>,
    live: Arc<Mutex<HashSet<String>>>,
    books: Books,
    /// How often the symbols whose books changed are handed to the snapshot task.
    snapshot_every: Duration,
    stopped: watch::Receiver<bool>,
}

async fn pump(mut p: Pump) {
    // the seq last published on each subject of the batch
    let mut seqs: HashMap<String, u64> = HashMap::new();
    let mut replica = Checker::learning(usize::MAX);
    // symbols whose level book changed since their snapshot was last handed over: a book is
    // copied out once per `snapshot_every`, not once per update
    let mut changed: HashSet<String> = HashSet::new();
    let mut hand_over = tokio::time::interval(p.snapshot_every);
    hand_over.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopped = p.stopped.clone();
    loop {
        if *stopped.borrow() {
            return;
        }
        if !*p.active.borrow() {
            // another instance publishes: when this one takes over, every subject starts
            // over at seq 1 from a snapshot, as from a new instance
            seqs.clear();
            replica = Checker::learning(usize::MAX);
            changed.clear();
            {
                let mut books = p.books.lock().unwrap_or_else(|e| e.into_inner());
                for symbol in p.batch.symbols() {
                    books.remove(&symbol);
                }
            }
            tokio::select! {
                _ = p.active.changed() => continue,
                _ = stopped.changed() => return,
            }
        }
        if p.client.connection_state() != async_nats::connection::State::Connected {
            tokio::select! {
                () = tokio::time::sleep(REOPEN_BACKOFF) => continue,
                _ = stopped.changed() => return,
            }
        }
        let symbols = p.batch.symbols();
        if symbols.is_empty() {
            return;
        }
        let limits = p.shared.stream_limits();
        let depth = if p.stream == Stream::Levels {
            limits.max_depth
        } else {
            0
        };
        let opened = p
            .service
            .stream(symbols.clone(), depth, Mode::EveryChange, p.stream, &limits)
            .await;
        let mut updates = match opened {
            Ok(updates) => updates,
            Err(status) => {
                // a symbol removed meanwhile: the next look drops it
                tracing::debug!(%status, "publisher could not subscribe; retrying");
                drop_unpublished(&p);
                tokio::select! {
                    () = tokio::time::sleep(REOPEN_BACKOFF) => continue,
                    _ = stopped.changed() => return,
                }
            }
        };
        // a subject that carried updates before goes on from a Resync
        for symbol in &symbols {
            if seqs.contains_key(symbol) {
                let resync = Update::Resync(pb::Resync {
                    symbol: symbol.clone(),
                    reason: pb::ResyncReason::SlowConsumer as i32,
                    detail: "the publisher fell behind; a fresh snapshot follows".into(),
                });
                publish(&p, symbol, &mut replica, &mut seqs, &mut changed, resync).await;
            }
        }
        let opened_at = tokio::time::Instant::now();
        let ended = loop {
            let next = tokio::select! {
                next = updates.next() => next,
                _ = p.active.changed() => {
                    if *p.active.borrow() {
                        continue;
                    }
                    break Some(tonic::Status::aborted("another instance publishes the partition"));
                }
                () = p.resend.notified(), if opened_at.elapsed() >= RESEND_AT_MOST_EVERY => {
                    break Some(tonic::Status::aborted("a reader asked for the subjects again"));
                }
                _ = hand_over.tick(), if !changed.is_empty() => {
                    hand_over_snapshots(&p, &replica, &mut changed);
                    continue;
                }
                _ = p.stopped.changed() => return,
            };
            match next {
                None => break None,
                Some(Err(status)) => break Some(status),
                Some(Ok(BookUpdate {
                    update: Some(update),
                })) => {
                    let Some(symbol) = symbol_of(&update).map(str::to_owned) else {
                        continue; // a heartbeat: the instance beats on its own subject
                    };
                    let removed = matches!(update, Update::Removed(_));
                    publish(&p, &symbol, &mut replica, &mut seqs, &mut changed, update).await;
                    if removed {
                        seqs.remove(&symbol);
                        changed.remove(&symbol);
                        p.books
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&symbol);
                        p.live
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&symbol);
                        if p.batch.remove(&symbol) == 0 {
                            return;
                        }
                    }
                }
                Some(Ok(BookUpdate { update: None })) => {}
            }
        };
        if !*p.active.borrow() {
            continue; // it yields: the loop's top waits
        }
        counters::add(Counter::StreamRestarts, p.stream, 1);
        if let Some(status) = ended {
            tracing::warn!(
                stream = super::subject::stream_token(p.stream),
                %status,
                "the publisher's subscription ended; opening it again"
            );
        }
        tokio::select! {
            () = tokio::time::sleep(REOPEN_BACKOFF) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Forgets the batch's symbols the hub no longer publishes.
fn drop_unpublished(p: &Pump) {
    for symbol in p.batch.symbols() {
        if p.shared.hub.symbol(&symbol).is_none_or(|v| !v.published) {
            p.batch.remove(&symbol);
            p.live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&symbol);
        }
    }
}

/// Hands the snapshot task the level book of every symbol in `changed` as `replica` holds
/// it now (at the seq last published), and empties `changed`.
fn hand_over_snapshots(p: &Pump, replica: &Checker, changed: &mut HashSet<String>) {
    let mut books = p.books.lock().unwrap_or_else(|e| e.into_inner());
    for symbol in changed.drain() {
        let Some(held) = replica
            .book(&symbol)
            .filter(|h| h.phase == crate::contract::Phase::Live)
        else {
            continue;
        };
        let snapshot = pb::BookSnapshot {
            symbol: symbol.clone(),
            seq: held.seq,
            bids: held.bids().map(pb::Level::from).collect(),
            asks: held.asks().map(pb::Level::from).collect(),
            checksum: held.checksum(usize::MAX),
            timestamps: None,
            last_chunk: true,
            incomplete: held.incomplete,
            stale: held.stale,
            price_exponent: i32::from(held.price_exponent),
        };
        let entry = books.entry(symbol).or_default();
        entry.levels = Some(snapshot);
        entry.dirty = true;
    }
}

/// Renumbers `update` as the next of its subject, notes a changed level book in `changed`,
/// publishes it.
async fn publish(
    p: &Pump,
    symbol: &str,
    replica: &mut Checker,
    seqs: &mut HashMap<String, u64>,
    changed: &mut HashSet<String>,
    mut update: Update,
) {
    if let Some(seq) = seq_mut(&mut update) {
        let next = seqs.get(symbol).map_or(1, |s| s + 1);
        *seq = next;
        seqs.insert(symbol.to_owned(), next);
    }
    match p.stream {
        Stream::Levels => {
            let violations = match &update {
                Update::Snapshot(s) => replica.snapshot(s),
                Update::Delta(d) => replica.delta(d),
                Update::Resync(r) => replica.resync(r),
                _ => Vec::new(),
            };
            if let Some(v) = violations.first() {
                // the hub broke its own contract: say so, never publish it as if whole
                tracing::error!(violation = %v, "the publisher's level stream broke the contract");
            }
            if !changed.contains(symbol) {
                changed.insert(symbol.to_owned());
            }
        }
        Stream::Status => {
            if let Update::Status(s) = &update {
                let mut books = p.books.lock().unwrap_or_else(|e| e.into_inner());
                let entry = books.entry(symbol.to_owned()).or_default();
                entry.status = Some((**s).clone());
                entry.dirty = true;
            }
        }
        Stream::Orders | Stream::Trades => {}
    }
    let subject = p.subjects.updates(p.stream, symbol);
    let body = BookUpdate {
        update: Some(update),
    }
    .encode_to_vec();
    match p.client.publish(subject, body.into()).await {
        Ok(()) => counters::add(Counter::Published, p.stream, 1),
        Err(e) => {
            counters::add(Counter::PublishErrors, p.stream, 1);
            tracing::debug!(error = %e, "publish failed");
        }
    }
}

/// The symbol an update is about (`None` for a heartbeat).
fn symbol_of(update: &Update) -> Option<&str> {
    Some(match update {
        Update::Snapshot(s) => &s.symbol,
        Update::Delta(d) => &d.symbol,
        Update::Resync(r) => &r.symbol,
        Update::Removed(r) => &r.symbol,
        Update::Orders(o) => &o.symbol,
        Update::Order(o) => &o.symbol,
        Update::Trade(t) => &t.symbol,
        Update::Status(s) => &s.symbol,
        Update::Heartbeat(_) => return None,
    })
}

/// The seq an update carries (`None`: a Resync or heartbeat carries none).
fn seq_mut(update: &mut Update) -> Option<&mut u64> {
    Some(match update {
        Update::Snapshot(s) => &mut s.seq,
        Update::Delta(d) => &mut d.seq,
        Update::Removed(r) => &mut r.seq,
        Update::Orders(o) => &mut o.seq,
        Update::Order(o) => &mut o.seq,
        Update::Trade(t) => &mut t.seq,
        Update::Status(s) => &mut s.seq,
        Update::Resync(_) | Update::Heartbeat(_) => return None,
    })
}

/// Puts the changed snapshots in the bucket every `every`; creates the bucket once NATS
/// answers (retried until it does).
async fn store_snapshots(
    client: async_nats::Client,
    subjects: Subjects,
    books: Books,
    every: Duration,
    active: watch::Receiver<bool>,
    mut stopped: watch::Receiver<bool>,
) {
    let js = jetstream::new(client);
    let mut store = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return,
        }
        if store.is_none() {
            // kept on three nodes where there are three (a node lost keeps the snapshots),
            // else on the one there is
            for replicas in [BUCKET_REPLICAS, 1] {
                let config = jetstream::kv::Config {
                    bucket: subjects.bucket(),
                    description: format!("pinbook snapshots of partition {}", subjects.partition()),
                    history: 1,
                    num_replicas: replicas,
                    ..Default::default()
                };
                match js.create_key_value(config).await {
                    Ok(kv) => {
                        store = Some(kv);
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, replicas, "cannot create the snapshot bucket");
                    }
                }
            }
            if store.is_none() {
                counters::add(Counter::SnapshotErrors, Stream::Levels, 1);
                continue;
            }
        }
        let Some(kv) = &store else { continue };
        if !*active.borrow() {
            continue; // only the publishing instance's seqs mean anything to readers
        }
        let changed: Vec<(String, Snapshot)> = {
            let mut books = books.lock().unwrap_or_else(|e| e.into_inner());
            books
                .iter_mut()
                .filter(|(_, s)| s.dirty)
                .map(|(symbol, s)| {
                    s.dirty = false;
                    (symbol.clone(), s.clone())
                })
                .collect()
        };
        for (symbol, snapshot) in changed {
            let entries = [
                (Stream::Levels, snapshot.levels.map(Update::Snapshot)),
                (
                    Stream::Status,
                    snapshot.status.map(|s| Update::Status(Box::new(s))),
                ),
            ];
            for (stream, update) in entries {
                let Some(update) = update else { continue };
                let key = Subjects::snapshot_key(stream, &symbol);
                let body = BookUpdate {
                    update: Some(update),
                }
                .encode_to_vec();
                match kv.put(key, body.into()).await {
                    Ok(_) => counters::add(Counter::SnapshotsStored, stream, 1),
                    Err(e) => {
                        counters::add(Counter::SnapshotErrors, stream, 1);
                        // stored again at the next round
                        if let Some(s) = books
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_mut(&symbol)
                        {
                            s.dirty = true;
                        }
                        tracing::debug!(error = %e, "cannot store a snapshot");
                    }
                }
            }
        }
    }
}

/// Answers readers' requests for a subject again ([`Subjects::resync_requests`]): the pump
/// publishing it opens its subscription again, which sends each of its subjects a Resync and
/// a snapshot (at most once a second per pump, whoever asks).
async fn answer_resyncs(
    client: async_nats::Client,
    subjects: Subjects,
    pumps: Pumps,
    mut stopped: watch::Receiver<bool>,
) {
    let mut requests = loop {
        match client.subscribe(subjects.resync_requests()).await {
            Ok(s) => break s,
            Err(_) => tokio::select! {
                () = tokio::time::sleep(REOPEN_BACKOFF) => {}
                _ = stopped.changed() => return,
            },
        }
    };
    loop {
        let request = tokio::select! {
            r = requests.next() => r,
            _ = stopped.changed() => return,
        };
        let Some(request) = request else { return };
        let text = String::from_utf8_lossy(&request.payload);
        let Some((stream, symbol)) = text
            .split_once(' ')
            .and_then(|(s, sym)| Some((super::subject::stream_of(s)?, sym.to_owned())))
        else {
            metrics::counter!("pinbook_nats_bad_requests_total").increment(1);
            continue;
        };
        let pumps = pumps.lock().unwrap_or_else(|e| e.into_inner());
        for (s, batch, resend) in pumps.iter() {
            if *s == stream && batch.symbols().contains(&symbol) {
                resend.notify_one();
            }
        }
    }
}
