//! `pinbook.v1.BookService`: Subscribe and GetBook, served from the hub's mirrors.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use dataplane::clock::now_ns;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::hub::Mode;
use crate::metrics::{count_reply, record_tick_to_send};
use crate::pb::{self, BookUpdate, book_update::Update};
use crate::server::Shared;

/// Most symbols one subscription may name.
pub const MAX_SYMBOLS_PER_SUBSCRIPTION: usize = 1000;

/// The book service.
#[derive(Debug, Clone)]
pub struct BookService {
    shared: Arc<Shared>,
}

impl BookService {
    /// The service over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    fn depth(&self, depth: u32) -> Result<usize, Status> {
        let max = self.shared.max_depth;
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
        let reply = self.open(request).await;
        count_reply("pinbook.v1.BookService/Subscribe", &reply);
        reply
    }

    async fn get_book(
        &self,
        request: Request<pb::GetBookRequest>,
    ) -> Result<Response<pb::BookSnapshot>, Status> {
        let reply = self.snapshot(request);
        count_reply("pinbook.v1.BookService/GetBook", &reply);
        reply
    }
}

impl BookService {
    async fn open(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<UpdateStream>, Status> {
        self.shared.check_serving()?;
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
            let (_, name) = crate::symbol::parse("symbols", s)?;
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
        let (id, queue) = self.shared.hub.subscribe(&symbols, depth, mode)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let hub = Arc::clone(&self.shared.hub);
        let heartbeat = self.shared.heartbeat;
        tokio::spawn(async move {
            let tick_to_send = crate::metrics::tick_to_send();
            let mut out = Vec::with_capacity(256);
            'stream: loop {
                out.clear();
                if let Err(status) = queue.take(256, &mut out) {
                    let _ = tx.send(Err(status)).await;
                    break;
                }
                if out.is_empty() {
                    tokio::select! {
                        () = queue.changed() => {}
                        () = tokio::time::sleep(heartbeat) => {
                            let beat = BookUpdate {
                                update: Some(Update::Heartbeat(pb::Heartbeat { send_ns: now_ns() })),
                            };
                            if tx.send(Ok(beat)).await.is_err() {
                                break;
                            }
                        }
                        () = tx.closed() => break,
                    }
                    continue;
                }
                for update in out.drain(..) {
                    if let Some(Update::Delta(d)) = &update.update
                        && let Some(t) = d.timestamps
                    {
                        record_tick_to_send(&tick_to_send, t.ingest_ns, now_ns());
                    }
                    if tx.send(Ok(update)).await.is_err() {
                        break 'stream;
                    }
                }
            }
            // the client went away, or the stream was closed
            hub.unsubscribe(id);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    fn snapshot(
        &self,
        request: Request<pb::GetBookRequest>,
    ) -> Result<Response<pb::BookSnapshot>, Status> {
        self.shared.check_serving()?;
        let req = request.into_inner();
        let (_, symbol) = crate::symbol::parse("symbol", &req.symbol)?;
        let depth = self.depth(req.depth)?;
        Ok(Response::new(self.shared.hub.book(&symbol, depth)?))
    }
}
