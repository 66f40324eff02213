//! A gateway's intake of one partition: NATS subjects in, [`Inbound`]s out to its remote
//! shard, and the snapshots the shard asks for fetched from the bucket (and asked of the
//! publisher).

use std::time::Duration;

use tokio::time::Instant;

use async_nats::jetstream;
use futures::StreamExt;
use prost::Message;
use tokio::sync::mpsc::{Sender, UnboundedReceiver};

use super::remote_shard::{Inbound, Want};
use crate::nats::election::{READER_SILENCE, active_beat};
use crate::nats::subject::{STREAMS, Subjects};
use crate::pb::BookUpdate;

/// How long the intake waits between attempts at the bucket.
const RETRY: Duration = Duration::from_millis(500);

/// Counts what the intake could not use.
fn count_bad(reason: &'static str) {
    metrics::counter!("pinbook_gateway_bad_messages_total", "reason" => reason).increment(1);
}

/// A heartbeat interval assumed until a beat says its own (serve's default).
const ASSUMED_BEAT: Duration = Duration::from_secs(1);

/// Moves the partition's updates to the shard until it stops taking them, and tells it when
/// the partition's publisher falls silent ([`READER_SILENCE`] of its heartbeats without an
/// active one: [`Inbound::PublisherSilent`]) and when one is heard again
/// ([`Inbound::PublisherHeard`]).
pub async fn run(
    client: async_nats::Client,
    subjects: Subjects,
    inbound: Sender<Inbound>,
    mut wants: UnboundedReceiver<Want>,
) {
    let mut updates = subscribe(&client, subjects.all_updates()).await;
    let mut beats = subscribe(&client, subjects.heartbeat()).await;
    // armed by the first active beat heard, pushed back by every later one: one timer for the
    // loop, not one per message
    let silence = tokio::time::sleep(ASSUMED_BEAT * READER_SILENCE);
    tokio::pin!(silence);
    let mut heard = false;
    let mut every = ASSUMED_BEAT;
    let mut silent = false;
    let fetcher = tokio::spawn(fetch_snapshots(
        client.clone(),
        subjects.clone(),
        inbound.clone(),
        None,
    ));
    loop {
        tokio::select! {
            () = &mut silence, if heard && !silent => {
                silent = true;
                tracing::warn!(
                    partition = subjects.partition(),
                    silence = ?every * READER_SILENCE,
                    "no heartbeat from the partition's publisher: its books are flagged stale"
                );
                if inbound.send(Inbound::PublisherSilent).await.is_err() {
                    break;
                }
            }
            beat = beats.next() => {
                let Some(beat) = beat else { break };
                let (active, interval) = beat.headers.as_ref().map_or((false, None), active_beat);
                if !active {
                    continue;
                }
                heard = true;
                every = interval.unwrap_or(every);
                silence.as_mut().reset(Instant::now() + every * READER_SILENCE);
                if silent {
                    silent = false;
                    tracing::info!(partition = subjects.partition(), "the partition's publisher is heard again");
                    if inbound.send(Inbound::PublisherHeard).await.is_err() {
                        break;
                    }
                }
            }
            message = updates.next() => {
                let Some(message) = message else { break };
                let Some((stream, symbol)) = subjects.parse_updates(&message.subject) else {
                    count_bad("subject");
                    continue;
                };
                let update = match BookUpdate::decode(message.payload.as_ref()) {
                    Ok(BookUpdate { update: Some(update) }) => update,
                    // a hole in the subject's seq: the replica resyncs
                    _ => {
                        count_bad("undecodable");
                        continue;
                    }
                };
                if inbound.send(Inbound::Update { stream, symbol, update }).await.is_err() {
                    break;
                }
            }
            want = wants.recv() => {
                let Some(want) = want else { break };
                // the publisher sends the subject again from a snapshot; the bucket may be
                // quicker
                let request = format!("{} {}", crate::nats::subject::stream_token(want.stream), want.symbol);
                let _ = client.publish(subjects.resync_requests(), request.into()).await;
                tokio::spawn(fetch_snapshots(
                    client.clone(),
                    subjects.clone(),
                    inbound.clone(),
                    Some(want),
                ));
            }
        }
    }
    fetcher.abort();
}

/// Subscribes to `subject`, retrying every [`RETRY`] until NATS takes it.
async fn subscribe(client: &async_nats::Client, subject: String) -> async_nats::Subscriber {
    loop {
        match client.subscribe(subject.clone()).await {
            Ok(s) => return s,
            Err(e) => {
                tracing::warn!(error = %e, subject, "cannot subscribe yet; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Hands the shard the bucket's snapshots: every one (`want` `None`, at the start) or the
/// one wanted.
async fn fetch_snapshots(
    client: async_nats::Client,
    subjects: Subjects,
    inbound: Sender<Inbound>,
    want: Option<Want>,
) {
    let js = jetstream::new(client);
    let kv = loop {
        match js.get_key_value(subjects.bucket()).await {
            Ok(kv) => break kv,
            Err(e) => {
                if want.is_some() {
                    return; // the publisher's resync will do
                }
                tracing::debug!(error = %e, "no snapshot bucket yet");
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    let keys: Vec<String> = match &want {
        Some(w) => STREAMS
            .iter()
            .filter(|s| **s == w.stream)
            .map(|s| Subjects::snapshot_key(*s, &w.symbol))
            .collect(),
        None => match kv.keys().await {
            Ok(keys) => keys.filter_map(|k| async { k.ok() }).collect().await,
            Err(_) => return,
        },
    };
    for key in keys {
        let Some((stream, symbol)) = Subjects::parse_snapshot_key(&key) else {
            count_bad("key");
            continue;
        };
        let Ok(Some(value)) = kv.get(&key).await else {
            continue;
        };
        let Ok(BookUpdate {
            update: Some(update),
        }) = BookUpdate::decode(value.as_ref())
        else {
            count_bad("undecodable");
            continue;
        };
        if inbound
            .send(Inbound::Stored {
                stream,
                symbol,
                update,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}
