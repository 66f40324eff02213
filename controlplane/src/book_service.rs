//! `pinbook.v2.BookService`: Subscribe and GetBook, served from the hub's mirrors.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use dataplane::clock::now_ns;
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::hub::{Hub, Mode};
use crate::metrics::record_tick_to_send;
use crate::pb::{self, BookUpdate, book_update::Update};
use crate::queue::{Queue, Taken};
use crate::state::{Serving, StreamLimits};

/// Most symbols one subscription may name.
pub const MAX_SYMBOLS_PER_SUBSCRIPTION: usize = 1000;

/// Updates between a subscriber's stream task and tonic.
const STREAM_BUFFER: usize = 64;

/// Updates a stream task takes from its queue at once.
const BATCH: usize = 256;

/// The book service.
#[derive(Debug, Clone)]
pub struct BookService {
    hub: Arc<Hub>,
    limits: StreamLimits,
    serving: Arc<Serving>,
}

impl BookService {
    /// The service over `hub`'s books, within `limits`, answering while `serving` says so.
    pub fn new(hub: Arc<Hub>, limits: StreamLimits, serving: Arc<Serving>) -> Self {
        Self {
            hub,
            limits,
            serving,
        }
    }

    fn depth(&self, depth: u32) -> Result<usize, Status> {
        let max = self.limits.max_depth;
        if depth == 0 || depth as usize > max {
            return Err(Status::invalid_argument(format!(
                "depth: {depth} is out of range; ask for 1..={max} levels per side"
            )));
        }
        Ok(depth as usize)
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<BookUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl pb::book_service_server::BookService for BookService {
    type SubscribeStream = UpdateStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.open(request).await
    }

    async fn get_book(
        &self,
        request: Request<pb::GetBookRequest>,
    ) -> Result<Response<pb::BookSnapshot>, Status> {
        self.snapshot(request)
    }
}

impl BookService {
    async fn open(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        self.serving.check()?;
        let req = request.into_inner();
        if req.symbols.is_empty() {
            return Err(Status::invalid_argument(
                "symbols: the list is empty; name at least one symbol",
            ));
        }
        if req.symbols.len() > MAX_SYMBOLS_PER_SUBSCRIPTION {
            return Err(Status::invalid_argument(format!(
                "symbols: {} named, at most {MAX_SYMBOLS_PER_SUBSCRIPTION} per subscription",
                req.symbols.len()
            )));
        }
        let mut seen = HashSet::new();
        let mut symbols = Vec::with_capacity(req.symbols.len());
        for s in &req.symbols {
            let name = crate::symbol::parse("symbols", s)?.to_string();
            if !seen.insert(name.clone()) {
                return Err(Status::invalid_argument(format!(
                    "symbols: {name:?} is named twice"
                )));
            }
            symbols.push(name);
        }
        let mode = pb::Mode::try_from(req.mode)
            .map_err(|_| Status::invalid_argument(format!("mode: {} is not a mode", req.mode)))?;
        let (depth, mode) = match mode {
            pb::Mode::Unspecified | pb::Mode::EveryChange => {
                (self.depth(req.depth)?, Mode::EveryChange)
            }
            pb::Mode::TopOfBook => (1, Mode::EveryChange),
            pb::Mode::Conflated => {
                if !(1..=60_000).contains(&req.interval_ms) {
                    return Err(Status::invalid_argument(format!(
                        "interval_ms: {} is out of range; MODE_CONFLATED needs 1..=60000",
                        req.interval_ms
                    )));
                }
                (
                    self.depth(req.depth)?,
                    Mode::Conflated(Duration::from_millis(u64::from(req.interval_ms))),
                )
            }
        };
        let (id, queue) = self.hub.subscribe(&symbols, depth, mode)?;
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        // What ends the stream goes out after everything sent before it, even when the client
        // has stopped reading and `tx` is full: queued resyncs first, then the status.
        let (tail_tx, tail_rx) = tokio::sync::mpsc::unbounded_channel();
        let hub = Arc::clone(&self.hub);
        let heartbeat = self.limits.heartbeat;
        let stall = self.limits.stall;
        tokio::spawn(async move {
            let ended = stream(&hub, id, &queue, &tx, heartbeat, stall).await;
            if let Some((rest, status)) = ended {
                for update in rest {
                    let _ = tail_tx.send(Ok(update));
                }
                let _ = tail_tx.send(Err(status));
            }
            hub.unsubscribe(id);
        });
        let updates = ReceiverStream::new(rx).chain(UnboundedReceiverStream::new(tail_rx));
        Ok(Response::new(Box::pin(updates)))
    }

