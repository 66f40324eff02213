//! `pinbook stats`: the data-plane shards' counters and the subscriber count (AdminService).

use std::io::Write;

use anyhow::Result;
use controlplane::pb::{self, admin_service_client::AdminServiceClient};
use dataplane::runtime::counters::{COUNTERS, CounterInfo, Family, family};
use serde_json::json;

use super::client::{self, AdminArgs};

/// Arguments of `pinbook stats`.
#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Print one JSON object: {"shards": [{every counter, "busy_ratio"}], "subscribers"}.
    #[arg(long)]
    pub json: bool,
    /// Where the server and the admin token are.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Fetches the stats and prints them.
pub fn run(args: &StatsArgs) -> Result<()> {
    let token = client::admin_token(&args.admin)?;
    let stats = client::runtime()?.block_on(fetch(args, &token))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let shards: Vec<serde_json::Value> = stats.shards.iter().map(shard_json).collect();
        writeln!(
            out,
            "{}",
            json!({ "shards": shards, "subscribers": stats.subscribers })
        )?;
    } else {
        for shard in &stats.shards {
            write_shard(&mut out, shard)?;
        }
        writeln!(out, "subscribers: {}", stats.subscribers)?;
    }
    out.flush()?;
    Ok(())
}

async fn fetch(args: &StatsArgs, token: &str) -> Result<pb::GetStatsResponse> {
    let channel = client::connect(&args.admin.server).await?;
    let mut admin = AdminServiceClient::new(channel);
    admin
        .get_stats(client::authorized(pb::GetStatsRequest {}, token)?)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| client::status_error(&status))
}

/// busy / (busy + idle) iterations of the shard's loop, 0 before any.
fn busy_ratio(s: &pb::ShardStats) -> f64 {
    dataplane::runtime::counters::busy_ratio(s.busy_iterations, s.idle_iterations)
}

/// Every field of the reply by its proto name (the counters come from the data plane's
/// table, see `controlplane::stats_reply`), and the busy ratio.
fn shard_json(s: &pb::ShardStats) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (name, value) in controlplane::stats_reply::uint64_fields(s) {
        object.insert(name.to_owned(), json!(value));
    }
    object.insert("shard".into(), json!(s.shard));
    object.insert("core".into(), json!(s.core));
    object.insert("numa_node".into(), json!(s.numa_node));
    object.insert("messages_by_type".into(), json!(s.messages_by_type));
    object.insert("busy_ratio".into(), json!(busy_ratio(s)));
    serde_json::Value::Object(object)
}

