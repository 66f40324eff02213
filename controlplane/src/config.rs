//! The configuration of `pinbook serve`: what it reads, in which order, what it checks, and
//! what it turns into for the data plane.
//!
//! **Layers**, lowest first: the defaults of [`Config::default`], the TOML file given with
//! `--config` (or `PINBOOK_CONFIG`), the environment, then the command line. clap merges the
//! last two ([`ServeArgs`]: a flag beats its `PINBOOK_*` variable) and [`load`] lays them over
//! the file. A value left out of a layer leaves the one below in place.
//!
//! **Derived defaults.** The cores depend on the machine, so [`Config`] leaves them out
//! (`cores.control` / `cores.data` are `None`) and [`Config::validate`] derives them from the
//! [`Topology`] (see [`CoresConfig::resolve`]); [`Validated::config`] holds the result, with
//! every list filled in, and [`Config::default_for`] gives the same without validating.
//!
//! **Checks.** [`Config::validate`] checks everything that can be checked before starting:
//! cores against the machine, the feed file opens, the admin token file is private, sizes fit
//! together. Its [`Validated`] gives the [`ShardConfig`](dataplane::runtime::ShardConfig)s
//! and feed sources [`DataPlane::start`](dataplane::runtime::DataPlane::start) takes.
//!
//! **Tokens** are [`Secret`]s: never printed, never written by [`Config::to_toml`].
//!
//! ```
//! use controlplane::config::{Config, FeedSpec};
//! use dataplane::topology::Topology;
//!
//! let config: Config = toml::from_str("feed = \"sim\"\n[simulator]\nrate = 5000\n")?;
//! assert_eq!(config.feed, FeedSpec::Simulator);
//! let validated = config.validate(&Topology::fallback())?;
//! assert_eq!(validated.data_cores().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod args;
mod cores;
mod error;
mod feed;
mod idle;
mod secret;
mod validate;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use dataplane::book::BooksConfig;
use dataplane::topology::Topology;
use serde::{Deserialize, Serialize};

pub use args::{ServeArgs, load, load_with};
pub use cores::CoresConfig;
pub use error::ConfigError;
pub use feed::{FeedSpec, UdpLine};
pub use idle::IdleSpec;
pub use secret::Secret;
pub use validate::Validated;

pub use crate::limits::LimitsConfig;
pub use crate::nats::config::NatsConfig;
pub use crate::tls::TlsConfig;

/// The largest `event_ring` accepted: 16 Mi events, 1 GiB per shard.
pub const MAX_EVENT_RING: usize = 1 << 24;

/// The environment variable that sets `auth.admin_token` (there is no flag for it: a flag
/// would show in `ps`).
pub const ADMIN_TOKEN_ENV: &str = "PINBOOK_ADMIN_TOKEN";

