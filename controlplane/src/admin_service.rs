//! `pinbook.v2.AdminService`: symbols at run time, stats, config. Every call passes the
//! bearer-token interceptor first (see `auth`).

use std::sync::Arc;
use std::time::Duration;

use dataplane::runtime::ExecuteError;
use dataplane::runtime::command::{Applied, Command, CommandError};
use dataplane::symbol::Symbol;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::limits::Caller;
use crate::live_config;
use crate::pb;
use crate::state::Shared;

/// How long an admin call waits for the shards' acks.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The admin service.
#[derive(Debug, Clone)]
pub struct AdminService {
    shared: Arc<Shared>,
}

impl AdminService {
    /// The service over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn command(
        &self,
        symbol: &str,
        make: fn(u64, Symbol) -> Command,
        wanted: pb::SymbolState,
    ) -> Result<pb::SymbolInfo, Status> {
        self.shared.serving.check()?;
        let symbol = crate::symbol::parse("symbol", symbol)?;
        let plane = Arc::clone(&self.shared.plane);
        let outcome = tokio::task::spawn_blocking(move || {
            plane
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .execute(|id| make(id, symbol), COMMAND_TIMEOUT)
        })
        .await
        .map_err(|e| Status::internal(format!("admin task failed: {e}")))?;
        match outcome {
            Ok(Applied::Added { .. } | Applied::Removed { .. }) => {}
            Ok(other) => {
                return Err(Status::internal(format!("unexpected answer {other:?}")));
            }
            Err(ExecuteError::Refused(e)) => {
                return Err(match e {
                    CommandError::UnknownSymbol(_) | CommandError::NotActive(_) => {
                        Status::not_found(e.to_string())
                    }
                    CommandError::AlreadyActive(_) => Status::already_exists(e.to_string()),
                });
            }
            Err(e @ (ExecuteError::Busy(_) | ExecuteError::Timeout(_))) => {
                return Err(Status::unavailable(e.to_string()));
            }
        }
        // the events the command caused are in the rings; let the hub see them. An added symbol
        // is answered once its book arrived, so that `levels` and `incomplete` describe it.
        let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        loop {
            let view = self.shared.hub.symbol(symbol.as_str());
            let timed_out = tokio::time::Instant::now() >= deadline;
            let done = view.as_ref().is_some_and(|v| {
                let published = wanted == pb::SymbolState::Published;
                v.published == published && (!published || v.settled)
            });
            match view {
                Some(view) if done || timed_out => {
                    return Ok(convert::symbol_info(&view, &self.shared.shards));
                }
                None if timed_out => {
                    return Err(Status::unavailable(
                        "the data plane acked, but its events did not arrive in time",
                    ));
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminService {
    async fn add_symbol(
        &self,
        request: Request<pb::SymbolRequest>,
    ) -> Result<Response<pb::SymbolInfo>, Status> {
        let symbol = request.into_inner().symbol;
        self.command(
            &symbol,
            |id, symbol| Command::AddSymbol { id, symbol },
            pb::SymbolState::Published,
        )
        .await
        .map(Response::new)
    }

    async fn remove_symbol(
        &self,
        request: Request<pb::SymbolRequest>,
    ) -> Result<Response<pb::SymbolInfo>, Status> {
        let symbol = request.into_inner().symbol;
        self.command(
            &symbol,
            |id, symbol| Command::RemoveSymbol { id, symbol },
            pb::SymbolState::Removed,
        )
        .await
        .map(Response::new)
    }

    async fn list_symbols(
        &self,
        _: Request<pb::ListSymbolsRequest>,
    ) -> Result<Response<pb::ListSymbolsResponse>, Status> {
        let symbols = self
            .shared
            .hub
            .symbols()
            .iter()
            .map(|s| convert::symbol_info(s, &self.shared.shards))
            .collect();
        Ok(Response::new(pb::ListSymbolsResponse { symbols }))
    }

    async fn get_stats(
        &self,
        _: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::GetStatsResponse>, Status> {
        Ok(Response::new(convert::stats(&self.shared)))
    }

    async fn get_config(
        &self,
        _: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::GetConfigResponse>, Status> {
        Ok(Response::new(pb::GetConfigResponse {
            toml: self.shared.config.toml()?,
        }))
    }

    async fn set_config(
        &self,
        request: Request<pb::SetConfigRequest>,
    ) -> Result<Response<pb::SetConfigResponse>, Status> {
        // the limits layer named the caller; the admin token was checked
        let by = request.extensions().get::<Caller>().map_or_else(
            || "an unknown caller".to_owned(),
            |c| match c.connection {
                Some(addr) => format!("{} from {addr}", c.client),
                None => c.client.to_string(),
            },
        );
        let req = request.into_inner();
        let target = live_config::Target {
            shared: &self.shared,
            by,
        };
        let change = live_config::set(target, &req.key, &req.value).await?;
        Ok(Response::new(pb::SetConfigResponse {
            key: change.key,
            old_value: change.old,
            new_value: change.new,
            effect: change.effect.to_owned(),
        }))
    }
}
