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

use dataplane::runtime::command::{Applied, Command, CommandError};
use dataplane::runtime::{DataPlane, ExecuteError};
use std::sync::Mutex;

use crate::admin_service::COMMAND_TIMEOUT;
use crate::auth::Grant;
use crate::hub::{self, Hub, Mode};
use crate::limits::{Caller, Tokens, caller};
use crate::metrics::record_tick_to_send;
use crate::pb::{self, BookUpdate, book_update::Update};
use crate::queue::{Queue, Taken};
use crate::state::{Shared, StreamLimits};

/// Updates between a subscriber's stream task and tonic.
const STREAM_BUFFER: usize = 64;

/// Updates a stream task takes from its queue at once.
const BATCH: usize = 256;

/// The book service.
#[derive(Debug, Clone)]
pub struct BookService {
    hub: Arc<Hub>,
    /// The data plane: order and trade streams are turned on and off per symbol, and GetOrder
    /// asks it.
    plane: Arc<Mutex<DataPlane>>,
    /// The stream limits (live), whether calls are served, the admission of subscribers.
    shared: Arc<Shared>,
}

impl BookService {
    /// The service over `shared`'s hub and data plane.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            hub: Arc::clone(&shared.hub),
            plane: Arc::clone(&shared.plane),
            shared,
        }
    }

    fn depth(&self, depth: u32) -> Result<usize, Status> {
        let max = self.shared.stream_limits().max_depth;
        if depth == 0 || depth as usize > max {
            return Err(Status::invalid_argument(format!(
                "depth: {depth} is out of range; ask for 1..={max} levels per side"
            )));
        }
        Ok(depth as usize)
    }
}

/// A subscription's updates, ended by its closing status if it ends with one.
pub type UpdateStream = Pin<Box<dyn Stream<Item = Result<BookUpdate, Status>> + Send>>;

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

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::OrderPosition>, Status> {
        self.position(request).await.map(Response::new)
    }
}

