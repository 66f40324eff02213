//! [`Config::validate`] and its result, [`Validated`]: the checks that can be made before
//! anything starts, and the shard configs and feed sources the data plane is started with.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use dataplane::runtime::{Publish, ShardConfig, default_idle};
use dataplane::source::FeedSource;
use dataplane::source::dbn::DbnSource;
use dataplane::source::file::{FileOptions, FileSource};
use dataplane::source::simulator::{Simulator, SimulatorOptions};
use dataplane::source::udp::{ReceiverOptions, UdpFeedOptions, UdpSource};
use dataplane::symbol::Symbol;
use dataplane::topology::Topology;

use crate::auth::{BookAccess, Grant};
use crate::hub::Policy;
use crate::server::ServerOptions;
use crate::tls::ServerTls;

use super::{
    Config, ConfigError, CoresConfig, FeedSpec, IdleSpec, MAX_EVENT_RING, Secret, UdpLine,
};

/// Feed events a shard takes per poll.
const BATCH: usize = 64;

/// A configuration that passed [`Config::validate`] on a machine, with its derived values
/// resolved.
#[derive(Clone, Debug)]
pub struct Validated {
    config: Config,
    control: Vec<usize>,
    data: Vec<usize>,
    publish: Publish,
    admin_token: Option<Secret>,
    book_access: BookAccess,
    tls: Option<ServerTls>,
    exposed: Option<String>,
    warnings: Vec<String>,
}

impl Config {
    /// Checks the configuration against `topology` (and the files it names) and resolves
    /// what is derived: the cores left out (see [`CoresConfig::resolve`]), the published
    /// symbols, the admin token from its file.
    ///
    /// Only the section of the feed in use (`[simulator]` or `[file]`) is checked. A control
    /// and data plane sharing the only allowed cpu is accepted with a warning (see
    /// [`Validated::warnings`]), which the caller should log. An admin token file that group
    /// or others may read or write is an error, not a warning: the token guards the admin
    /// calls.
    ///
    /// # Errors
    /// The first problem found, as the [`ConfigError`] that says how to fix it.
    pub fn validate(&self, topology: &Topology) -> Result<Validated, ConfigError> {
        let mut warnings = Vec::new();

        if self.grpc_addr == self.metrics_addr && self.grpc_addr.port() != 0 {
            return Err(ConfigError::SameAddress(self.grpc_addr));
        }

        let (control, data) = self.cores.resolve(topology);
        check_cores(topology, &control, &data, &mut warnings)?;

        self.check_books()?;
        self.check_feed(data.len())?;
        self.nats.check().map_err(ConfigError::Nats)?;

        let publish = if self.symbols.is_empty() {
            Publish::All
        } else {
            let mut list = Vec::with_capacity(self.symbols.len());
            for name in &self.symbols {
                let bytes =
                    Symbol::parse(name).ok_or_else(|| ConfigError::BadSymbol(name.clone()))?;
                if !list.contains(&bytes) {
                    list.push(bytes);
                }
            }
            Publish::Only(list)
        };

        self.check_subscribers()?;
        first_zero(&[
            (
                self.udp.sequence_window == 0,
                "udp.sequence_window",
                "every gap would wait for confirmation; give messages, e.g. 1000000",
            ),
            (
                self.udp.hold_messages == 0,
                "udp.hold_messages",
                "nothing could wait for a hole to be filled; give messages, e.g. 65536",
            ),
            (
                self.udp.retransmit_timeout_ms == 0,
                "udp.retransmit_timeout_ms",
                "a request could never be answered in time; give milliseconds, e.g. 500",
            ),
            (
                self.udp.retransmit_retry_ms == 0,
                "udp.retransmit_retry_ms",
                "requests would be repeated at every loop; give milliseconds, e.g. 20",
            ),
        ])?;
        if self.udp.hold_messages > super::MAX_HOLD_MESSAGES {
            return Err(ConfigError::UdpHoldTooLarge(self.udp.hold_messages));
        }
        if let Some(addr) = self.udp.retransmit
            && !matches!(self.feed, FeedSpec::Udp(_))
        {
            return Err(ConfigError::RetransmitWithoutUdp {
                addr,
                feed: self.feed.to_string(),
            });
        }
        if let Some(key) = self.limits.first_zero() {
            return Err(ConfigError::ZeroLimit(key));
        }
        let tls = ServerTls::load(&self.tls)?;
        let exposed = self.check_exposure(tls.is_some())?;
        let admin_token = self.admin_token()?;
        let book_access = self.book_access()?;
        if self
            .auth
            .book_token
            .as_ref()
            .is_some_and(|t| t.expose().is_empty())
        {
            return Err(ConfigError::EmptyToken("auth.book_token"));
        }

        let mut config = self.clone();
        config.cores = CoresConfig {
            control: Some(control.clone()),
            data: Some(data.clone()),
        };
        Ok(Validated {
            config,
            control,
            data,
            publish,
            admin_token,
            book_access,
            tls,
            exposed,
            warnings,
        })
    }

    /// The book service's access: the book token and the entitlements, their token files read.
    fn book_access(&self) -> Result<BookAccess, ConfigError> {
        let mut access = BookAccess {
            token: self.auth.book_token.clone(),
            ..BookAccess::default()
        };
        let mut names = std::collections::HashSet::new();
        for e in &self.auth.entitlements {
            if !names.insert(e.name.as_str()) {
                return Err(ConfigError::DuplicateEntitlement(e.name.clone()));
            }
            let symbols = if e.symbols.is_empty() {
                None
            } else {
                let mut set = std::collections::HashSet::new();
                for name in &e.symbols {
                    let symbol =
                        Symbol::parse(name).ok_or_else(|| ConfigError::BadSymbol(name.clone()))?;
                    set.insert(symbol.to_string());
                }
                Some(set)
            };
            let grant = Grant {
                name: e.name.clone(),
                symbols,
            };
            match (&e.token_file, &e.certificate) {
                (Some(path), None) => {
                    let what = format!("entitlement {:?} token file", e.name);
                    let token = read_token_file(path, &what)?;
                    access.tokens.push((token, grant));
                }
                (None, Some(subject)) if self.tls.client_ca.is_some() => {
                    access.certificates.push((subject.clone(), grant));
                }
                (None, Some(_)) => {
                    return Err(ConfigError::EntitlementWithoutMtls {
                        name: e.name.clone(),
                    });
                }
                _ => {
                    return Err(ConfigError::EntitlementIdentity {
                        name: e.name.clone(),
                    });
                }
            }
        }
        Ok(access)
    }

