//! [`ConfigError`]: everything that can be wrong with a configuration, each saying how to fix it.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a configuration could not be loaded, validated or turned into shards and feeds.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("cannot read config file {}: {source}; check the path given to --config (or PINBOOK_CONFIG)", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The `--config` file is not valid TOML or does not fit the configuration's shape.
    #[error("config file {}: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The toml crate's message, with line and column.
        message: String,
    },
    /// An environment variable holds bytes that are not UTF-8.
    #[error("environment variable {var} is not valid UTF-8; set it to UTF-8 text or unset it")]
    EnvNotUnicode {
        /// The variable.
        var: &'static str,
    },
    /// The effective configuration could not be written as TOML.
    #[error(
        "cannot write the configuration as TOML ({0}); TOML holds only UTF-8 paths: rename \
         the file or link to it from a UTF-8 path"
    )]
    Serialize(String),

    /// A feed that is none of the four kinds.
    #[error(
        "unknown feed {given:?}: use sim, file:PATH (ITCH), dbn:PATH[,PATH…] (Databento MBO) or \
         udp:ADDR[@SOURCE] (e.g. udp:239.1.1.1:26400@10.0.0.5)"
    )]
    UnknownFeed {
        /// What was given.
        given: String,
    },
    /// `file:` with no path.
    #[error("feed \"file:\" names no file; write file:PATH")]
    EmptyFeedPath,
    /// `dbn:` with no path, or an empty one between commas.
    #[error("feed {given:?} names an empty file; write dbn:PATH or dbn:PATH,PATH,… (no spaces)")]
    EmptyDbnPath {
        /// What was given.
        given: String,
    },
    /// `udp:` with an address (or a source after `@`) that does not parse, or two lines that
    /// are one.
    #[error(
        "feed {given:?}: {reason}; write udp:IP:PORT or udp:IP:PORT@SOURCE_IP[:PORT], e.g. \
         udp:239.1.1.1:26400@10.0.0.5 (two lines: udp:A,udp:B, two different addresses)"
    )]
    BadFeedAddress {
        /// What was given.
        given: String,
        /// Why the address does not parse.
        reason: String,
    },
    /// An idle strategy that does not exist.
    #[error("unknown idle strategy {given:?}: use one of auto, spin, spin-yield, backoff")]
    UnknownIdle {
        /// What was given.
        given: String,
    },

    /// A configured core is not one of the machine's cpus.
    #[error("cores.{role}: core {core} does not exist on this machine; its cores are {cores}")]
    NoSuchCore {
        /// `control` or `data`.
        role: &'static str,
        /// The core.
        core: usize,
        /// The cores this process may use.
        cores: String,
    },
    /// A configured core exists but this process may not run on it.
    #[error(
        "cores.{role}: core {core} is outside this process' cpu mask; use one of {cores}, or \
         widen the mask (taskset, the cgroup's cpuset.cpus)"
    )]
    CoreNotAllowed {
        /// `control` or `data`.
        role: &'static str,
        /// The core.
        core: usize,
        /// The cores this process may use.
        cores: String,
    },
    /// A core is listed twice in one list.
    #[error("cores.{role} lists core {core} twice; list each core once")]
    DuplicateCore {
        /// `control` or `data`.
        role: &'static str,
        /// The core.
        core: usize,
    },
    /// A core is both a control and a data core on a machine with more than one.
    #[error(
        "core {core} is both a control and a data core; give the data plane cores of its own \
         (sharing is allowed only on a 1-cpu machine)"
    )]
    CoresOverlap {
        /// The shared core.
        core: usize,
    },
    /// `cores.data` is empty.
    #[error(
        "cores.data is empty; list at least one core for the data plane (one shard per core), \
         or leave it out to use the default"
    )]
    NoDataCore,
    /// `cores.control` is empty.
    #[error(
        "cores.control is empty; list at least one core for the control plane, or leave it out \
         to use the default"
    )]
    NoControlCore,
    /// More data cores than shards can be numbered.
    #[error("{0} data cores is more shards than 65535; list fewer")]
    TooManyShards(usize),

    /// The feed file cannot be opened.
    #[error("feed file {} cannot be opened: {source}; check the path and its permissions", path.display())]
    FeedFile {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The feed file is a directory or another non-file.
    #[error("feed file {} is not a regular file; give the path of an ITCH 5.0 BinaryFILE", path.display())]
    FeedNotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A unicast UDP feed would be bound by several shards.
    #[error(
        "udp feed {addr} is unicast but {shards} data cores would each bind it; use a multicast \
         group, or one data core"
    )]
    UdpUnicastShards {
        /// The feed's address.
        addr: SocketAddr,
        /// The number of data cores.
        shards: usize,
    },
    /// An IPv6 multicast feed, which the UDP source cannot join.
    #[error(
        "udp feed {addr} is an IPv6 multicast group, which is not supported; use an IPv4 group"
    )]
    UdpIpv6Multicast {
        /// The feed's address.
        addr: SocketAddr,
    },
    /// `[udp] hold_messages` above [`super::MAX_HOLD_MESSAGES`].
    #[error(
        "udp.hold_messages = {0} would reserve more than 1 GiB per data core; use at most \
         16777216 (the default 65536 holds about 65 ms of a busy NASDAQ feed)"
    )]
    UdpHoldTooLarge(usize),
    /// A retransmission server for a feed that is not UDP.
    #[error(
        "udp.retransmit (--retransmit {addr}) is set but the feed is {feed}; a request server \
         serves a udp: feed only (remove it, or use --feed udp:…)"
    )]
    RetransmitWithoutUdp {
        /// The request server.
        addr: SocketAddr,
        /// The feed.
        feed: String,
    },
    /// The file source could not be built.
    #[error("feed file {}: {reason}", path.display())]
    FileSource {
        /// The file.
        path: PathBuf,
        /// The source's error.
        reason: String,
    },
    /// The UDP socket could not be bound.
    #[error("{0}")]
    UdpBind(io::Error),

    /// `simulator.rate` is 0.
    #[error("simulator.rate is 0; give messages per second above 0, e.g. 100000")]
    SimulatorRate,
    /// `simulator.symbols` is outside `1..=65535`.
    #[error("simulator.symbols {0} is out of range; use 1 to 65535")]
    SimulatorSymbols(u32),
    /// The simulator has more stock locates than the books accept.
    #[error(
        "simulator.symbols {symbols} needs books.max_symbols of at least {needed} (locates \
         1..={symbols}) but it is {max_symbols}; raise books.max_symbols or lower simulator.symbols"
    )]
    SimulatorSymbolsExceedBooks {
        /// `simulator.symbols`.
        symbols: u32,
        /// `books.max_symbols`.
        max_symbols: usize,
        /// The smallest `books.max_symbols` that fits.
        needed: u64,
    },
    /// `file.timestamps_speed` is negative or not finite.
    #[error(
        "file.timestamps_speed {0} is not a finite number >= 0; use 0 (off) or a speed-up, e.g. \
         1.0 for real time"
    )]
    FileSpeed(f64),
    /// Both ways of pacing a file are set.
    #[error(
        "file.rate ({rate}) and file.timestamps_speed ({speed}) are both set; set one of them to \
         0 (rate paces by messages per second, timestamps_speed by the file's own timestamps)"
    )]
    FilePaceConflict {
        /// `file.rate`.
        rate: u64,
        /// `file.timestamps_speed`.
        speed: f64,
    },

    /// A published symbol that is not an ITCH symbol.
    #[error(
        "symbol {0:?} is not a valid ITCH symbol; use 1 to 8 printable ASCII characters without \
         spaces"
    )]
    BadSymbol(String),
    /// `event_ring` cannot hold one book's resync.
    #[error(
        "event_ring {event_ring} cannot hold one full book's resync ({per_side} levels per side); \
         raise it to at least 2*books.max_levels_per_side+2 = {needed}"
    )]
    EventRingTooSmall {
        /// `event_ring`.
        event_ring: usize,
        /// `books.max_levels_per_side`.
        per_side: u32,
        /// The smallest that works.
        needed: usize,
    },
    /// `event_ring` is absurdly large.
    #[error("event_ring {0} is above {max} events (1 GiB per shard); lower it", max = super::MAX_EVENT_RING)]
    EventRingTooLarge(usize),
    /// `books.max_symbols` is above the number of stock locates.
    #[error("books.max_symbols {0} is above 65536 (stock locates are 16-bit); lower it")]
    TooManySymbols(usize),
    /// A count or duration that must be positive is 0.
    #[error("{field} is 0; {fix}")]
    Zero {
        /// The field, e.g. `books.max_orders`.
        field: &'static str,
        /// What to set instead.
        fix: &'static str,
    },
    /// `subscribers.blocked_ms` is longer than `subscribers.stall_ms`.
    #[error(
        "subscribers.blocked_ms ({blocked_ms}) is longer than subscribers.stall_ms \
         ({stall_ms}), after which a subscriber that takes nothing is closed; make it shorter, \
         e.g. 100"
    )]
    BlockedLongerThanStall {
        /// `subscribers.blocked_ms`.
        blocked_ms: u64,
        /// `subscribers.stall_ms`.
        stall_ms: u64,
    },
    /// The gRPC and metrics servers would bind the same address.
    #[error("grpc_addr and metrics_addr are both {0}; give them different ports")]
    SameAddress(SocketAddr),

    /// The admin token is given twice.
    #[error(
        "auth.admin_token (or PINBOOK_ADMIN_TOKEN) and auth.admin_token_file are both set in the \
         same place; keep one of them"
    )]
    AdminTokenConflict,
    /// A token file (the admin's, or an entitlement's) cannot be read.
    #[error("{what} {} cannot be read: {source}; check the path and its permissions", path.display())]
    AdminTokenFile {
        /// Whose token: "admin token file", "entitlement \"desk\" token file".
        what: String,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A token file may be read or written by other users.
    #[error(
        "{what} {path} is open to group or others (mode {mode:03o}); run chmod 600 {path}",
        path = path.display()
    )]
    AdminTokenFilePermissions {
        /// Whose token, as in [`ConfigError::AdminTokenFile`].
        what: String,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A token is set but empty.
    #[error("{0} is empty; set a non-empty token or leave it unset")]
    EmptyToken(&'static str),

    /// A server would listen off loopback in plaintext.
    #[error(
        "{what} would listen on {addr} in plaintext, reachable from other machines; give \
         --tls-cert and --tls-key (`[tls]`) to encrypt it, bind it to 127.0.0.1, or pass \
         --insecure if this network is trusted"
    )]
    PlaintextExposed {
        /// `grpc_addr` or `metrics_addr (metrics are always plaintext HTTP)`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
    },
    /// A TLS certificate without its key, or a key without its certificate.
    #[error("tls.{missing} is not set; TLS needs both --tls-cert and --tls-key (PEM files)")]
    TlsHalf {
        /// `cert` or `key`.
        missing: &'static str,
    },
    /// A client CA without a server certificate.
    #[error(
        "tls.client_ca (--tls-client-ca) asks for mutual TLS, which needs TLS: give --tls-cert \
         and --tls-key too"
    )]
    ClientCaWithoutTls,
    /// A TLS file cannot be read.
    #[error("{what} {} cannot be read: {source}; check the path and its permissions", path.display())]
    TlsFile {
        /// `tls.cert`, `tls.key` or `tls.client_ca`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A TLS file holds no PEM of its kind.
    #[error("{what} {} holds no {expected}; give a PEM file (convert DER with `openssl x509 -inform der`)", path.display())]
    TlsPem {
        /// `tls.cert`, `tls.key` or `tls.client_ca`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What it should hold.
        expected: &'static str,
    },
    /// The server certificate has expired.
    #[error("the certificate in {} expired on {not_after}; renew it and restart", path.display())]
    TlsExpired {
        /// The file.
        path: PathBuf,
        /// Its end of validity.
        not_after: String,
    },
    /// The server certificate is not valid yet.
    #[error(
        "the certificate in {} is not valid before {not_before}; check this machine's clock, \
         or use a certificate valid now",
        path.display()
    )]
    TlsNotYetValid {
        /// The file.
        path: PathBuf,
        /// Its start of validity.
        not_before: String,
    },
    /// The key is not the certificate's.
    #[error(
        "the key in {} does not belong to the certificate in {}; give the key the certificate \
         was issued for",
        key.display(),
        cert.display()
    )]
    TlsKeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the certificate and key for another reason.
    #[error("TLS cannot use this certificate and key: {reason}; check tls.cert and tls.key")]
    TlsRejected {
        /// rustls's words.
        reason: String,
    },
    /// A limit is 0.
    #[error(
        "limits.{0} is 0, which would refuse every client; give a positive value (see --print-config for the defaults)"
    )]
    ZeroLimit(&'static str),
    /// Conflation bounds that hold no interval.
    #[error(
        "subscribers.min_interval_ms = {min} and max_interval_ms = {max}: conflated streams \
         need 1 <= min_interval_ms <= max_interval_ms (defaults 1 and 60000)"
    )]
    BadConflationBounds {
        /// The lower bound.
        min: u32,
        /// The upper bound.
        max: u32,
    },
    /// An entitlement with no way, or two ways, to recognise its client.
    #[error(
        "entitlement {name:?} needs exactly one of token_file and certificate (the client \
         certificate's subject, e.g. \"CN=desk-1\")"
    )]
    EntitlementIdentity {
        /// Its name.
        name: String,
    },
    /// An entitlement by certificate without mutual TLS.
    #[error(
        "entitlement {name:?} names a client certificate, which only mutual TLS presents: set \
         tls.client_ca (--tls-client-ca) too"
    )]
    EntitlementWithoutMtls {
        /// Its name.
        name: String,
    },
    /// Two entitlements with one name.
    #[error("two entitlements are named {0:?}; give each its own name")]
    DuplicateEntitlement(String),
    /// `[nats]` or `--publish`/`--partition`/`--from` is wrong.
    #[error("{0}")]
    Nats(String),
}