/// Everything `pinbook serve` is configured with. Every field has a default, so an empty
/// file is a valid configuration; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the gRPC server listens.
    pub grpc_addr: SocketAddr,
    /// Where the Prometheus metrics endpoint listens.
    pub metrics_addr: SocketAddr,
    /// Serve plaintext off loopback: gRPC without `[tls]`, and metrics (always plain HTTP),
    /// on an address other machines reach. Refused unless this is set; when it is, a warning
    /// is logged at startup and every hour.
    pub insecure: bool,
    /// The feed every shard reads: `sim`, `file:PATH`, `dbn:PATH`, `udp:ADDR` or
    /// `udp:A,udp:B`.
    pub feed: FeedSpec,
    /// Symbols published from the start (more can be added at run time); empty publishes
    /// every symbol of the feed.
    pub symbols: Vec<String>,
    /// The shards' idle strategy: `auto`, `spin`, `spin-yield` or `backoff`.
    pub idle: IdleSpec,
    /// Events each shard's ring to the control plane holds; at least
    /// `2 * books.max_levels_per_side + 2`, so one book's resync fits.
    pub event_ring: usize,
    /// How long shutdown waits for subscribers to drain, in milliseconds.
    pub shutdown_ms: u64,
    /// `[simulator]`: the `sim` feed.
    pub simulator: SimulatorConfig,
    /// `[file]`: how a `file:PATH` feed is read.
    pub file: FileConfig,
    /// `[udp]`: how a `udp:ADDR` feed is received.
    pub udp: UdpConfig,
    /// `[cores]`: where the planes run.
    pub cores: CoresConfig,
    /// `[books]`: each shard's book capacities, reserved at startup.
    pub books: BooksSection,
    /// `[subscribers]`: the gRPC subscribers' queues and health.
    pub subscribers: SubscribersConfig,
    /// `[limits]`: what clients may claim.
    pub limits: LimitsConfig,
    /// `[tls]`: the gRPC server's certificate, key and client CA.
    pub tls: TlsConfig,
    /// `[nats]`: publishing the books on NATS, or reading them from it (a gateway).
    pub nats: NatsConfig,
    /// `[auth]`: tokens. Written last by [`Config::to_toml`], which leaves the tokens out.
    pub auth: AuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 50051),
            metrics_addr: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 9464),
            insecure: false,
            feed: FeedSpec::Simulator,
            symbols: Vec::new(),
            idle: IdleSpec::Auto,
            event_ring: 65536,
            shutdown_ms: 5000,
            simulator: SimulatorConfig::default(),
            file: FileConfig::default(),
            udp: UdpConfig::default(),
            cores: CoresConfig::default(),
            books: BooksSection::default(),
            subscribers: SubscribersConfig::default(),
            limits: LimitsConfig::default(),
            tls: TlsConfig::default(),
            nats: NatsConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

impl Config {
    /// [`Config::default`] with the cores derived from `topology` written in.
    pub fn default_for(topology: &Topology) -> Self {
        let mut config = Self::default();
        let (control, data) = config.cores.resolve(topology);
        config.cores = CoresConfig {
            control: Some(control),
            data: Some(data),
        };
        config
    }

    /// The configuration as TOML that [`load`] reads back to an equal `Config`, except that
    /// tokens are left out (a comment says which are set).
    ///
    /// # Errors
    /// [`ConfigError::Serialize`] if a path (the feed file, the admin token file) is not
    /// UTF-8: TOML cannot hold it.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let body = toml::to_string(self).map_err(|e| ConfigError::Serialize(e.to_string()))?;
        let mut out = String::from("# pinbook serve: the effective configuration\n");
        out.push_str(&body);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        for (name, set) in [
            ("admin_token", self.auth.admin_token.is_some()),
            ("book_token", self.auth.book_token.is_some()),
        ] {
            if set {
                out.push_str(&format!("# {name}: set (hidden)\n"));
            }
        }
        Ok(out)
    }
}

/// `[simulator]`: the built-in feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Messages per second, above 0.
    pub rate: u64,
    /// Symbols simulated (stock locates `1..=symbols`), 1 to 65535.
    pub symbols: u32,
    /// RNG seed: the same seed and symbols give the same stream on every shard and run.
    pub seed: u64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            rate: 100_000,
            symbols: 50,
            seed: 1,
        }
    }
}

/// `[file]`: how a `file:PATH` feed is read. `rate` and `timestamps_speed` exclude each other.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Messages per second; 0 reads as fast as the shard polls.
    pub rate: u64,
    /// Pace by the file's own timestamps, this many times faster than recorded (1.0 is real
    /// time); 0 is off.
    pub timestamps_speed: f64,
    /// Start over at the end of the file instead of ending.
    #[serde(rename = "loop")]
    pub looping: bool,
}