    /// Refuses plaintext off loopback unless `insecure`; with it, returns the warning to log.
    fn check_exposure(&self, tls: bool) -> Result<Option<String>, ConfigError> {
        // (the key, its address, how the error names it)
        let listeners = [
            (!tls, "grpc_addr", self.grpc_addr, "grpc_addr"),
            (
                true,
                "metrics_addr",
                self.metrics_addr,
                "metrics_addr (metrics are always plain HTTP)",
            ),
        ];
        let plaintext: Vec<_> = listeners
            .into_iter()
            .filter(|&(plain, _, addr, _)| plain && !addr.ip().is_loopback())
            .collect();
        match plaintext.first() {
            None => Ok(None),
            Some(&(_, _, addr, what)) if !self.insecure => {
                Err(ConfigError::PlaintextExposed { what, addr })
            }
            Some(_) => {
                let listed: Vec<String> = plaintext
                    .iter()
                    .map(|(_, key, addr, _)| format!("{key} {addr}"))
                    .collect();
                Ok(Some(format!(
                    "--insecure: serving plaintext off loopback ({}); anyone on the network can \
                     read what is sent, tokens included; give --tls-cert and --tls-key to \
                     encrypt gRPC",
                    listed.join(", ")
                )))
            }
        }
    }

    fn check_books(&self) -> Result<(), ConfigError> {
        let b = &self.books;
        first_zero(&[
            (
                b.max_orders == 0,
                "books.max_orders",
                "give the live orders a shard may hold, e.g. 2097152",
            ),
            (
                b.max_levels == 0,
                "books.max_levels",
                "give the price levels a shard may hold, e.g. 1048576",
            ),
            (
                b.max_levels_per_side == 0,
                "books.max_levels_per_side",
                "give the levels one side of a book may hold, e.g. 8192",
            ),
            (
                b.max_symbols == 0,
                "books.max_symbols",
                "give the books a shard keeps, e.g. 16384",
            ),
        ])?;
        if b.max_symbols > 1 << 16 {
            return Err(ConfigError::TooManySymbols(b.max_symbols));
        }
        let needed = 2 * b.max_levels_per_side as usize + 2;
        if self.event_ring < needed {
            return Err(ConfigError::EventRingTooSmall {
                event_ring: self.event_ring,
                per_side: b.max_levels_per_side,
                needed,
            });
        }
        if self.event_ring > MAX_EVENT_RING {
            return Err(ConfigError::EventRingTooLarge(self.event_ring));
        }
        Ok(())
    }

