//! Which instance of a partition publishes: a primary and any standbys run side by side, each
//! with its own data plane on the same feed, and exactly one of them publishes at a time.
//!
//! Every instance beats on the partition's heartbeat subject, saying whether it is active. An
//! instance becomes active once it has heard no active rival for [`SILENCE`] heartbeats (at
//! startup [`PRIMARY_PATIENCE`], or [`STANDBY_SILENCE`] for a standby, so a primary started
//! with it wins); an active
//! instance that hears another active one yields if its own name is the greater (two started
//! at once, or a primary back after a partition of the network). A reader sees the switch as
//! every subject starting over at seq 1 with a snapshot: a resync, never a silent change of
//! source.

use std::time::Duration;

use prost::Message;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_stream::StreamExt;

use super::subject::Subjects;
use crate::pb::{self, BookUpdate, book_update::Update};

/// Heartbeats of silence from active rivals after which an instance takes over.
pub const SILENCE: u32 = 3;

/// Heartbeats a primary listens at startup before it publishes (to hear a standby that took
/// over while it was down).
pub const PRIMARY_PATIENCE: u32 = 2;

/// Heartbeats a standby listens at startup before it may take over.
pub const STANDBY_SILENCE: u32 = 6;

/// The NATS header saying whether the beating instance publishes (`1`) or waits (`0`).
pub const ACTIVE_HEADER: &str = "Pinbook-Active";

/// The NATS header giving the beating instance's heartbeat interval in milliseconds, so
/// readers know when its silence means it is gone.
pub const EVERY_MS_HEADER: &str = "Pinbook-Heartbeat-Ms";

/// Heartbeats of silence after which a gateway flags the partition's books stale: longer than
/// a standby's takeover ([`SILENCE`]), so a takeover alone does not flag them.
pub const READER_SILENCE: u32 = SILENCE + 2;

/// Whether a heartbeat's headers say an instance publishes, and its interval if it says.
pub fn active_beat(headers: &async_nats::HeaderMap) -> (bool, Option<Duration>) {
    let active = headers
        .get(ACTIVE_HEADER)
        .is_some_and(|v| v.as_str() == "1");
    let every = headers
        .get(EVERY_MS_HEADER)
        .and_then(|v| v.as_str().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    (active, every)
}

/// How an instance takes part.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its name ([`super::INSTANCE_HEADER`]).
    pub instance: String,
    /// Waits longer at startup.
    pub standby: bool,
    /// Its heartbeat interval.
    pub every: Duration,
}

/// Beats and elects until `stopped`; `active` says whether this instance publishes.
pub async fn run(
    client: async_nats::Client,
    subjects: Subjects,
    me: Candidate,
    active: watch::Sender<bool>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut beats = loop {
        match client.subscribe(subjects.heartbeat()).await {
            Ok(s) => break s,
            Err(_) => tokio::select! {
                () = tokio::time::sleep(me.every) => {}
                _ = stopped.changed() => return,
            },
        }
    };
    let patience = me.every
        * if me.standby {
            STANDBY_SILENCE
        } else {
            PRIMARY_PATIENCE
        };
    let silence = me.every * SILENCE;
    let started = Instant::now();
    // the last active rival heard: when, and its name
    let mut rival: Option<(Instant, String)> = None;
    let mut next_beat = Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_beat) => {
                next_beat += me.every;
                let is_active = *active.borrow();
                beat(&client, &subjects, &me, is_active).await;
                let heard = rival.as_ref().filter(|(at, _)| at.elapsed() < silence);
                match (is_active, heard) {
                    (true, Some((_, name))) if *name < me.instance => {
                        tracing::warn!(rival = %name, "another instance publishes this partition; this one yields");
                        let _ = active.send(false);
                    }
                    (false, None) if started.elapsed() >= patience => {
                        tracing::info!(instance = %me.instance, partition = subjects.partition(), "this instance publishes the partition now");
                        let _ = active.send(true);
                    }
                    _ => {}
                }
                metrics::gauge!("pinbook_nats_active").set(if *active.borrow() { 1.0 } else { 0.0 });
            }
            message = beats.next() => {
                let Some(message) = message else { return };
                let Some(headers) = &message.headers else { continue };
                let name = headers.get(super::INSTANCE_HEADER).map(|v| v.as_str().to_owned());
                let (is_active, _) = active_beat(headers);
                if let Some(name) = name.filter(|n| *n != me.instance && is_active) {
                    rival = Some((Instant::now(), name));
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

async fn beat(client: &async_nats::Client, subjects: &Subjects, me: &Candidate, active: bool) {
    if client.connection_state() != async_nats::connection::State::Connected {
        return;
    }
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(super::INSTANCE_HEADER, me.instance.as_str());
    headers.insert(ACTIVE_HEADER, if active { "1" } else { "0" });
    headers.insert(EVERY_MS_HEADER, me.every.as_millis().to_string().as_str());
    let body = BookUpdate {
        update: Some(Update::Heartbeat(pb::Heartbeat {
            send_ns: dataplane::clock::now_ns(),
        })),
    }
    .encode_to_vec();
    let _ = client
        .publish_with_headers(subjects.heartbeat(), headers, body.into())
        .await;
}