impl BookService {
    async fn open(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        self.shared.serving.check()?;
        let limits = self.shared.stream_limits();
        // put there by the limits layer; a call that bypassed it (a test's in-process
        // service) is told apart by its metadata and address alone
        let who = request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(|| {
                caller(
                    request.metadata().as_ref(),
                    request.extensions(),
                    &Tokens::none(),
                )
            });
        let grant = request.extensions().get::<Grant>().cloned();
        let req = request.into_inner();
        if req.symbols.is_empty() {
            return Err(Status::invalid_argument(
                "symbols: the list is empty; name at least one symbol",
            ));
        }
        // held by the stream task; given back when it ends (the client gone, or closed)
        let slot = self.shared.admission.subscribe(&who, req.symbols.len())?;
        let mut seen = HashSet::new();
        let mut symbols = Vec::with_capacity(req.symbols.len());
        for s in &req.symbols {
            let name = crate::symbol::parse("symbols", s)?.to_string();
            if !seen.insert(name.clone()) {
                return Err(Status::invalid_argument(format!(
                    "symbols: {name:?} is named twice"
                )));
            }
            if let Some(grant) = &grant {
                grant.allows(&name)?;
            }
            symbols.push(name);
        }
        let stream = match pb::Stream::try_from(req.stream) {
            Ok(pb::Stream::Unspecified | pb::Stream::Levels) => hub::Stream::Levels,
            Ok(pb::Stream::Orders) => hub::Stream::Orders,
            Ok(pb::Stream::Trades) => hub::Stream::Trades,
            Ok(pb::Stream::Status) => hub::Stream::Status,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "stream: {} is not a stream",
                    req.stream
                )));
            }
        };
        let mode = pb::Mode::try_from(req.mode)
            .map_err(|_| Status::invalid_argument(format!("mode: {} is not a mode", req.mode)))?;
        let (depth, mode) = if stream == hub::Stream::Levels {
            self.levels_mode(mode, &req, &limits)?
        } else {
            if req.depth != 0 {
                return Err(Status::invalid_argument(format!(
                    "depth: {} given, but {stream:?} streams have no depth; leave it 0",
                    req.depth
                )));
            }
            if !matches!(mode, pb::Mode::Unspecified | pb::Mode::EveryChange) {
                return Err(Status::invalid_argument(format!(
                    "mode: {} streams send every change; leave mode unspecified",
                    stream_name(stream)
                )));
            }
            (0, Mode::EveryChange)
        };
        let updates = self.stream(symbols, depth, mode, stream, &limits).await?;
        // the subscriber's slot is held by the response itself: what its tail still holds
        // for a client that does not read counts until tonic drops it
        let updates = updates.map(move |update| {
            let _held = &slot;
            update
        });
        Ok(Response::new(Box::pin(updates)))
    }

    /// Opens a subscription of the hub to `symbols` (checked: published, no duplicates) as
    /// a stream of updates under the contract: heartbeats, the slow-consumer policy and the
    /// closing status included. What `Subscribe` returns, and what the NATS publisher reads.
    ///
    /// # Errors
    /// NOT_FOUND for a symbol not published; UNAVAILABLE if the data plane did not take the
    /// order or trade streams' command.
    pub async fn stream(
        &self,
        symbols: Vec<String>,
        depth: usize,
        mode: Mode,
        stream: hub::Stream,
        limits: &StreamLimits,
    ) -> Result<UpdateStream, Status> {
        let (id, queue) = self.hub.subscribe(&symbols, depth, mode, stream)?;
        // from here the subscriber is the hub's until this guard goes: on every way out —
        // a refusal below, the call cancelled (client reset, deadline), the stream's end
        let subscribed = Subscribed {
            hub: Arc::clone(&self.hub),
            plane: Arc::clone(&self.plane),
            id,
            symbols: matches!(stream, hub::Stream::Orders | hub::Stream::Trades)
                .then(|| symbols.clone()),
        };
        if subscribed.symbols.is_some() {
            sync_streams(&self.plane, &self.hub, symbols).await?;
        }
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        // What ends the stream goes out after everything sent before it, even when the client
        // has stopped reading and `tx` is full: queued resyncs first, then the status.
        let (tail_tx, tail_rx) = tokio::sync::mpsc::unbounded_channel();
        let hub = Arc::clone(&self.hub);
        let heartbeat = limits.heartbeat;
        let stall = limits.stall;
        tokio::spawn(async move {
            let _subscribed = subscribed;
            let ended = send_updates(&hub, id, &queue, &tx, heartbeat, stall).await;
            if let Some((rest, status)) = ended {
                for update in rest {
                    let _ = tail_tx.send(Ok(update));
                }
                let _ = tail_tx.send(Err(status));
            }
        });
        Ok(Box::pin(
            ReceiverStream::new(rx).chain(UnboundedReceiverStream::new(tail_rx)),
        ))
    }

    /// Depth and mode of a level subscription.
    fn levels_mode(
        &self,
        mode: pb::Mode,
        req: &pb::SubscribeRequest,
        limits: &StreamLimits,
    ) -> Result<(usize, Mode), Status> {
        let (min, max) = limits.interval_ms;
        Ok(match mode {
            pb::Mode::Unspecified | pb::Mode::EveryChange => {
                (self.depth(req.depth)?, Mode::EveryChange)
            }
            pb::Mode::TopOfBook => (1, Mode::EveryChange),
            pb::Mode::Conflated => {
                if !(min..=max).contains(&req.interval_ms) {
                    return Err(Status::invalid_argument(format!(
                        "interval_ms: {} is out of range; MODE_CONFLATED needs {min}..={max}",
                        req.interval_ms
                    )));
                }
                (
                    self.depth(req.depth)?,
                    Mode::Conflated(Duration::from_millis(u64::from(req.interval_ms))),
                )
            }
        })
    }

    /// GetOrder: asks the data plane where the order stands.
    async fn position(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<pb::OrderPosition, Status> {
        self.shared.serving.check()?;
        let grant = request.extensions().get::<Grant>().cloned();
        let req = request.into_inner();
        let symbol = crate::symbol::parse("symbol", &req.symbol)?;
        if let Some(grant) = grant {
            grant.allows(symbol.as_str())?;
        }
        let name = symbol.to_string();
        if req.reference == 0 {
            return Err(Status::invalid_argument(
                "reference: 0 is no order's reference",
            ));
        }
        let Some(view) = self.hub.symbol(&name).filter(|v| v.published) else {
            return Err(Status::not_found(format!(
                "symbol {name:?} is not published here"
            )));
        };
        let reference = req.reference;
        let plane = Arc::clone(&self.plane);
        let outcome = tokio::task::spawn_blocking(move || {
            plane.lock().unwrap_or_else(|e| e.into_inner()).execute(
                |id| Command::Position {
                    id,
                    symbol,
                    reference,
                },
                COMMAND_TIMEOUT,
            )
        })
        .await
        .map_err(|e| Status::internal(format!("GetOrder task failed: {e}")))?;
        let found = match outcome.map_err(command_status)? {
            Applied::Position { found, .. } => found,
            other => return Err(Status::internal(format!("unexpected answer {other:?}"))),
        };
        let Some(p) = found else {
            return Err(Status::not_found(format!(
                "no order {reference} rests in the book of {name} (never added, or executed, \
                 cancelled, deleted or replaced since)"
            )));
        };
        let side = crate::status::side(Some(p.side));
        Ok(pb::OrderPosition {
            symbol: name,
            order: Some(pb::Order {
                reference,
                side: side as i32,
                price: p.price,
                shares: u64::from(p.shares),
            }),
            orders_ahead: p.orders_ahead,
            shares_ahead: p.shares_ahead,
            level: Some(pb::Level {
                price: p.price,
                shares: p.level_shares,
                orders: p.level_orders,
            }),
            price_exponent: i32::from(view.price_exponent),
            incomplete: view.incomplete,
            stale: view.stale,
        })
    }

    fn snapshot(
        &self,
        request: Request<pb::GetBookRequest>,
    ) -> Result<Response<pb::BookSnapshot>, Status> {
        self.shared.serving.check()?;
        let grant = request.extensions().get::<Grant>().cloned();
        let req = request.into_inner();
        let symbol = crate::symbol::parse("symbol", &req.symbol)?.to_string();
        if let Some(grant) = grant {
            grant.allows(&symbol)?;
        }
        let depth = self.depth(req.depth)?;
        Ok(Response::new(self.hub.book(&symbol, depth)?))
    }
}