/// Every counter of `family` with its value, in the table's order.
fn of_family<'f>(
    s: &pb::ShardStats,
    family: &'f Family,
) -> impl Iterator<Item = (&'static CounterInfo, u64)> + 'f {
    let fields = controlplane::stats_reply::uint64_fields(s);
    COUNTERS
        .iter()
        .filter(move |c| c.family == family)
        .map(move |c| {
            let value = fields
                .iter()
                .find(|(name, _)| *name == c.name)
                .map_or(0, |&(_, v)| v);
            (c, value)
        })
}

/// Every counter of `family` as `VALUE LABEL`, in the table's order (so a reason added to the
/// table shows here without a line of its own).
fn labelled(s: &pb::ShardStats, family: &Family) -> String {
    of_family(s, family)
        .map(|(c, value)| format!("{value} {}", c.label.unwrap_or(c.name).replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Nanoseconds in the unit that keeps 3 significant digits readable.
fn duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

fn write_shard(out: &mut impl Write, s: &pb::ShardStats) -> std::io::Result<()> {
    let node = if s.numa_node < 0 {
        "unbound".to_owned()
    } else {
        s.numa_node.to_string()
    };
    writeln!(
        out,
        "shard {} (core {}, NUMA node {node}, arena {} MiB)",
        s.shard,
        s.core,
        s.arena_bytes >> 20
    )?;
    let mut types: Vec<(&String, &u64)> = s.messages_by_type.iter().collect();
    types.sort();
    let types: Vec<String> = types.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let rows = [
        ("messages", s.messages.to_string()),
        ("msg types", types.join(", ")),
        (
            "errors",
            format!(
                "{} parse errors, {} malformed, {} unknown order refs, {} duplicate refs, \
                 {} overfills",
                s.parse_errors, s.malformed, s.unknown_refs, s.duplicate_refs, s.overfills
            ),
        ),
        (
            "limits hit",
            format!(
                "{} orders full, {} levels full, {} symbols full",
                s.orders_full, s.levels_full, s.symbols_full
            ),
        ),
        ("crossings", s.crossings.to_string()),
        (
            "gaps",
            format!(
                "{} ({} messages lost), {} duplicates, {} restarts, {} heartbeats",
                s.gaps, s.messages_lost, s.duplicates, s.restarts, s.heartbeats
            ),
        ),
        (
            "line a",
            format!(
                "{} packets, {} messages first, {} late, {} missed",
                s.line_a_packets, s.line_a_first, s.line_a_late, s.line_a_missed
            ),
        ),
        (
            "line b",
            format!(
                "{} packets, {} messages first, {} late, {} missed",
                s.line_b_packets, s.line_b_first, s.line_b_late, s.line_b_missed
            ),
        ),
        (
            "retransmission",
            format!(
                "{} requests ({} not sent), {} packets, {} messages recovered; holes given up: \
                 {} timed out, {} hold full",
                s.retransmit_requests,
                s.retransmit_send_errors,
                s.retransmit_packets,
                s.messages_recovered,
                s.given_up_timeout,
                s.given_up_hold_full
            ),
        ),
        ("rejected", labelled(s, &family::FEED_REJECTED)),
        ("dbn records", labelled(s, &family::RECORDS)),
        (
            "dbn modifies",
            format!("{} of unknown orders (added)", s.modify_unknown),
        ),
        ("ring full", s.ring_full.to_string()),
        ("resyncs", s.resyncs.to_string()),
        ("events", s.events_published.to_string()),
        ("commands", s.commands.to_string()),
        (
            "busy ratio",
            format!(
                "{:.1} % ({} busy, {} idle iterations)",
                busy_ratio(s) * 100.0,
                s.busy_iterations,
                s.idle_iterations
            ),
        ),
        ("max loop", duration(s.max_loop_ns)),
        (
            "ingest→publish",
            format!(
                "p50 {}, p99 {}, max {}",
                duration(s.ingest_to_publish_p50_ns),
                duration(s.ingest_to_publish_p99_ns),
                duration(s.ingest_to_publish_max_ns)
            ),
        ),
    ];
    // a feed's own rows only: ITCH message types, or DBN records and modifies
    let dbn = of_family(s, &family::RECORDS).any(|(_, n)| n > 0);
    let itch = !s.messages_by_type.is_empty();
    let udp = s.line_a_packets > 0;
    for (name, value) in rows {
        let shown = match name {
            "msg types" => itch,
            "line a" => udp,
            "line b" => s.line_b_packets > 0,
            "retransmission" => s.retransmit_requests > 0,
            "dbn records" | "dbn modifies" => dbn,
            _ => true,
        };
        if shown {
            writeln!(out, "  {name:<15} {value}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_ratio_is_busy_over_all_iterations() {
        let s = pb::ShardStats {
            busy_iterations: 1,
            idle_iterations: 3,
            ..Default::default()
        };
        assert!((busy_ratio(&s) - 0.25).abs() < 1e-12);
        assert_eq!(busy_ratio(&pb::ShardStats::default()), 0.0);
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(duration(950), "950 ns");
        assert_eq!(duration(1_500), "1.5 µs");
        assert_eq!(duration(2_500_000), "2.5 ms");
    }
}
