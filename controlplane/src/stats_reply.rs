//! The `ShardStats` reply of `GetStats`, to and from a shard's stats by counter name.
//!
//! The data plane declares its counters once (`dataplane::runtime::counters`); `admin.proto`
//! gives each a `uint64` field of the same name. The build lists those fields with their
//! numbers, and the counters go onto the wire by name, so neither this file nor `pinbook stats
//! --json` lists them again (its text form picks and words them for people). A counter without
//! a field is caught by this module's tests.

use dataplane::runtime::ShardInfo;
use dataplane::runtime::stats::StatsSnapshot;
use prost::Message;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

use crate::pb;

include!(concat!(env!("OUT_DIR"), "/shard_stats_fields.rs"));

/// The field number of `ShardStats`' `uint64` field `name`.
fn field_number(name: &str) -> Option<u32> {
    SHARD_STATS_FIELDS
        .iter()
        .find(|(field, _)| *field == name)
        .map(|&(_, number)| number)
}

/// The reply for one shard: where it runs, its messages by type, the ingest → publish
/// quantiles, and every counter of the table.
pub fn shard_stats(info: &ShardInfo, s: &StatsSnapshot) -> pb::ShardStats {
    let messages_by_type = (b'A'..=b'Z')
        .filter_map(|t| {
            let n = s.messages_of(t);
            (n > 0).then(|| ((t as char).to_string(), n))
        })
        .collect();
    let mut reply = pb::ShardStats {
        shard: u32::from(info.id),
        core: info.core.unwrap_or(0) as u32,
        numa_node: info.node.map_or(-1, |n| n as i32),
        arena_bytes: info.arena_bytes as u64,
        messages_by_type,
        messages: s.messages(),
        max_loop_ns: s.max_loop_ns,
        ingest_to_publish_p50_ns: s.ingest_to_publish.quantile(0.5),
        ingest_to_publish_p99_ns: s.ingest_to_publish.quantile(0.99),
        ingest_to_publish_max_ns: s.ingest_to_publish.max_ns(),
        ..pb::ShardStats::default()
    };
    let mut wire = Vec::new();
    for (counter, value) in s.counters() {
        if let Some(number) = field_number(counter.name) {
            prost::encoding::uint64::encode(number, &value, &mut wire);
        }
    }
    if let Err(e) = reply.merge(wire.as_slice()) {
        // varints of declared uint64 fields always decode; a failure is a build problem
        tracing::error!("cannot fill the ShardStats reply's counters: {e}");
    }
    reply
}

/// Every `uint64` field of `reply` by name (0 for the ones the wire left out), in proto
/// order: the counters of the table and the other totals.
pub fn uint64_fields(reply: &pb::ShardStats) -> Vec<(&'static str, u64)> {
    let mut fields: Vec<(&'static str, u64)> = SHARD_STATS_FIELDS
        .iter()
        .map(|&(name, _)| (name, 0))
        .collect();
    let bytes = reply.encode_to_vec();
    let mut buf = bytes.as_slice();
    while !buf.is_empty() {
        let Ok((number, wire_type)) = decode_key(&mut buf) else {
            break;
        };
        if wire_type != WireType::Varint {
            // the map of messages by type
            if skip_field(wire_type, number, &mut buf, DecodeContext::default()).is_err() {
                break;
            }
            continue;
        }
        let Ok(value) = decode_varint(&mut buf) else {
            break;
        };
        if let Some(i) = SHARD_STATS_FIELDS.iter().position(|&(_, n)| n == number) {
            fields[i].1 = value;
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::runtime::counters::COUNTERS;
    use dataplane::runtime::stats::{Counter, ShardStats};

    #[test]
    fn every_counter_of_the_table_has_its_field() {
        for counter in COUNTERS {
            assert!(
                field_number(counter.name).is_some(),
                "admin.proto ShardStats has no uint64 field `{}`: add one of that name",
                counter.name
            );
        }
    }

    #[test]
    fn counters_reach_their_fields_and_come_back_by_name() {
        let stats = ShardStats::new();
        for (i, counter) in Counter::ALL.into_iter().enumerate() {
            stats.add(counter, 10 + i as u64);
        }
        stats.record_loop(true, 5);
        stats.record_loop(false, 0);
        stats.record_loop(false, 0);
        let info = ShardInfo {
            id: 3,
            core: Some(1),
            pinned: true,
            node: None,
            arena_bytes: 4096,
            arena_capacity: 8192,
            orders_capacity: 16,
            source: "test".into(),
        };
        let s = stats.snapshot();
        let reply = shard_stats(&info, &s);
        assert_eq!(reply.gaps, s.gaps);
        assert_eq!(reply.framing_lost, s.framing_lost);
        assert_eq!(reply.heartbeats, s.heartbeats);
        assert_eq!(reply.commands, s.commands);
        assert_eq!(reply.idle_iterations, 2);
        assert_eq!(reply.shard, 3);
        assert_eq!(reply.numa_node, -1);
        let back = uint64_fields(&reply);
        for (counter, value) in s.counters() {
            assert!(
                back.contains(&(counter.name, value)),
                "{} = {value} did not come back: {back:?}",
                counter.name
            );
        }
        assert!(back.contains(&("arena_bytes", 4096)));
        assert!(back.contains(&("unknown_refs", 0)), "zeros are listed too");
    }
}
