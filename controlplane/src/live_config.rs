//! Changing the configuration while serving: AdminService.SetConfig, `pinbook config set KEY
//! VALUE`.
//!
//! A change is made on a copy of the configuration in force, read back through the same
//! serde shape and the same checks as the TOML file (so `limits.max_subscribers = "many"` is
//! refused as the file would refuse it), and only then applied. What can change live is listed
//! once, in [`LIVE`], with when each takes effect; every other key of the file exists but needs
//! a restart, and says so.

use std::sync::{Arc, Mutex, MutexGuard};

use dataplane::runtime::command::{Applied, Command};
use tonic::Status;

use crate::admin_service::COMMAND_TIMEOUT;
use crate::config::{Config, IdleSpec};
use crate::hub::Policy;
use crate::state::{Shared, StreamLimits};

/// A key that can change while serving, and when the change takes effect.
#[derive(Clone, Copy, Debug)]
pub struct LiveKey {
    /// The key, as in the TOML file.
    pub key: &'static str,
    /// When a change takes effect.
    pub effect: &'static str,
}

const NEW_STREAMS: &str = "for subscriptions opened from now on";
const NOW: &str = "now, for every client";

/// Every key that can change live.
pub const LIVE: [LiveKey; 16] = [
    LiveKey {
        key: "idle",
        effect: "now, on every shard (auto is resolved per core at start: give spin, spin-yield or backoff)",
    },
    LiveKey {
        key: "subscribers.queue",
        effect: NEW_STREAMS,
    },
    LiveKey {
        key: "subscribers.max_depth",
        effect: NEW_STREAMS,
    },
    LiveKey {
        key: "subscribers.heartbeat_ms",
        effect: NEW_STREAMS,
    },
    LiveKey {
        key: "subscribers.min_interval_ms",
        effect: NEW_STREAMS,
    },
    LiveKey {
        key: "subscribers.max_interval_ms",
        effect: NEW_STREAMS,
    },
    LiveKey {
        key: "subscribers.max_resyncs",
        effect: NOW,
    },
    LiveKey {
        key: "subscribers.resync_window_ms",
        effect: NOW,
    },
    LiveKey {
        key: "subscribers.stall_ms",
        effect: "now for the hub's checks of lagging subscribers, for the wait on a full stream from subscriptions opened from now on",
    },
    LiveKey {
        key: "subscribers.blocked_ms",
        effect: NOW,
    },
    LiveKey {
        key: "limits.max_subscribers",
        effect: "for subscriptions opened from now on (open ones stay)",
    },
    LiveKey {
        key: "limits.max_subscribers_per_client",
        effect: "for subscriptions opened from now on (open ones stay)",
    },
    LiveKey {
        key: "limits.max_streams_per_connection",
        effect: "for subscriptions opened from now on (open ones stay; HTTP/2's own cap, set at start, is 100 above the value at start)",
    },
    LiveKey {
        key: "limits.max_symbols_per_subscription",
        effect: NEW_STREAMS,
    },
    LiveKey {
        key: "limits.calls_per_second",
        effect: NOW,
    },
    LiveKey {
        key: "limits.request_deadline_ms",
        effect: "for calls made from now on",
    },
];

/// The configuration in force, as GetConfig shows it.
#[derive(Debug)]
pub struct LiveConfig {
    state: Mutex<State>,
    /// One change at a time, from reading the configuration to storing it: two at once
    /// would each apply and store their own copy, and the later would undo the earlier.
    changing: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    config: Config,
    /// The `# … set (hidden)` lines of the TOML served at start: tokens are not in `config`.
    hidden: String,
}

/// A change made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The key.
    pub key: String,
    /// Its value before, as TOML.
    pub old: String,
    /// Its value now, as TOML.
    pub new: String,
    /// When it takes effect.
    pub effect: &'static str,
}

impl LiveConfig {
    /// The configuration served at start, as [`Config::to_toml`] wrote it (a text that does not
    /// read back, as a test's placeholder, stands for the defaults).
    pub fn new(toml_text: &str) -> Self {
        let config = toml::from_str(toml_text).unwrap_or_default();
        let hidden = toml_text
            .lines()
            .filter(|l| l.starts_with("# ") && l.ends_with("(hidden)"))
            .map(|l| format!("{l}\n"))
            .collect();
        Self {
            state: Mutex::new(State { config, hidden }),
            changing: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.state().config.clone()
    }

    /// The configuration in force as TOML (tokens left out, as at start).
    ///
    /// # Errors
    /// INTERNAL if it cannot be written (a path that is not UTF-8, which start refused).
    pub fn toml(&self) -> Result<String, Status> {
        let s = self.state();
        let mut text = s
            .config
            .to_toml()
            .map_err(|e| Status::internal(e.to_string()))?;
        text.push_str(&s.hidden);
        Ok(text)
    }
}

/// What a change is checked and applied against.
#[derive(Debug)]
pub struct Target<'a> {
    /// The server's shared state.
    pub shared: &'a Shared,
    /// Who asked, for the log.
    pub by: String,
}

