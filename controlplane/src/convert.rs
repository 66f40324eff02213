//! The admin service's replies, built from the control plane's own types (the stats reply,
//! whose counters come by name, is in [`crate::stats_reply`]).

use dataplane::runtime::ShardInfo;

use crate::hub::SymbolView;
use crate::pb;
use crate::state::Shared;

/// The admin view of one symbol; `shards` says which core its shard runs on.
pub fn symbol_info(s: &SymbolView, shards: &[ShardInfo]) -> pb::SymbolInfo {
    let core = shards
        .get(usize::from(s.shard))
        .and_then(|i| i.core)
        .unwrap_or(0);
    pb::SymbolInfo {
        symbol: s.symbol.clone(),
        state: if s.published {
            pb::SymbolState::Published as i32
        } else {
            pb::SymbolState::Removed as i32
        },
        shard: u32::from(s.shard),
        core: core as u32,
        updates: s.updates,
        levels: s.levels as u32,
        stock_locate: u32::from(s.locate),
        incomplete: s.incomplete,
        stale: s.stale,
    }
}

/// GetStats: every shard's counters and the subscriptions open now.
pub fn stats(shared: &Shared) -> pb::GetStatsResponse {
    pb::GetStatsResponse {
        shards: shared
            .shards
            .iter()
            .zip(&shared.shard_stats)
            .map(|(info, stats)| crate::stats_reply::shard_stats(info, &stats.snapshot()))
            .collect(),
        subscribers: shared.hub.subscribers() as u64,
    }
}