    fn snapshot(
        &self,
        request: Request<pb::GetBookRequest>,
    ) -> Result<Response<pb::BookSnapshot>, Status> {
        self.serving.check()?;
        let req = request.into_inner();
        let symbol = crate::symbol::parse("symbol", &req.symbol)?.to_string();
        let depth = self.depth(req.depth)?;
        Ok(Response::new(self.hub.book(&symbol, depth)?))
    }
}

/// How one send to the client went.
enum Sent {
    /// Handed to tonic.
    Done,
    /// The client went away.
    Gone,
    /// The client took nothing for the stall time: the update was not sent.
    Stalled(BookUpdate),
}

/// Sends `update` unless the client takes nothing for `stall`. While it waits for room, the
/// queue says since when, so the hub stops building updates for a client that has stopped
/// reading ([`Queue::blocked_since`]).
async fn send(
    tx: &Sender<Result<BookUpdate, Status>>,
    queue: &Queue,
    update: BookUpdate,
    stall: Duration,
) -> Sent {
    let permit = match tx.try_reserve() {
        Ok(permit) => permit,
        Err(TrySendError::Closed(())) => return Sent::Gone,
        Err(TrySendError::Full(())) => {
            queue.set_blocked(now_ns());
            let reserved = tokio::time::timeout(stall, tx.reserve()).await;
            queue.clear_blocked();
            match reserved {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Sent::Gone,
                Err(_) => return Sent::Stalled(update),
            }
        }
    };
    permit.send(Ok(update));
    Sent::Done
}

/// The body of subscription `id`'s stream task: moves its queue to `tx`, heartbeats when
/// idle, asks the hub to catch up once a lagging queue is drained. Returns how the stream
/// ends when it ends with a status: the updates still to send, then the status (`None`: the
/// client went away).
async fn stream(
    hub: &Hub,
    id: u64,
    queue: &Queue,
    tx: &Sender<Result<BookUpdate, Status>>,
    heartbeat: Duration,
    stall: Duration,
) -> Option<(Vec<BookUpdate>, Status)> {
    let tick_to_send = crate::metrics::tick_to_send();
    let mut out = Vec::with_capacity(BATCH);
    loop {
        out.clear();
        let taken = match queue.take(BATCH, &mut out) {
            Ok(taken) => taken,
            Err(status) => return Some((Vec::new(), status)),
        };
        if out.is_empty() {
            tokio::select! {
                () = queue.changed() => {}
                () = tokio::time::sleep(heartbeat) => {
                    let beat = BookUpdate {
                        update: Some(Update::Heartbeat(pb::Heartbeat { send_ns: now_ns() })),
                    };
                    match send(tx, queue, beat, stall).await {
                        Sent::Done => {}
                        Sent::Gone => return None,
                        Sent::Stalled(_) => return Some(closing(hub, id, queue, stall, Vec::new())),
                    }
                }
                () = tx.closed() => return None,
            }
            continue;
        }
        let mut updates = out.drain(..);
        while let Some(update) = updates.next() {
            if queue.is_closing() {
                // closed meanwhile: what was taken goes before what is queued and the status
                let rest = std::iter::once(update).chain(updates).collect();
                return Some(closing(hub, id, queue, stall, rest));
            }
            if let Some(Update::Delta(d)) = &update.update
                && let Some(t) = d.timestamps
            {
                record_tick_to_send(&tick_to_send, t.ingest_ns, now_ns());
            }
            match send(tx, queue, update, stall).await {
                Sent::Done => {}
                Sent::Gone => return None,
                Sent::Stalled(update) => {
                    let rest = std::iter::once(update).chain(updates).collect();
                    return Some(closing(hub, id, queue, stall, rest));
                }
            }
        }
        if taken == Taken::CaughtUp {
            // what the overflow dropped is read and freed here, not under the hub's lock
            queue.settle();
            hub.catch_up(id);
        }
    }
}

/// The stream of subscription `id` ends now: `rest` (taken, not sent), then what is queued,
/// then the closing status. A queue not closed yet was stalled: the hub closes it as too slow
/// (queuing its resyncs).
fn closing(
    hub: &Hub,
    id: u64,
    queue: &Queue,
    stall: Duration,
    mut rest: Vec<BookUpdate>,
) -> (Vec<BookUpdate>, Status) {
    if !queue.is_closing() {
        hub.stalled(id, stall);
    }
    let (queued, status) = queue.take_rest();
    rest.extend(queued);
    let status = status.unwrap_or_else(|| {
        Status::resource_exhausted(format!(
            "subscriber too slow: it took no update for {stall:?}"
        ))
    });
    (rest, status)
}