impl FileConfig {
    /// The pace these settings ask for (validation refuses both set at once).
    pub fn pace(&self) -> dataplane::source::file::Pace {
        use dataplane::source::file::Pace;
        if self.rate > 0 {
            Pace::Rate(self.rate)
        } else if self.timestamps_speed > 0.0 {
            Pace::Timestamps {
                speed: self.timestamps_speed,
            }
        } else {
            Pace::Unpaced
        }
    }
}

/// `[udp]`: how a `udp:ADDR` feed (one line, or lines A and B) is received and recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UdpConfig {
    /// How many messages ahead of the next expected sequence number a MoldUDP64 packet may
    /// start and be believed at once; a packet further ahead waits until the next packet of its
    /// session confirms it (so one forged or corrupt header cannot freeze the feed). Above 0.
    pub sequence_window: u64,
    /// The MoldUDP64 retransmission (request) server asked for messages every line lost
    /// (`IP:PORT`); none by default, and then lost messages are a gap and a resync.
    pub retransmit: Option<SocketAddr>,
    /// Messages held (each in a 64-byte slot reserved at start) while a hole before them is
    /// filled by the other line or the request server; a hole is given up when the hold is
    /// full. 1 to 16,777,216.
    pub hold_messages: usize,
    /// How long a hole waits for a line that has not passed it yet (or, without a request
    /// server, for a reordered packet) before it is requested or given up, in microseconds.
    pub line_wait_us: u64,
    /// How long a requested hole may stay open before it is given up (a gap and a resync), in
    /// milliseconds. Above 0.
    pub retransmit_timeout_ms: u64,
    /// The wait before a request is repeated, doubling after each repeat, in milliseconds.
    /// Above 0.
    pub retransmit_retry_ms: u64,
}

/// The largest `[udp] hold_messages`: 1 GiB of slots.
pub const MAX_HOLD_MESSAGES: usize = 1 << 24;

impl Default for UdpConfig {
    fn default() -> Self {
        use dataplane::source::arbiter;
        Self {
            sequence_window: dataplane::source::udp::DEFAULT_WINDOW,
            retransmit: None,
            hold_messages: arbiter::DEFAULT_HOLD,
            line_wait_us: arbiter::DEFAULT_LINE_WAIT_NS / 1_000,
            retransmit_timeout_ms: arbiter::DEFAULT_RETRANSMIT_TIMEOUT_NS / 1_000_000,
            retransmit_retry_ms: arbiter::DEFAULT_RETRY_NS / 1_000_000,
        }
    }
}

impl UdpConfig {
    /// The arbiter's options for `lines` lines.
    pub fn arbiter(&self, lines: usize) -> dataplane::source::arbiter::ArbiterOptions {
        dataplane::source::arbiter::ArbiterOptions {
            lines,
            hold: self.hold_messages,
            line_wait_ns: self.line_wait_us.saturating_mul(1_000),
            retransmit: self.retransmit.is_some(),
            retransmit_timeout_ns: self.retransmit_timeout_ms.saturating_mul(1_000_000),
            retry_ns: self.retransmit_retry_ms.saturating_mul(1_000_000),
        }
    }
}

/// `[books]`: [`BooksConfig`] as written in the file; the defaults are
/// [`BooksConfig::default`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BooksSection {
    /// Live orders across a shard's books.
    pub max_orders: usize,
    /// Price levels across a shard's books and sides.
    pub max_levels: usize,
    /// Price levels on one side of one book.
    pub max_levels_per_side: u32,
    /// Books per shard: stock locates `0..max_symbols` (at most 65536).
    pub max_symbols: usize,
}

impl Default for BooksSection {
    fn default() -> Self {
        BooksConfig::default().into()
    }
}

impl From<BooksConfig> for BooksSection {
    fn from(b: BooksConfig) -> Self {
        Self {
            max_orders: b.max_orders,
            max_levels: b.max_levels,
            max_levels_per_side: b.max_levels_per_side,
            max_symbols: b.max_symbols,
        }
    }
}