    fn check_feed(&self, shards: usize) -> Result<(), ConfigError> {
        match &self.feed {
            FeedSpec::Simulator => {
                let sim = &self.simulator;
                if sim.rate == 0 {
                    return Err(ConfigError::SimulatorRate);
                }
                if !(1..=u32::from(u16::MAX)).contains(&sim.symbols) {
                    return Err(ConfigError::SimulatorSymbols(sim.symbols));
                }
                let needed = u64::from(sim.symbols) + 1;
                if (self.books.max_symbols as u64) < needed {
                    return Err(ConfigError::SimulatorSymbolsExceedBooks {
                        symbols: sim.symbols,
                        max_symbols: self.books.max_symbols,
                        needed,
                    });
                }
            }
            FeedSpec::File(_) | FeedSpec::Dbn(_) => {
                let file = &self.file;
                if !(file.timestamps_speed.is_finite() && file.timestamps_speed >= 0.0) {
                    return Err(ConfigError::FileSpeed(file.timestamps_speed));
                }
                if file.rate > 0 && file.timestamps_speed > 0.0 {
                    return Err(ConfigError::FilePaceConflict {
                        rate: file.rate,
                        speed: file.timestamps_speed,
                    });
                }
                let paths = match &self.feed {
                    FeedSpec::File(path) => std::slice::from_ref(path),
                    FeedSpec::Dbn(paths) => paths.as_slice(),
                    _ => &[],
                };
                for path in paths {
                    check_feed_file(path)?;
                }
            }
            FeedSpec::Udp(lines) => {
                for UdpLine { addr, .. } in lines {
                    match addr.ip() {
                        IpAddr::V6(ip) if ip.is_multicast() => {
                            return Err(ConfigError::UdpIpv6Multicast { addr: *addr });
                        }
                        IpAddr::V4(ip) if ip.is_multicast() => {}
                        _ if shards > 1 => {
                            return Err(ConfigError::UdpUnicastShards {
                                addr: *addr,
                                shards,
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn check_subscribers(&self) -> Result<(), ConfigError> {
        let s = &self.subscribers;
        first_zero(&[
            (
                s.queue == 0,
                "subscribers.queue",
                "give the updates queued per subscriber, e.g. 8192",
            ),
            (
                s.max_depth == 0,
                "subscribers.max_depth",
                "no subscriber could see a level; use 1 or more, e.g. 1000",
            ),
            (
                s.heartbeat_ms == 0,
                "subscribers.heartbeat_ms",
                "give an interval in milliseconds, e.g. 1000",
            ),
            (
                s.max_resyncs == 0,
                "subscribers.max_resyncs",
                "it would close every subscriber at its first resync; use 1 or more, e.g. 3",
            ),
            (
                s.resync_window_ms == 0,
                "subscribers.resync_window_ms",
                "give the window resyncs are counted over in milliseconds, e.g. 10000",
            ),
            (
                s.stall_ms == 0,
                "subscribers.stall_ms",
                "it would close every subscriber that is not reading at that instant; give \
                 milliseconds, e.g. 5000",
            ),
            (
                s.blocked_ms == 0,
                "subscribers.blocked_ms",
                "it would resync every subscriber whose connection is busy at that instant; \
                 give milliseconds, e.g. 100",
            ),
        ])?;
        if s.blocked_ms > s.stall_ms {
            return Err(ConfigError::BlockedLongerThanStall {
                blocked_ms: s.blocked_ms,
                stall_ms: s.stall_ms,
            });
        }
        if s.min_interval_ms == 0 || s.min_interval_ms > s.max_interval_ms {
            return Err(ConfigError::BadConflationBounds {
                min: s.min_interval_ms,
                max: s.max_interval_ms,
            });
        }
        Ok(())
    }

    /// The checks of [`Config::validate`] for what can change while serving (see
    /// [`crate::live_config::LIVE`]): the subscribers and the limits.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate_live(&self) -> Result<(), ConfigError> {
        self.check_subscribers()?;
        match self.limits.first_zero() {
            Some(key) => Err(ConfigError::ZeroLimit(key)),
            None => Ok(()),
        }
    }

    /// The admin token, from `auth.admin_token` or read from `auth.admin_token_file`.
    fn admin_token(&self) -> Result<Option<Secret>, ConfigError> {
        match (&self.auth.admin_token, &self.auth.admin_token_file) {
            (Some(_), Some(_)) => Err(ConfigError::AdminTokenConflict),
            (Some(token), None) if token.expose().is_empty() => {
                Err(ConfigError::EmptyToken("auth.admin_token"))
            }
            (Some(token), None) => Ok(Some(token.clone())),
            (None, Some(path)) => read_token_file(path, "admin token file").map(Some),
            (None, None) => Ok(None),
        }
    }
}

fn check_cores(
    topology: &Topology,
    control: &[usize],
    data: &[usize],
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if control.is_empty() {
        return Err(ConfigError::NoControlCore);
    }
    if data.is_empty() {
        return Err(ConfigError::NoDataCore);
    }
    let allowed = topology.allowed_cpus();
    let cores = || {
        allowed
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (role, list) in [("control", control), ("data", data)] {
        for (i, &core) in list.iter().enumerate() {
            if topology.cpu(core).is_none() {
                return Err(ConfigError::NoSuchCore {
                    role,
                    core,
                    cores: cores(),
                });
            }
            if !allowed.contains(&core) {
                return Err(ConfigError::CoreNotAllowed {
                    role,
                    core,
                    cores: cores(),
                });
            }
            if list[..i].contains(&core) {
                return Err(ConfigError::DuplicateCore { role, core });
            }
        }
    }
    if data.len() > usize::from(u16::MAX) {
        return Err(ConfigError::TooManyShards(data.len()));
    }
    if let Some(&core) = data.iter().find(|c| control.contains(c)) {
        if allowed.len() > 1 {
            return Err(ConfigError::CoresOverlap { core });
        }
        warnings.push(format!(
            "only cpu {core} is allowed: the control and data planes share it, so shards back \
             off when idle and latency suffers; give the process more cpus for a pinned data \
             plane"
        ));
    }
    Ok(())
}

fn check_feed_file(path: &Path) -> Result<(), ConfigError> {
    let file = std::fs::File::open(path).map_err(|source| ConfigError::FeedFile {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = file.metadata().map_err(|source| ConfigError::FeedFile {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(ConfigError::FeedNotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn read_token_file(path: &Path, what: &str) -> Result<Secret, ConfigError> {
    let unreadable = |source| ConfigError::AdminTokenFile {
        what: what.to_owned(),
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ConfigError::AdminTokenFilePermissions {
                what: what.to_owned(),
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ConfigError::EmptyToken(if what.starts_with("admin") {
            "the admin token file"
        } else {
            "an entitlement's token file"
        }));
    }
    Ok(Secret::new(token))
}

impl Validated {
    /// The configuration, with the cores filled in (what `--print-config` should print).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The control plane's cores.
    pub fn control_cores(&self) -> &[usize] {
        &self.control
    }

    /// The data plane's cores, one shard each, in shard order.
    pub fn data_cores(&self) -> &[usize] {
        &self.data
    }

    /// The server's TLS, when `[tls]` is set.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    /// With `insecure` and a plaintext listener off loopback: the warning to log at startup
    /// and every hour.
    pub fn exposure_warning(&self) -> Option<&str> {
        self.exposed.as_deref()
    }

    /// What was accepted but deserves a warning in the log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The admin token, from the config, the environment or the token file.
    pub fn admin_token(&self) -> Option<&Secret> {
        self.admin_token.as_ref()
    }

    /// The token book subscriptions must carry, if any.
    pub fn book_token(&self) -> Option<&Secret> {
        self.config.auth.book_token.as_ref()
    }

    /// `subscribers.heartbeat_ms`.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.config.subscribers.heartbeat_ms)
    }

    /// `subscribers.resync_window_ms`.
    pub fn resync_window(&self) -> Duration {
        Duration::from_millis(self.config.subscribers.resync_window_ms)
    }

    /// `subscribers.blocked_ms`.
    pub fn blocked(&self) -> Duration {
        Duration::from_millis(self.config.subscribers.blocked_ms)
    }

    /// `subscribers.stall_ms`.
    pub fn stall(&self) -> Duration {
        Duration::from_millis(self.config.subscribers.stall_ms)
    }

    /// `shutdown_ms`.
    pub fn shutdown(&self) -> Duration {
        Duration::from_millis(self.config.shutdown_ms)
    }

    /// What the gRPC server runs with, `admin_token` being the token in force (configured, or
    /// generated by the caller when none was).
    ///
    /// # Errors
    /// The effective configuration cannot be written as TOML (for GetConfig).
    pub fn server_options(&self, admin_token: String) -> Result<ServerOptions, ConfigError> {
        let c = &self.config;
        Ok(ServerOptions {
            grpc_addr: c.grpc_addr,
            max_depth: c.subscribers.max_depth as usize,
            heartbeat: self.heartbeat(),
            policy: Policy {
                queue: c.subscribers.queue,
                max_resyncs: c.subscribers.max_resyncs as usize,
                window: self.resync_window(),
                stall: self.stall(),
                blocked: self.blocked(),
            },
            admin_token: admin_token.into(),
            book_access: self.book_access.clone(),
            tls: self.tls.as_ref().map(|t| t.config.clone()),
            control_cores: self.control.clone(),
            config_toml: c.to_toml()?,
            shutdown_timeout: self.shutdown(),
            limits: c.limits,
            conflation_ms: (c.subscribers.min_interval_ms, c.subscribers.max_interval_ms),
        })
    }

    /// One [`ShardConfig`] per data core, shard `i` pinned to `data_cores()[i]`. An `auto`
    /// idle strategy is resolved per core with [`default_idle`] on `topology` (the one
    /// validated against).
    pub fn shard_configs(&self, topology: &Topology) -> Vec<ShardConfig> {
        // validate refused more than u16::MAX data cores
        let shards = u16::try_from(self.data.len()).unwrap_or(u16::MAX);
        self.data
            .iter()
            .zip(0..shards)
            .map(|(&core, id)| ShardConfig {
                id,
                shards,
                core: Some(core),
                books: self.config.books.into(),
                event_ring: self.config.event_ring,
                batch: BATCH,
                idle: match self.config.idle {
                    IdleSpec::Auto => default_idle(topology, Some(core), &self.data, &self.control),
                    IdleSpec::Fixed(strategy) => strategy,
                },
                publish: self.publish.clone(),
                on_start: None,
            })
            .collect()
    }

    /// One feed source per shard, each reading the whole feed: the simulator (the same
    /// stream on every shard), the file (mapped per shard, pages shared), or a UDP socket
    /// (several only for a multicast group, each joining it).
    ///
    /// # Errors
    /// [`ConfigError::FileSource`] if the file cannot be mapped, [`ConfigError::UdpBind`] if a
    /// socket cannot be bound (the message names the address).
    pub fn feed_sources(&self) -> Result<Vec<Box<dyn FeedSource>>, ConfigError> {
        let c = &self.config;
        (0..self.data.len())
            .map(|_| -> Result<Box<dyn FeedSource>, ConfigError> {
                Ok(match &c.feed {
                    FeedSpec::Simulator => Box::new(Simulator::new(SimulatorOptions {
                        // validate kept symbols within 1..=u16::MAX
                        symbols: u16::try_from(c.simulator.symbols).unwrap_or(u16::MAX),
                        seed: c.simulator.seed,
                        rate: c.simulator.rate,
                    })),
                    FeedSpec::Dbn(paths) => {
                        let options = FileOptions {
                            pace: c.file.pace(),
                            looping: c.file.looping,
                        };
                        Box::new(
                            DbnSource::open(paths, options, c.books.max_symbols).map_err(|e| {
                                ConfigError::FileSource {
                                    path: paths.first().cloned().unwrap_or_default(),
                                    reason: e.to_string(),
                                }
                            })?,
                        )
                    }
                    FeedSpec::File(path) => {
                        let options = FileOptions {
                            pace: c.file.pace(),
                            looping: c.file.looping,
                        };
                        Box::new(FileSource::open(path, options).map_err(|e| {
                            ConfigError::FileSource {
                                path: path.clone(),
                                reason: e.to_string(),
                            }
                        })?)
                    }
                    FeedSpec::Udp(lines) => {
                        let options = UdpFeedOptions {
                            lines: lines
                                .iter()
                                .map(|line| {
                                    let options = ReceiverOptions {
                                        source: line.source,
                                        window: c.udp.sequence_window,
                                    };
                                    (line.addr, options)
                                })
                                .collect(),
                            retransmit: c.udp.retransmit,
                            arbiter: c.udp.arbiter(lines.len()),
                        };
                        Box::new(UdpSource::open(&options).map_err(ConfigError::UdpBind)?)
                    }
                })
            })
            .collect()
    }
}

/// The first of `checks` (`(is 0, field, fix)`) that is 0, as a [`ConfigError::Zero`].
fn first_zero(checks: &[(bool, &'static str, &'static str)]) -> Result<(), ConfigError> {
    match checks.iter().find(|(zero, ..)| *zero) {
        Some(&(_, field, fix)) => Err(ConfigError::Zero { field, fix }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use dataplane::book::BooksConfig;
    use dataplane::runtime::idle::IdleStrategy;
    use dataplane::topology::{Cpu, NumaNode};

    use super::*;
    use crate::config::test_support::machine;

    /// Two NUMA nodes of two cpus each, one L3 per node.
    fn two_nodes() -> Topology {
        let node = |os_index, cpus: &[usize]| NumaNode {
            os_index,
            memory_bytes: None,
            cpus: cpus.to_vec(),
        };
        let cpu = |id, node| Cpu {
            id,
            core: id,
            node: Some(node),
            l3: Some(node),
        };
        Topology::from_parts(
            vec![node(0, &[0, 1]), node(1, &[2, 3])],
            vec![cpu(0, 0), cpu(1, 0), cpu(2, 1), cpu(3, 1)],
            vec![0, 1, 2, 3],
        )
        .unwrap()
    }

    fn with(edit: impl FnOnce(&mut Config)) -> Config {
        let mut c = Config::default();
        edit(&mut c);
        c
    }

    fn cores(control: &[usize], data: &[usize]) -> CoresConfig {
        CoresConfig {
            control: Some(control.to_vec()),
            data: Some(data.to_vec()),
        }
    }

    /// The message of the error `config` fails with on `topology`.
    fn error(config: &Config, topology: &Topology) -> String {
        match config.validate(topology) {
            Ok(v) => panic!("validated: {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_validate_on_every_machine() {
        let one = Config::default().validate(&machine(&[5])).unwrap();
        assert_eq!(
            (one.control_cores(), one.data_cores()),
            (&[5][..], &[5][..])
        );
        assert_eq!(one.warnings().len(), 1);
        assert!(
            one.warnings()[0].starts_with("only cpu 5 is allowed"),
            "{:?}",
            one.warnings()
        );

        let two = Config::default().validate(&machine(&[0, 1])).unwrap();
        assert_eq!(
            (two.control_cores(), two.data_cores()),
            (&[0][..], &[1][..])
        );
        assert!(two.warnings().is_empty());

        let many = Config::default().validate(&two_nodes()).unwrap();
        assert_eq!(
            (many.control_cores(), many.data_cores()),
            (&[0][..], &[1][..])
        );
        assert_eq!(many.config().cores, cores(&[0], &[1]));
        assert_eq!(many.heartbeat(), Duration::from_secs(1));
        assert_eq!(many.resync_window(), Duration::from_secs(10));
        assert_eq!(many.stall(), Duration::from_secs(5));
        assert_eq!(many.shutdown(), Duration::from_secs(5));
        assert!(many.admin_token().is_none() && many.book_token().is_none());

        let fallback = Topology::fallback();
        let v = Config::default().validate(&fallback).unwrap();
        assert_eq!(v.data_cores().len(), 1);
        assert_eq!(v.warnings().is_empty(), fallback.allowed_cpus().len() > 1);
    }

    #[test]
    fn cores_must_exist_be_allowed_and_not_repeat() {
        let t = machine(&[0, 1]);
        assert_eq!(
            error(&with(|c| c.cores = cores(&[0], &[7])), &t),
            "cores.data: core 7 does not exist on this machine; its cores are 0, 1"
        );
        assert_eq!(
            error(&with(|c| c.cores.control = Some(vec![9])), &t),
            "cores.control: core 9 does not exist on this machine; its cores are 0, 1"
        );
        let masked = Topology::from_parts(t.nodes().to_vec(), t.cpus().to_vec(), vec![1]).unwrap();
        assert_eq!(
            error(&with(|c| c.cores = cores(&[1], &[0])), &masked),
            "cores.data: core 0 is outside this process' cpu mask; use one of 1, or widen the \
             mask (taskset, the cgroup's cpuset.cpus)"
        );
        assert_eq!(
            error(&with(|c| c.cores = cores(&[0], &[1, 1])), &two_nodes()),
            "cores.data lists core 1 twice; list each core once"
        );
        assert_eq!(
            error(&with(|c| c.cores = cores(&[0], &[])), &t),
            "cores.data is empty; list at least one core for the data plane (one shard per \
             core), or leave it out to use the default"
        );
        assert!(
            error(&with(|c| c.cores = cores(&[], &[1])), &t).starts_with("cores.control is empty")
        );
    }

    #[test]
    fn control_and_data_share_a_core_only_on_a_one_cpu_machine() {
        assert_eq!(
            error(&with(|c| c.cores = cores(&[0], &[0, 1])), &machine(&[0, 1])),
            "core 0 is both a control and a data core; give the data plane cores of its own \
             (sharing is allowed only on a 1-cpu machine)"
        );
        let v = with(|c| c.cores = cores(&[0], &[0]))
            .validate(&machine(&[0]))
            .unwrap();
        assert_eq!(v.warnings().len(), 1);
    }

    #[test]
    fn the_feed_file_must_open_and_be_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("day.itch");
        let msg = error(
            &with(|c| c.feed = FeedSpec::File(missing.clone())),
            &machine(&[0, 1]),
        );
        assert!(
            msg.starts_with(&format!(
                "feed file {} cannot be opened: ",
                missing.display()
            )),
            "{msg}"
        );
        assert!(msg.contains("No such file"), "{msg}");
        assert!(msg.ends_with("check the path and its permissions"), "{msg}");
        assert_eq!(
            error(
                &with(|c| c.feed = FeedSpec::File(dir.path().to_path_buf())),
                &machine(&[0, 1])
            ),
            format!(
                "feed file {} is not a regular file; give the path of an ITCH 5.0 BinaryFILE",
                dir.path().display()
            )
        );
    }

    #[test]
    fn file_pacing_is_one_way_or_none() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let feed = FeedSpec::File(f.path().to_path_buf());
        let t = machine(&[0, 1]);
        for speed in [-1.0, f64::NAN, f64::INFINITY] {
            let c = with(|c| {
                c.feed = feed.clone();
                c.file.timestamps_speed = speed;
            });
            assert!(
                matches!(c.validate(&t), Err(ConfigError::FileSpeed(_))),
                "{speed}"
            );
        }
        assert_eq!(
            error(
                &with(|c| {
                    c.feed = feed.clone();
                    c.file.rate = 1000;
                    c.file.timestamps_speed = 2.0;
                }),
                &t
            ),
            "file.rate (1000) and file.timestamps_speed (2) are both set; set one of them to 0 \
             (rate paces by messages per second, timestamps_speed by the file's own timestamps)"
        );
        // each alone is fine, and the file section is not checked for the simulator
        for (rate, speed) in [(1000, 0.0), (0, 2.0), (0, 0.0)] {
            with(|c| {
                c.feed = feed.clone();
                c.file.rate = rate;
                c.file.timestamps_speed = speed;
            })
            .validate(&t)
            .unwrap();
        }
        with(|c| c.file.timestamps_speed = -1.0)
            .validate(&t)
            .unwrap();
    }

    #[test]
    fn a_unicast_udp_feed_takes_one_data_core() {
        let t = two_nodes();
        let unicast = "udp:127.0.0.1:26400".parse::<FeedSpec>().unwrap();
        assert_eq!(
            error(
                &with(|c| {
                    c.feed = unicast.clone();
                    c.cores = cores(&[0], &[1, 2]);
                }),
                &t
            ),
            "udp feed 127.0.0.1:26400 is unicast but 2 data cores would each bind it; use a \
             multicast group, or one data core"
        );
        with(|c| c.feed = unicast.clone()).validate(&t).unwrap();
        with(|c| {
            c.feed = "udp:239.1.1.1:26400".parse::<FeedSpec>().unwrap();
            c.cores = cores(&[0], &[1, 2]);
        })
        .validate(&t)
        .unwrap();
        assert_eq!(
            error(
                &with(|c| c.feed = "udp:[ff02::1]:26400".parse::<FeedSpec>().unwrap()),
                &t
            ),
            "udp feed [ff02::1]:26400 is an IPv6 multicast group, which is not supported; use an \
             IPv4 group"
        );
    }

    #[test]
    fn simulator_values_are_in_range() {
        let t = machine(&[0, 1]);
        assert_eq!(
            error(&with(|c| c.simulator.rate = 0), &t),
            "simulator.rate is 0; give messages per second above 0, e.g. 100000"
        );
        for bad in [0, 65536, 100_000] {
            assert_eq!(
                error(&with(|c| c.simulator.symbols = bad), &t),
                format!("simulator.symbols {bad} is out of range; use 1 to 65535")
            );
        }
        assert_eq!(
            error(
                &with(|c| {
                    c.simulator.symbols = 100;
                    c.books.max_symbols = 100;
                }),
                &t
            ),
            "simulator.symbols 100 needs books.max_symbols of at least 101 (locates 1..=100) but \
             it is 100; raise books.max_symbols or lower simulator.symbols"
        );
        with(|c| {
            c.simulator.symbols = 65535;
            c.books.max_symbols = 65536;
        })
        .validate(&t)
        .unwrap();
    }

    #[test]
    fn published_symbols_are_itch_symbols() {
        let t = machine(&[0, 1]);
        assert_eq!(
            error(
                &with(|c| c.symbols = vec!["AAPL".into(), "TOOLONGNAME".into()]),
                &t
            ),
            "symbol \"TOOLONGNAME\" is not a valid ITCH symbol; use 1 to 8 printable ASCII \
             characters without spaces"
        );
        assert!(
            with(|c| c.symbols = vec!["A B".into()])
                .validate(&t)
                .is_err()
        );
        let v = with(|c| c.symbols = vec!["AAPL".into(), "MSFT".into(), "AAPL".into()])
            .validate(&t)
            .unwrap();
        assert_eq!(
            v.shard_configs(&t)[0].publish,
            Publish::Only(vec![
                Symbol::from_itch(*b"AAPL    "),
                Symbol::from_itch(*b"MSFT    ")
            ])
        );
    }

    #[test]
    fn books_and_the_event_ring_fit_together() {
        let t = machine(&[0, 1]);
        assert_eq!(
            error(
                &with(|c| {
                    c.books.max_levels_per_side = 100;
                    c.event_ring = 201;
                }),
                &t
            ),
            "event_ring 201 cannot hold one full book's resync (100 levels per side); raise it \
             to at least 2*books.max_levels_per_side+2 = 202"
        );
        with(|c| {
            c.books.max_levels_per_side = 100;
            c.event_ring = 202;
        })
        .validate(&t)
        .unwrap();
        assert_eq!(
            error(&with(|c| c.event_ring = MAX_EVENT_RING + 1), &t),
            format!(
                "event_ring {} is above 16777216 events (1 GiB per shard); lower it",
                MAX_EVENT_RING + 1
            )
        );
        assert_eq!(
            error(&with(|c| c.books.max_symbols = 70_000), &t),
            "books.max_symbols 70000 is above 65536 (stock locates are 16-bit); lower it"
        );
        assert_eq!(
            error(&with(|c| c.books.max_orders = 0), &t),
            "books.max_orders is 0; give the live orders a shard may hold, e.g. 2097152"
        );
        for edit in [
            (|c: &mut Config| c.books.max_levels = 0) as fn(&mut Config),
            |c| c.books.max_levels_per_side = 0,
            |c| c.books.max_symbols = 0,
        ] {
            assert!(matches!(
                with(edit).validate(&t),
                Err(ConfigError::Zero { .. })
            ));
        }
    }

    #[test]
    fn subscriber_limits_are_positive() {
        let t = machine(&[0, 1]);
        assert_eq!(
            error(&with(|c| c.subscribers.max_depth = 0), &t),
            "subscribers.max_depth is 0; no subscriber could see a level; use 1 or more, e.g. 1000"
        );
        assert_eq!(
            error(&with(|c| c.subscribers.heartbeat_ms = 0), &t),
            "subscribers.heartbeat_ms is 0; give an interval in milliseconds, e.g. 1000"
        );
        assert_eq!(
            error(&with(|c| c.subscribers.queue = 0), &t),
            "subscribers.queue is 0; give the updates queued per subscriber, e.g. 8192"
        );
        assert!(
            error(&with(|c| c.subscribers.max_resyncs = 0), &t)
                .starts_with("subscribers.max_resyncs is 0; ")
        );
        assert!(
            error(&with(|c| c.subscribers.stall_ms = 0), &t)
                .starts_with("subscribers.stall_ms is 0; ")
        );
        assert!(
            error(&with(|c| c.subscribers.blocked_ms = 0), &t)
                .starts_with("subscribers.blocked_ms is 0; ")
        );
        assert!(
            error(&with(|c| c.subscribers.blocked_ms = 6_000), &t)
                .starts_with("subscribers.blocked_ms (6000) is longer than subscribers.stall_ms")
        );
        assert!(
            error(&with(|c| c.subscribers.resync_window_ms = 0), &t)
                .starts_with("subscribers.resync_window_ms is 0; ")
        );
        assert!(
            error(&with(|c| c.udp.sequence_window = 0), &t)
                .starts_with("udp.sequence_window is 0; ")
        );
    }

    #[test]
    fn a_zero_limit_is_refused_by_name() {
        let msg = error(
            &with(|c| c.limits.max_streams_per_connection = 0),
            &machine(&[0, 1]),
        );
        assert!(
            msg.starts_with("limits.max_streams_per_connection is 0"),
            "{msg}"
        );
    }

    #[test]
    fn plaintext_off_loopback_needs_insecure_and_is_then_a_warning() {
        let t = machine(&[0, 1]);
        let everywhere: std::net::SocketAddr = "0.0.0.0:50051".parse().unwrap();
        let msg = error(&with(|c| c.grpc_addr = everywhere), &t);
        assert!(
            msg.starts_with("grpc_addr would listen on 0.0.0.0:50051 in plaintext")
                && msg.contains("--tls-cert and --tls-key")
                && msg.contains("--insecure"),
            "{msg}"
        );
        let msg = error(&with(|c| c.metrics_addr = "[::]:9464".parse().unwrap()), &t);
        assert!(
            msg.starts_with("metrics_addr (metrics are always plain HTTP)"),
            "{msg}"
        );
        let v = with(|c| {
            c.grpc_addr = everywhere;
            c.insecure = true;
        })
        .validate(&t)
        .unwrap();
        let warning = v.exposure_warning().unwrap();
        assert!(warning.contains("grpc_addr 0.0.0.0:50051"), "{warning}");
        assert!(!warning.contains("metrics_addr"), "{warning}");
        // loopback, v4 or v6, needs nothing
        for addr in ["127.0.0.1:7", "127.0.0.2:7", "[::1]:7"] {
            let v = with(|c| c.grpc_addr = addr.parse().unwrap())
                .validate(&t)
                .unwrap();
            assert!(v.exposure_warning().is_none() && v.tls().is_none());
        }
    }

    #[test]
    fn with_tls_grpc_may_listen_anywhere_and_metrics_still_may_not() {
        use crate::tls::test_certs::Ca;
        let t = machine(&[0, 1]);
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = Ca::new("ca")
            .issue(&["localhost"])
            .write(dir.path(), "server");
        let tls = crate::tls::TlsConfig {
            cert: Some(cert),
            key: Some(key),
            client_ca: None,
        };
        let v = with(|c| {
            c.grpc_addr = "0.0.0.0:50051".parse().unwrap();
            c.tls = tls.clone();
        })
        .validate(&t)
        .unwrap();
        assert!(v.tls().is_some() && v.exposure_warning().is_none());
        assert!(v.server_options("t".into()).unwrap().tls.is_some());
        let msg = error(
            &with(|c| {
                c.metrics_addr = "0.0.0.0:9464".parse().unwrap();
                c.tls = tls;
            }),
            &t,
        );
        assert!(msg.starts_with("metrics_addr"), "{msg}");
    }

    #[test]
    fn the_two_servers_need_two_addresses() {
        let t = machine(&[0, 1]);
        assert_eq!(
            error(&with(|c| c.metrics_addr = c.grpc_addr), &t),
            "grpc_addr and metrics_addr are both 127.0.0.1:50051; give them different ports"
        );
        // port 0 picks a free port for each
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        with(|c| {
            c.grpc_addr = any;
            c.metrics_addr = any;
        })
        .validate(&t)
        .unwrap();
    }

    fn token_file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
        f
    }

    #[test]
    fn entitlements_name_one_client_each_with_valid_symbols() {
        use crate::config::EntitlementConfig;
        let t = machine(&[0, 1]);
        let good = token_file("desk\n", 0o600);
        let open = token_file("desk\n", 0o644);
        let entry = |name: &str, token: Option<&Path>, cert: Option<&str>, symbols: &[&str]| {
            EntitlementConfig {
                name: name.into(),
                token_file: token.map(Path::to_path_buf),
                certificate: cert.map(str::to_owned),
                symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
            }
        };
        let v = with(|c| {
            c.auth.entitlements = vec![entry("a", Some(good.path()), None, &["AAPL", " MSFT "])]
        })
        .validate(&t)
        .unwrap();
        let access = &v.book_access;
        assert!(access.closed() && access.known_tokens().count() == 1);
        assert_eq!(access.tokens[0].0.expose(), "desk");
        let grant = &access.tokens[0].1;
        grant.allows("MSFT").unwrap();
        assert_eq!(
            grant.allows("NVDA").unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        for (entries, start) in [
            (
                vec![
                    entry("a", Some(good.path()), None, &[]),
                    entry("a", Some(good.path()), None, &[]),
                ],
                "two entitlements are named \"a\"",
            ),
            (
                vec![entry("a", None, None, &[])],
                "entitlement \"a\" needs exactly one",
            ),
            (
                vec![entry("a", Some(good.path()), Some("CN=a"), &[])],
                "entitlement \"a\" needs exactly one",
            ),
            (
                vec![entry("a", None, Some("CN=a"), &[])],
                "entitlement \"a\" names a client certificate",
            ),
            (
                vec![entry("a", Some(good.path()), None, &["TOO-LONG-NAME"])],
                "symbol",
            ),
            (
                vec![entry("a", Some(open.path()), None, &[])],
                "entitlement \"a\" token file",
            ),
        ] {
            let msg = error(&with(|c| c.auth.entitlements = entries), &t);
            assert!(msg.contains(start), "{msg}");
        }
    }

    #[test]
    fn the_admin_token_comes_from_one_place_and_a_private_file() {
        let t = machine(&[0, 1]);
        let good = token_file("  tok-123\n", 0o600);
        let v = with(|c| c.auth.admin_token_file = Some(good.path().to_path_buf()))
            .validate(&t)
            .unwrap();
        assert_eq!(v.admin_token().map(Secret::expose), Some("tok-123"));

        let v = with(|c| c.auth.admin_token = Some(Secret::new("direct")))
            .validate(&t)
            .unwrap();
        assert_eq!(v.admin_token().map(Secret::expose), Some("direct"));

        assert_eq!(
            error(
                &with(|c| {
                    c.auth.admin_token = Some(Secret::new("direct"));
                    c.auth.admin_token_file = Some(good.path().to_path_buf());
                }),
                &t
            ),
            "auth.admin_token (or PINBOOK_ADMIN_TOKEN) and auth.admin_token_file are both set in \
             the same place; keep one of them"
        );

        #[cfg(unix)]
        {
            let open = token_file("tok", 0o644);
            assert_eq!(
                error(
                    &with(|c| c.auth.admin_token_file = Some(open.path().to_path_buf())),
                    &t
                ),
                format!(
                    "admin token file {0} is open to group or others (mode 644); run chmod 600 {0}",
                    open.path().display()
                )
            );
        }

        let empty = token_file("\n", 0o600);
        assert_eq!(
            error(
                &with(|c| c.auth.admin_token_file = Some(empty.path().to_path_buf())),
                &t
            ),
            "the admin token file is empty; set a non-empty token or leave it unset"
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("token");
        let msg = error(
            &with(|c| c.auth.admin_token_file = Some(missing.clone())),
            &t,
        );
        assert!(
            msg.starts_with(&format!(
                "admin token file {} cannot be read: ",
                missing.display()
            )),
            "{msg}"
        );
        assert_eq!(
            error(&with(|c| c.auth.admin_token = Some(Secret::new(""))), &t),
            "auth.admin_token is empty; set a non-empty token or leave it unset"
        );
        assert_eq!(
            error(&with(|c| c.auth.book_token = Some(Secret::new(""))), &t),
            "auth.book_token is empty; set a non-empty token or leave it unset"
        );
    }

    #[test]
    fn server_options_carry_the_validated_settings() {
        let t = machine(&[0, 1]);
        let v = with(|c| {
            c.subscribers.max_depth = 77;
            c.subscribers.stall_ms = 4_000;
            c.shutdown_ms = 1_500;
        })
        .validate(&t)
        .unwrap();
        let o = v.server_options("secret".into()).unwrap();
        assert_eq!(o.admin_token.expose(), "secret");
        assert_eq!(o.max_depth, 77);
        assert_eq!(o.policy.stall, Duration::from_secs(4));
        assert_eq!(o.policy.blocked, v.blocked());
        assert_eq!(o.heartbeat, v.heartbeat());
        assert_eq!(o.shutdown_timeout, Duration::from_millis(1_500));
        assert_eq!(o.control_cores, v.control_cores());
        assert_eq!(o.grpc_addr, v.config().grpc_addr);
        assert!(
            o.config_toml.contains("max_depth = 77"),
            "{}",
            o.config_toml
        );
    }

    #[test]
    fn shard_configs_on_two_numa_nodes() {
        let t = two_nodes();
        let books = BooksConfig {
            max_orders: 1000,
            max_levels: 500,
            max_levels_per_side: 50,
            max_symbols: 128,
        };
        let config = with(|c| {
            c.cores = cores(&[0], &[3, 1]);
            c.books = books.into();
            c.event_ring = 1024;
        });
        let v = config.validate(&t).unwrap();
        let shards = v.shard_configs(&t);
        assert_eq!(shards.len(), 2);
        for (i, (shard, core)) in shards.iter().zip([3, 1]).enumerate() {
            assert_eq!(shard.id as usize, i);
            assert_eq!(shard.shards, 2);
            assert_eq!(shard.core, Some(core));
            assert_eq!(shard.books, books);
            assert_eq!(shard.event_ring, 1024);
            assert_eq!(shard.batch, 64);
            assert_eq!(shard.publish, Publish::All);
            assert!(shard.on_start.is_none());
            // cpu 2 is left for the OS, so the data cores are shared with nothing: spin
            assert_eq!(shard.idle, IdleStrategy::Spin);
            assert!(shard.event_ring >= shard.min_event_ring());
        }

        // every cpu taken: nothing is left for the OS, so auto backs off
        let v = with(|c| c.cores = cores(&[0], &[1, 2, 3]))
            .validate(&t)
            .unwrap();
        for shard in v.shard_configs(&t) {
            assert_eq!(shard.idle, IdleStrategy::DEFAULT_BACKOFF);
        }
        // a named strategy is used as it is
        let v = with(|c| {
            c.cores = cores(&[0], &[1, 2, 3]);
            c.idle = IdleSpec::Fixed(IdleStrategy::Spin);
        })
        .validate(&t)
        .unwrap();
        assert!(
            v.shard_configs(&t)
                .iter()
                .all(|s| s.idle == IdleStrategy::Spin)
        );
    }

    #[test]
    fn shard_configs_on_the_fallback_topology() {
        let t = Topology::fallback();
        let v = Config::default().validate(&t).unwrap();
        let shards = v.shard_configs(&t);
        assert_eq!(shards.len(), 1);
        let shard = &shards[0];
        assert_eq!((shard.id, shard.shards), (0, 1));
        let allowed = t.allowed_cpus();
        let expected = if allowed.len() > 1 {
            allowed[1]
        } else {
            allowed[0]
        };
        assert_eq!(shard.core, Some(expected));
        assert_eq!(shard.books, BooksConfig::default());
        assert_eq!(
            shard.idle,
            default_idle(&t, Some(expected), v.data_cores(), v.control_cores())
        );
    }

    #[test]
    fn feed_sources_one_per_shard() {
        let t = two_nodes();
        let v = with(|c| {
            c.cores = cores(&[0], &[1, 2]);
            c.simulator.seed = 42;
        })
        .validate(&t)
        .unwrap();
        let sources = v.feed_sources().unwrap();
        assert_eq!(sources.len(), 2);
        for s in &sources {
            assert_eq!(
                s.describe(),
                "simulator of 50 symbols (seed 42) at 100000 msg/s"
            );
        }

        let f = tempfile::NamedTempFile::new().unwrap();
        let v = with(|c| {
            c.feed = FeedSpec::File(f.path().to_path_buf());
            c.file.timestamps_speed = 2.0;
            c.file.looping = true;
            c.cores = cores(&[0], &[1, 2, 3]);
        })
        .validate(&t)
        .unwrap();
        let sources = v.feed_sources().unwrap();
        assert_eq!(sources.len(), 3);
        assert_eq!(
            sources[0].describe(),
            format!(
                "file {} at its own timestamps x2, looping",
                f.path().display()
            )
        );
        drop(f);
        assert!(matches!(
            v.feed_sources(),
            Err(ConfigError::FileSource { .. })
        ));

        let v = with(|c| c.feed = "udp:127.0.0.1:0".parse::<FeedSpec>().unwrap())
            .validate(&t)
            .unwrap();
        let sources = v.feed_sources().unwrap();
        assert_eq!(sources.len(), 1);
        assert!(
            sources[0].describe().contains("127.0.0.1"),
            "{}",
            sources[0].describe()
        );

        let v = with(|c| c.feed = "udp:127.0.0.1:0@127.0.0.2".parse::<FeedSpec>().unwrap())
            .validate(&t)
            .unwrap();
        let sources = v.feed_sources().unwrap();
        assert!(
            sources[0].describe().ends_with("from 127.0.0.2 only"),
            "the source filter reaches the socket: {}",
            sources[0].describe()
        );
    }

    #[test]
    fn a_udp_address_that_cannot_be_bound_is_reported() {
        let t = machine(&[0, 1]);
        // TEST-NET-1 is never a local address
        let v = with(|c| c.feed = "udp:192.0.2.1:26400".parse::<FeedSpec>().unwrap())
            .validate(&t)
            .unwrap();
        let msg = match v.feed_sources() {
            Ok(_) => panic!("bound a non-local address"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("192.0.2.1:26400"), "{msg}");
    }
}