/// How one send to the client went.
/// The name of a non-level stream, for messages.
fn stream_name(stream: hub::Stream) -> &'static str {
    match stream {
        hub::Stream::Levels => "level",
        hub::Stream::Orders => "order",
        hub::Stream::Trades => "trade",
        hub::Stream::Status => "status",
    }
}

/// The status of a command the data plane refused or did not answer.
fn command_status(e: ExecuteError) -> Status {
    match e {
        ExecuteError::Refused(
            e @ (CommandError::UnknownSymbol(_) | CommandError::NotActive(_)),
        ) => Status::not_found(e.to_string()),
        ExecuteError::Refused(e) => Status::failed_precondition(e.to_string()),
        e @ (ExecuteError::Busy(_) | ExecuteError::Timeout(_)) => {
            Status::unavailable(e.to_string())
        }
    }
}

/// A subscriber of the hub, unsubscribed when this is dropped (and, for order and trade
/// streams, its symbols' streams turned off where no one else wants them).
struct Subscribed {
    hub: Arc<Hub>,
    plane: Arc<Mutex<DataPlane>>,
    id: u64,
    /// The symbols whose order or trade streams it asked for.
    symbols: Option<Vec<String>>,
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
        if let Some(symbols) = self.symbols.take() {
            let (plane, hub) = (Arc::clone(&self.plane), Arc::clone(&self.hub));
            // a drop cannot wait: the data plane is told from a task
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(status) = sync_streams(&plane, &hub, symbols).await {
                        tracing::warn!(%status, "could not turn a symbol's streams off");
                    }
                });
            }
        }
    }
}

/// Tells the data plane which of `symbols`' order and trade streams the hub's subscribers
/// need now, for those whose needs changed since it was last told. The wants are read and
/// recorded under the data plane's lock, so the last command sent for a symbol carries its
/// latest wants whatever order concurrent callers ran in.
async fn sync_streams(
    plane: &Arc<Mutex<DataPlane>>,
    hub: &Arc<Hub>,
    symbols: Vec<String>,
) -> Result<(), Status> {
    let (plane, hub) = (Arc::clone(plane), Arc::clone(hub));
    tokio::task::spawn_blocking(move || {
        let mut plane = plane.lock().unwrap_or_else(|e| e.into_inner());
        for name in &symbols {
            let Some((wanted, resend)) = hub.streams_to_send(name) else {
                continue;
            };
            let symbol = crate::symbol::parse("symbols", name)?;
            let sent = plane.execute(
                |id| Command::SetStreams {
                    id,
                    symbol,
                    orders: wanted.orders,
                    trades: wanted.trades,
                    resend,
                    epoch: wanted.epoch,
                },
                COMMAND_TIMEOUT,
            );
            match sent {
                Ok(_) => hub.streams_sent(name, wanted),
                // removed meanwhile: its subscribers were told, and its streams are off
                Err(ExecuteError::Refused(CommandError::NotActive(_))) => {}
                Err(e) => return Err(command_status(e)),
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| Status::internal(format!("stream task failed: {e}")))?
}

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
async fn send_updates(
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