impl From<BooksSection> for BooksConfig {
    fn from(b: BooksSection) -> Self {
        Self {
            max_orders: b.max_orders,
            max_levels: b.max_levels,
            max_levels_per_side: b.max_levels_per_side,
            max_symbols: b.max_symbols,
        }
    }
}

/// `[subscribers]`: what each gRPC book subscriber gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscribersConfig {
    /// Updates queued per subscriber before it is resynced.
    pub queue: usize,
    /// The deepest book (levels per side) a subscriber may ask for.
    pub max_depth: u32,
    /// The shortest interval a conflated subscription may ask for, in milliseconds.
    pub min_interval_ms: u32,
    /// The longest interval a conflated subscription may ask for, in milliseconds.
    pub max_interval_ms: u32,
    /// Heartbeat interval on a quiet stream, in milliseconds.
    pub heartbeat_ms: u64,
    /// Resyncs a subscriber may need within `resync_window_ms` before it is closed as too
    /// slow.
    pub max_resyncs: u32,
    /// The window `max_resyncs` is counted over, in milliseconds.
    pub resync_window_ms: u64,
    /// How long a subscriber may go without reading, in milliseconds, before it is closed as
    /// too slow: the time it has to read its SLOW_CONSUMER resync after an overflow, and the
    /// longest its stream waits for it to take one update.
    pub stall_ms: u64,
    /// How long a subscriber's connection may take nothing, in milliseconds, while updates
    /// wait for it, before it is resynced as a slow consumer (as if its queue had overflowed).
    /// Far shorter than filling the queue: from then on it costs the server nothing until it
    /// reads again. At most `stall_ms`.
    pub blocked_ms: u64,
}

impl Default for SubscribersConfig {
    fn default() -> Self {
        Self {
            queue: 8192,
            max_depth: 1000,
            min_interval_ms: 1,
            max_interval_ms: 60_000,
            heartbeat_ms: 1000,
            max_resyncs: 3,
            resync_window_ms: 10_000,
            stall_ms: 5_000,
            blocked_ms: 100,
        }
    }
}

/// `[auth]`: tokens. None is set by default. The admin token is given at most one way:
/// `admin_token` (or the environment variable [`ADMIN_TOKEN_ENV`]) or `admin_token_file`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The token admin calls must carry. Never written out; prefer `admin_token_file` or the
    /// environment to keeping it in the config file.
    #[serde(skip_serializing)]
    pub admin_token: Option<Secret>,
    /// A file holding the admin token (surrounding whitespace ignored); it must not be
    /// readable by group or others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
    /// The token book subscriptions must carry; none means subscriptions are open. Never
    /// written out.
    #[serde(skip_serializing)]
    pub book_token: Option<Secret>,
    /// `[[auth.entitlements]]`: book clients, each recognised by a token file or its client
    /// certificate, each with the symbols it may see. Any set closes the book service to
    /// everyone else (except holders of `book_token`, who see every symbol).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<EntitlementConfig>,
}

/// One `[[auth.entitlements]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitlementConfig {
    /// Its name, for messages and the log.
    pub name: String,
    /// A file holding the client's token (private to its owner, as the admin token's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Or the subject of the client's certificate, as `CN=desk-1` (needs mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The symbols it may subscribe to and look up; empty: every symbol.
    #[serde(default)]
    pub symbols: Vec<String>,
}

#[cfg(test)]
pub(crate) mod test_support {
    use dataplane::topology::Topology;