/// Sets `key` to `value` (a TOML value; a bare word is taken as a string) and applies it.
///
/// # Errors
/// INVALID_ARGUMENT for an unknown key or a bad value, FAILED_PRECONDITION for a key that
/// cannot change live, UNAVAILABLE if the shards did not take a new idle strategy in time.
pub async fn set(target: Target<'_>, key: &str, value: &str) -> Result<Change, Status> {
    let shared = target.shared;
    let _one_at_a_time = shared.config.changing.lock().await;
    let current = shared.config.config();
    let (next, old, new) = edited(&current, key, value)?;
    let Some(live) = LIVE.iter().find(|k| k.key == key) else {
        return Err(Status::failed_precondition(format!(
            "{key} cannot change while serving; set it in the config file (--config) or its \
             flag and restart. Live keys: {}",
            LIVE.iter().map(|k| k.key).collect::<Vec<_>>().join(", ")
        )));
    };
    next.validate_live()
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    if key == "idle" {
        let IdleSpec::Fixed(strategy) = next.idle else {
            return Err(Status::invalid_argument(
                "idle = auto is resolved per core at start; give spin, spin-yield or backoff",
            ));
        };
        let plane = Arc::clone(&shared.plane);
        let applied = tokio::task::spawn_blocking(move || {
            plane
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .execute(|id| Command::SetIdle { id, strategy }, COMMAND_TIMEOUT)
        })
        .await
        .map_err(|e| Status::internal(format!("config task failed: {e}")))?;
        match applied {
            Ok(Applied::Configured) => {}
            Ok(other) => return Err(Status::internal(format!("unexpected answer {other:?}"))),
            Err(e) => {
                return Err(Status::unavailable(format!(
                    "{e}; some shards may have taken the new strategy and others not: set it \
                     again (GetConfig shows the value before this call)"
                )));
            }
        }
    }
    apply(shared, key, &next);
    shared.config.state().config = next;
    tracing::info!(key, old = %old, new = %new, by = %target.by, "configuration changed");
    Ok(Change {
        key: key.to_owned(),
        old,
        new,
        effect: live.effect,
    })
}

/// Puts the section of `key` in `config` in force.
fn apply(shared: &Shared, key: &str, config: &Config) {
    if key.starts_with("limits.") {
        shared.admission.set(config.limits);
        return;
    }
    if !key.starts_with("subscribers.") {
        return;
    }
    let s = &config.subscribers;
    shared.hub.set_policy(Policy {
        queue: s.queue,
        max_resyncs: s.max_resyncs as usize,
        window: std::time::Duration::from_millis(s.resync_window_ms),
        stall: std::time::Duration::from_millis(s.stall_ms),
        blocked: std::time::Duration::from_millis(s.blocked_ms),
    });
    shared.set_stream_limits(StreamLimits::of(s));
}

/// `config` with `key` set to `value`, read back through the configuration's serde shape;
/// also the key's old and new values as TOML.
fn edited(config: &Config, key: &str, value: &str) -> Result<(Config, String, String), Status> {
    let mut table = toml::Table::try_from(config)
        .map_err(|e| Status::internal(format!("the configuration as TOML: {e}")))?;
    let parsed = parse_value(value);
    let path: Vec<&str> = key.split('.').collect();
    let unknown = || {
        Status::invalid_argument(format!(
            "no setting {key:?}; `pinbook config get` shows every key (sections as [name], \
             keys as name.key)"
        ))
    };
    let (last, sections) = path.split_last().ok_or_else(unknown)?;
    let mut here = &mut table;
    for section in sections {
        here = here
            .get_mut(*section)
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(unknown)?;
    }
    let old = here.get(*last).map(ToString::to_string);
    here.insert((*last).to_owned(), parsed.clone());
    let next: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            if old.is_none() && e.message().contains("unknown field") {
                unknown()
            } else {
                Status::invalid_argument(format!("{key} = {value}: {}", e.message().trim()))
            }
        })?;
    Ok((
        next,
        old.unwrap_or_else(|| "(unset)".into()),
        parsed.to_string(),
    ))
}

/// A TOML value, or the text as a string when it is not one (`spin` → "spin").
fn parse_value(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(key: &str, value: &str) -> Result<(Config, String, String), Status> {
        edited(&Config::default(), key, value)
    }

    #[test]
    fn values_are_read_as_the_file_reads_them() {
        let (c, old, new) = edit("limits.max_subscribers", "25").unwrap();
        assert_eq!(c.limits.max_subscribers, 25);
        assert_eq!((old.as_str(), new.as_str()), ("10000", "25"));
        let (c, _, new) = edit("idle", "spin-yield").unwrap();
        assert_eq!(new, "\"spin-yield\"");
        assert!(matches!(c.idle, IdleSpec::Fixed(_)));
        let bad = edit("limits.max_subscribers", "many").unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        assert!(
            bad.message().starts_with("limits.max_subscribers = many:"),
            "{}",
            bad.message()
        );
        let bad = edit("idle", "nap").unwrap_err();
        assert!(bad.message().contains("spin-yield"), "{}", bad.message());
    }

    #[test]
    fn unknown_keys_are_named() {
        for key in ["limits.max_subscriber", "nope", "subscribers.queue.x", ""] {
            let e = edit(key, "1").unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{key}");
            assert!(
                e.message().starts_with("no setting"),
                "{key}: {}",
                e.message()
            );
        }
    }

    #[test]
    fn every_live_key_exists_and_its_change_reads_back() {
        for live in LIVE {
            let value = if live.key == "idle" { "backoff" } else { "7" };
            let (c, _, _) = edit(live.key, value).unwrap_or_else(|e| panic!("{}: {e}", live.key));
            let text = c.to_toml().unwrap();
            assert_eq!(toml::from_str::<Config>(&text).unwrap(), c, "{}", live.key);
        }
    }

    #[test]
    fn the_served_toml_keeps_its_hidden_token_lines() {
        let mut config = Config::default();
        config.auth.book_token = Some(crate::config::Secret::new("x"));
        let live = LiveConfig::new(&config.to_toml().unwrap());
        let text = live.toml().unwrap();
        assert!(text.contains("# book_token: set (hidden)"), "{text}");
        assert!(!text.contains("\"x\""), "{text}");
    }
}