    /// A one-node machine with these cpus, all allowed.
    pub(crate) fn machine(cpus: &[usize]) -> Topology {
        Topology::single_node(cpus.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(c.metrics_addr.to_string(), "127.0.0.1:9464");
        assert!(!c.insecure);
        assert_eq!(c.tls, TlsConfig::default());
        assert_eq!(c.limits, LimitsConfig::default());
        assert_eq!(c.feed, FeedSpec::Simulator);
        assert!(c.symbols.is_empty());
        assert_eq!(c.idle, IdleSpec::Auto);
        assert_eq!(c.event_ring, 65536);
        assert_eq!(c.shutdown_ms, 5000);
        assert_eq!(
            (c.simulator.rate, c.simulator.symbols, c.simulator.seed),
            (100_000, 50, 1)
        );
        assert_eq!(
            c.file,
            FileConfig {
                rate: 0,
                timestamps_speed: 0.0,
                looping: false
            }
        );
        assert_eq!(
            c.cores,
            CoresConfig {
                control: None,
                data: None
            }
        );
        assert_eq!(BooksConfig::from(c.books), BooksConfig::default());
        assert_eq!(
            c.subscribers,
            SubscribersConfig {
                queue: 8192,
                max_depth: 1000,
                min_interval_ms: 1,
                max_interval_ms: 60_000,
                heartbeat_ms: 1000,
                max_resyncs: 3,
                resync_window_ms: 10_000,
                stall_ms: 5_000,
                blocked_ms: 100
            }
        );
        assert_eq!(c.auth, AuthConfig::default());
        assert!(c.auth.admin_token.is_none() && c.auth.admin_token_file.is_none());
        // an empty file is the defaults
        assert_eq!(toml::from_str::<Config>("").unwrap(), c);
    }

    #[test]
    fn default_for_writes_the_derived_cores_in() {
        let c = Config::default_for(&test_support::machine(&[0, 1, 2]));
        assert_eq!(c.cores.control, Some(vec![0]));
        assert_eq!(c.cores.data, Some(vec![1]));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_place() {
        for (text, field) in [
            ("grpc_adr = \"127.0.0.1:1\"\n", "grpc_adr"),
            ("[simulator]\nrate = 5\nsymbol = 3\n", "symbol"),
            ("[auth]\ntoken = \"x\"\n", "token"),
            ("[cores]\nshards = 2\n", "shards"),
        ] {
            let msg = toml::from_str::<Config>(text).unwrap_err().to_string();
            assert!(msg.contains(&format!("unknown field `{field}`")), "{msg}");
            assert!(msg.contains("line "), "no line in {msg}");
        }
    }

    #[test]
    fn feed_and_idle_are_checked_when_read() {
        let msg = toml::from_str::<Config>("feed = \"ftp:x\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("use sim, file:PATH (ITCH), dbn:PATH"), "{msg}");
        let msg = toml::from_str::<Config>("idle = \"nap\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("use one of auto, spin, spin-yield, backoff"),
            "{msg}"
        );
        let msg = toml::from_str::<Config>("grpc_addr = \"localhost\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("grpc_addr"), "{msg}");
    }

    fn everything_set() -> Config {
        Config {
            grpc_addr: "0.0.0.0:7000".parse().unwrap(),
            metrics_addr: "[::1]:7001".parse().unwrap(),
            insecure: true,
            feed: "udp:239.1.1.1:26400".parse::<FeedSpec>().unwrap(),
            symbols: vec!["AAPL".into(), "MSFT".into()],
            idle: IdleSpec::Fixed(dataplane::runtime::idle::IdleStrategy::DEFAULT_BACKOFF),
            event_ring: 4096,
            shutdown_ms: 250,
            simulator: SimulatorConfig {
                rate: 7,
                symbols: 9,
                seed: 11,
            },
            file: FileConfig {
                rate: 0,
                timestamps_speed: 2.5,
                looping: true,
            },
            udp: UdpConfig {
                sequence_window: 12,
                retransmit: Some("127.0.0.1:26401".parse().unwrap()),
                hold_messages: 1000,
                line_wait_us: 50,
                retransmit_timeout_ms: 300,
                retransmit_retry_ms: 5,
            },
            cores: CoresConfig {
                control: Some(vec![0]),
                data: Some(vec![1, 2]),
            },
            nats: NatsConfig {
                publish: vec!["nats://10.0.0.1:4222".into(), "nats://10.0.0.2:4222".into()],
                from: Vec::new(),
                partition: "east".into(),
                partitions: vec!["east".into(), "west".into()],
                snapshot_ms: 250,
                instance: "a".into(),
                standby: true,
            },
            books: BooksSection {
                max_orders: 100,
                max_levels: 200,
                max_levels_per_side: 30,
                max_symbols: 40,
            },
            subscribers: SubscribersConfig {
                queue: 5,
                max_depth: 6,
                min_interval_ms: 2,
                max_interval_ms: 3,
                heartbeat_ms: 7,
                max_resyncs: 8,
                resync_window_ms: 9,
                stall_ms: 10,
                blocked_ms: 5,
            },
            limits: LimitsConfig {
                max_subscribers: 1,
                max_subscribers_per_client: 2,
                max_streams_per_connection: 3,
                max_symbols_per_subscription: 4,
                max_message_bytes: 5,
                calls_per_second: 6,
                request_deadline_ms: 7,
                idle_timeout_ms: 8,
            },
            tls: TlsConfig {
                cert: Some("/etc/pinbook/cert.pem".into()),
                key: Some("/etc/pinbook/key.pem".into()),
                client_ca: Some("/etc/pinbook/clients.pem".into()),
            },
            auth: AuthConfig {
                admin_token: None,
                admin_token_file: Some("/run/secrets/admin".into()),
                book_token: None,
                entitlements: vec![
                    EntitlementConfig {
                        name: "desk-1".into(),
                        token_file: Some("/run/secrets/desk-1".into()),
                        certificate: None,
                        symbols: vec!["AAPL".into()],
                    },
                    EntitlementConfig {
                        name: "desk-2".into(),
                        token_file: None,
                        certificate: Some("CN=desk-2".into()),
                        symbols: Vec::new(),
                    },
                ],
            },
        }
    }

    #[test]
    fn to_toml_reads_back_equal() {
        for config in [
            Config::default(),
            everything_set(),
            Config::default_for(&Topology::fallback()),
        ] {
            let text = config.to_toml().unwrap();
            let back: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, config, "{text}");
        }
    }

    #[test]
    fn to_toml_never_writes_a_token() {
        let mut config = everything_set();
        config.auth.admin_token = Some(Secret::new("s3cr3t-admin"));
        config.auth.book_token = Some(Secret::new("s3cr3t-book"));
        let text = config.to_toml().unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("# admin_token: set (hidden)\n"), "{text}");
        assert!(text.contains("# book_token: set (hidden)\n"), "{text}");
        assert!(!format!("{config:?}").contains("s3cr3t"));
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.auth.admin_token, None);
        assert_eq!(back.auth.admin_token_file, config.auth.admin_token_file);
        // without tokens there is no comment about them
        assert!(!Config::default().to_toml().unwrap().contains("hidden"));
    }

    #[test]
    fn large_integers_round_trip() {
        let mut config = Config::default();
        config.simulator.seed = u64::MAX;
        config.shutdown_ms = u64::MAX;
        let back: Config = toml::from_str(&config.to_toml().unwrap()).unwrap();
        assert_eq!(back, config);
    }

    #[cfg(unix)]
    #[test]
    fn to_toml_refuses_a_path_it_cannot_write() {
        use std::os::unix::ffi::OsStringExt;
        let odd = PathBuf::from(std::ffi::OsString::from_vec(vec![b'/', 0xff]));
        let mut config = Config::default();
        config.auth.admin_token_file = Some(odd.clone());
        assert!(matches!(config.to_toml(), Err(ConfigError::Serialize(_))));
        let config = Config {
            feed: FeedSpec::File(odd),
            ..Config::default()
        };
        let msg = config.to_toml().unwrap_err().to_string();
        assert!(msg.contains("is not UTF-8"), "{msg}");
    }
}
