//! [`ServeArgs`], the command line of `pinbook serve`, and [`load`], which lays it and the
//! environment over the config file.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;

use super::{ADMIN_TOKEN_ENV, Config, ConfigError, FeedSpec, IdleSpec, Secret};

/// The flags of `pinbook serve`. Each one that sets a value can also be set by the
/// `PINBOOK_*` environment variable named in `--help`; the flag wins. A flag left out (and its
/// variable unset) leaves the config file's value in place.
///
/// The admin token itself has no flag (it would show in `ps`): set it with
/// `PINBOOK_ADMIN_TOKEN`, `auth.admin_token` or a token file.
#[derive(clap::Args, Clone, Debug, Default, PartialEq)]
pub struct ServeArgs {
    /// A TOML config file; every field is optional (see --print-config for all of them).
    #[arg(long, value_name = "FILE", env = "PINBOOK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the gRPC server listens.
    #[arg(long, value_name = "IP:PORT", env = "PINBOOK_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// Where the Prometheus metrics endpoint listens.
    #[arg(long, value_name = "IP:PORT", env = "PINBOOK_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// The feed: sim, file:PATH (ITCH BinaryFILE), dbn:PATH[,PATH…] (Databento DBN MBO files,
    /// played in order as one session) or udp:IP:PORT[@SOURCE_IP[:PORT]] (datagrams from any
    /// other sender than SOURCE are rejected), or two such lines, udp:A,udp:B, arbitrated (each
    /// message taken from whichever line has it first). --file-rate, --file-timestamps and --loop pace
    /// both file kinds.
    #[arg(long, value_name = "FEED", env = "PINBOOK_FEED", value_parser = parse_feed)]
    pub feed: Option<FeedSpec>,
    /// Symbols to publish from the start, comma-separated; an empty list publishes all.
    #[arg(
        long,
        value_name = "SYM,..",
        env = "PINBOOK_SYMBOLS",
        value_delimiter = ','
    )]
    pub symbols: Option<Vec<String>>,
    /// Cores for the control plane, comma-separated.
    #[arg(
        long,
        value_name = "CPU,..",
        env = "PINBOOK_CONTROL_CORES",
        value_delimiter = ','
    )]
    pub control_cores: Option<Vec<usize>>,
    /// Cores for the data plane, comma-separated: one shard per core.
    #[arg(
        long,
        value_name = "CPU,..",
        env = "PINBOOK_DATA_CORES",
        value_delimiter = ','
    )]
    pub data_cores: Option<Vec<usize>>,
    /// The shards' idle strategy: auto, spin, spin-yield or backoff.
    #[arg(long, value_name = "STRATEGY", env = "PINBOOK_IDLE", value_parser = parse_idle)]
    pub idle: Option<IdleSpec>,
    /// Simulator: messages per second.
    #[arg(long, value_name = "MSGS", env = "PINBOOK_SIM_RATE")]
    pub sim_rate: Option<u64>,
    /// Simulator: number of symbols (1 to 65535).
    #[arg(long, value_name = "N", env = "PINBOOK_SIM_SYMBOLS")]
    pub sim_symbols: Option<u32>,
    /// File feeds: messages (DBN: records) per second (0 = as fast as possible).
    #[arg(long, value_name = "MSGS", env = "PINBOOK_FILE_RATE")]
    pub file_rate: Option<u64>,
    /// File feeds: pace by the file's own timestamps (ITCH: its timestamps; DBN: `ts_event`),
    /// this many times faster than recorded (1 = real time, 0 = off); `[file] timestamps_speed`.
    #[arg(long, value_name = "X", env = "PINBOOK_SPEED")]
    pub speed: Option<f64>,
    /// File feed: start over at the end (`--loop`, or `--loop=false` to override the file).
    #[arg(
        long = "loop",
        value_name = "BOOL",
        env = "PINBOOK_LOOP",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub looping: Option<bool>,
    /// UDP feed: how many messages ahead of the next expected one a packet may start and be
    /// believed at once (further ahead, the next packet must confirm it).
    #[arg(long, value_name = "MESSAGES", env = "PINBOOK_UDP_WINDOW")]
    pub udp_window: Option<u64>,
    /// UDP feed: the MoldUDP64 retransmission (request) server to ask for messages every line
    /// lost (`[udp] retransmit`).
    #[arg(long, value_name = "IP:PORT", env = "PINBOOK_RETRANSMIT")]
    pub retransmit: Option<SocketAddr>,
    /// A file holding the admin token; must not be readable by group or others.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// TLS: the server's certificate chain (PEM); with --tls-key, gRPC is served over TLS.
    #[arg(long, value_name = "PEM", env = "PINBOOK_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS: the certificate's private key (PEM).
    #[arg(long, value_name = "PEM", env = "PINBOOK_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: the CA (PEM) that signs client certificates; every client must present one.
    #[arg(long, value_name = "PEM", env = "PINBOOK_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Allow plaintext off loopback: gRPC without TLS, or metrics, on an address other
    /// machines reach (logged as a warning at startup and every hour).
    #[arg(
        long,
        value_name = "BOOL",
        env = "PINBOOK_INSECURE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub insecure: Option<bool>,
    /// Publish every update on NATS, comma-separated servers (`[nats] publish`).
    #[arg(
        long,
        value_name = "nats://HOST:PORT,..",
        env = "PINBOOK_PUBLISH",
        value_delimiter = ','
    )]
    pub publish: Option<Vec<String>>,
    /// The partition this instance publishes on NATS (`[nats] partition`).
    #[arg(long, value_name = "NAME", env = "PINBOOK_PARTITION")]
    pub partition: Option<String>,
    /// Publish only while no other instance of the partition does (`[nats] standby`).
    #[arg(
        long,
        value_name = "BOOL",
        env = "PINBOOK_STANDBY",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub standby: Option<bool>,
    /// This instance's name in its partition (`[nats] instance`; default HOSTNAME-PID).
    #[arg(long, value_name = "NAME", env = "PINBOOK_INSTANCE")]
    pub instance: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

fn parse_feed(s: &str) -> Result<FeedSpec, ConfigError> {
    s.parse()
}

fn parse_idle(s: &str) -> Result<IdleSpec, ConfigError> {
    s.parse()
}

/// The configuration from `args`: the defaults, overlaid by `args.config`'s file, by the
/// environment, then by the flags. See [`load_with`].
///
/// # Errors
/// As [`load_with`].
pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
    load_with(args, |var| std::env::var_os(var))
}

/// [`load`], reading the environment through `env` (tests pass a map; `load` passes
/// `std::env::var_os`).
///
/// clap has already merged each flag with its `PINBOOK_*` variable into `args`; `env` is asked
/// only for what has no flag: [`ADMIN_TOKEN_ENV`]. A token from the environment replaces the
/// file's `admin_token_file`, and `--admin-token-file` replaces a token from the file or the
/// environment, so a higher layer's admin token always wins; both set in the file itself is
/// an error of [`Config::validate`]. An empty string in `--symbols` is dropped, so
/// `--symbols ""` publishes everything.
///
/// # Errors
/// [`ConfigError::ReadFile`] if the file cannot be read, [`ConfigError::Toml`] if it does not
/// parse or has unknown fields or bad values (the message gives the line and column),
/// [`ConfigError::EnvNotUnicode`] for an admin token that is not UTF-8.
pub fn load_with(
    args: &ServeArgs,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Config, ConfigError> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                path: path.clone(),
                source,
            })?;
            toml::from_str(&text).map_err(|e| ConfigError::Toml {
                path: path.clone(),
                message: e.to_string(),
            })?
        }
        None => Config::default(),
    };

    if let Some(token) = env(ADMIN_TOKEN_ENV) {
        let token = token
            .into_string()
            .map_err(|_| ConfigError::EnvNotUnicode {
                var: ADMIN_TOKEN_ENV,
            })?;
        // surrounding whitespace ignored, as in a token file
        config.auth.admin_token = Some(Secret::new(token.trim().to_owned()));
        config.auth.admin_token_file = None;
    }

    let a = args.clone();
    if let Some(v) = a.grpc_addr {
        config.grpc_addr = v;
    }
    if let Some(v) = a.metrics_addr {
        config.metrics_addr = v;
    }
    if let Some(v) = a.insecure {
        config.insecure = v;
    }
    if let Some(v) = &a.tls_cert {
        config.tls.cert = Some(v.clone());
    }
    if let Some(v) = &a.tls_key {
        config.tls.key = Some(v.clone());
    }
    if let Some(v) = &a.tls_client_ca {
        config.tls.client_ca = Some(v.clone());
    }
    if let Some(v) = a.feed {
        config.feed = v;
    }
    if let Some(v) = a.symbols {
        config.symbols = v.into_iter().filter(|s| !s.is_empty()).collect();
    }
    if let Some(v) = a.control_cores {
        config.cores.control = Some(v);
    }
    if let Some(v) = a.data_cores {
        config.cores.data = Some(v);
    }
    if let Some(v) = a.idle {
        config.idle = v;
    }
    if let Some(v) = a.sim_rate {
        config.simulator.rate = v;
    }
    if let Some(v) = a.sim_symbols {
        config.simulator.symbols = v;
    }
    if let Some(v) = a.speed {
        config.file.timestamps_speed = v;
    }
    if let Some(v) = a.file_rate {
        config.file.rate = v;
    }
    if let Some(v) = a.looping {
        config.file.looping = v;
    }
    if let Some(v) = a.udp_window {
        config.udp.sequence_window = v;
    }
    if let Some(v) = a.retransmit {
        config.udp.retransmit = Some(v);
    }
    if let Some(v) = a.publish {
        config.nats.publish = v.into_iter().filter(|s| !s.is_empty()).collect();
    }
    if let Some(v) = a.partition {
        config.nats.partition = v;
    }
    if let Some(v) = a.standby {
        config.nats.standby = v;
    }
    if let Some(v) = a.instance {
        config.nats.instance = v;
    }
    if let Some(v) = a.admin_token_file {
        config.auth.admin_token_file = Some(v);
        config.auth.admin_token = None;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;
    use std::process::Command;

    use clap::Parser;

    use super::*;
    use crate::config::CoresConfig;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(flags: &[&str]) -> ServeArgs {
        let argv = std::iter::once("pinbook-serve").chain(flags.iter().copied());
        Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{e}"))
            .serve
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    const FILE: &str = r#"
grpc_addr = "127.0.0.1:1000"
metrics_addr = "127.0.0.1:1001"
feed = "udp:239.1.1.1:26400@10.0.0.5:4000"
symbols = ["AAPL"]
[simulator]
rate = 5
symbols = 6
[file]
loop = true
[udp]
sequence_window = 500
[cores]
data = [1]
"#;

    #[test]
    fn no_file_and_no_flags_is_the_defaults() {
        assert_eq!(load_with(&parse(&[]), no_env).unwrap(), Config::default());
    }

    #[test]
    fn flags_override_the_file_and_absent_flags_do_not() {
        let f = file(FILE);
        let path = f.path().to_str().unwrap();
        let from_file = load_with(&parse(&["--config", path]), no_env).unwrap();
        assert_eq!(from_file.grpc_addr.port(), 1000);
        assert_eq!(from_file.simulator.rate, 5);
        assert!(from_file.file.looping);
        assert_eq!(from_file.udp.sequence_window, 500);
        assert_eq!(
            from_file.feed.to_string(),
            "udp:239.1.1.1:26400@10.0.0.5:4000",
            "the TOML form takes the source too"
        );

        let c = load_with(
            &parse(&[
                "--config",
                path,
                "--grpc-addr",
                "127.0.0.1:2000",
                "--feed",
                "sim",
                "--symbols",
                "MSFT,IBM",
                "--control-cores",
                "0",
                "--data-cores",
                "2,3",
                "--idle",
                "spin",
                "--sim-rate",
                "9",
                "--sim-symbols",
                "10",
                "--file-rate",
                "11",
                "--loop=false",
                "--udp-window",
                "70",
            ]),
            no_env,
        )
        .unwrap();
        assert_eq!(c.grpc_addr.port(), 2000);
        assert_eq!(c.udp.sequence_window, 70);
        assert_eq!(
            c.metrics_addr.port(),
            1001,
            "absent flag kept the file's value"
        );
        assert_eq!(c.feed, FeedSpec::Simulator);
        assert_eq!(c.symbols, ["MSFT", "IBM"]);
        assert_eq!(
            c.cores,
            CoresConfig {
                control: Some(vec![0]),
                data: Some(vec![2, 3])
            }
        );
        assert_eq!(c.idle.to_string(), "spin");
        assert_eq!((c.simulator.rate, c.simulator.symbols), (9, 10));
        assert_eq!(c.simulator.seed, 1, "default kept");
        assert_eq!(c.file.rate, 11);
        assert!(!c.file.looping);

        let c = load_with(
            &parse(&["--config", path, "--loop", "--symbols", ""]),
            no_env,
        )
        .unwrap();
        assert!(c.file.looping);
        assert!(c.symbols.is_empty(), "--symbols \"\" publishes everything");
    }

    #[test]
    fn bad_flag_values_are_refused_by_clap_with_our_message() {
        let err = Cli::try_parse_from(["x", "--feed", "tcp:1"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("use sim, file:PATH (ITCH), dbn:PATH[,PATH…] (Databento MBO) or udp:ADDR"),
            "{err}"
        );
        let err = Cli::try_parse_from(["x", "--idle", "nap"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("use one of auto, spin"), "{err}");
        assert!(Cli::try_parse_from(["x", "--data-cores", "1,x"]).is_err());
        assert!(Cli::try_parse_from(["x", "--grpc-addr", "nowhere"]).is_err());
        // the admin token has no flag
        assert!(Cli::try_parse_from(["x", "--admin-token", "t"]).is_err());
    }

    #[test]
    fn the_environment_token_beats_the_file_and_the_token_file_flag_beats_both() {
        let f = file("[auth]\nadmin_token_file = \"/from/file\"\n");
        let path = f.path().to_str().unwrap();
        let env: HashMap<&str, &str> = [(ADMIN_TOKEN_ENV, "from-env")].into();
        let lookup = |k: &str| env.get(k).map(OsString::from);
        let c = load_with(&parse(&["--config", path]), lookup).unwrap();
        assert_eq!(
            c.auth.admin_token.as_ref().map(Secret::expose),
            Some("from-env")
        );
        assert_eq!(c.auth.admin_token_file, None);

        let c = load_with(
            &parse(&["--config", path, "--admin-token-file", "/from/flag"]),
            lookup,
        )
        .unwrap();
        assert_eq!(c.auth.admin_token, None);
        assert_eq!(c.auth.admin_token_file, Some("/from/flag".into()));
    }

    #[cfg(unix)]
    #[test]
    fn an_admin_token_that_is_not_utf8_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let lookup = |_: &str| Some(OsString::from_vec(vec![0xff, 0xfe]));
        let err = load_with(&parse(&[]), lookup).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable PINBOOK_ADMIN_TOKEN is not valid UTF-8; set it to UTF-8 text \
             or unset it"
        );
    }

    #[test]
    fn an_unreadable_file_names_the_path_and_the_os_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = load_with(&parse(&["--config", missing.to_str().unwrap()]), no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("cannot read config file {}: ", missing.display())),
            "{err}"
        );
        assert!(err.contains("No such file or directory"), "{err}");
        assert!(
            err.ends_with("check the path given to --config (or PINBOOK_CONFIG)"),
            "{err}"
        );
    }

    #[test]
    fn a_toml_error_gives_the_path_line_and_column() {
        let f = file("grpc_addr = \"127.0.0.1:1\"\n[simulator]\nrate = \"fast\"\n");
        let err = load_with(&parse(&["--config", f.path().to_str().unwrap()]), no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("config file {}: ", f.path().display())),
            "{err}"
        );
        assert!(err.contains("line 3, column 8"), "{err}");
        let f = file("[simulator]\nrate = 1\nspeed = 2\n");
        let err = load_with(&parse(&["--config", f.path().to_str().unwrap()]), no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `speed`"), "{err}");
    }

    #[test]
    fn print_config_output_loads_back_identically() {
        let f = file(FILE);
        let args = parse(&[
            "--config",
            f.path().to_str().unwrap(),
            "--data-cores",
            "0,1",
        ]);
        let config = load_with(&args, no_env).unwrap();
        let printed = file(&config.to_toml().unwrap());
        let again = load_with(
            &parse(&["--config", printed.path().to_str().unwrap()]),
            no_env,
        )
        .unwrap();
        assert_eq!(again, config);
    }

    /// Name of the variable that tells [`environment_child`] it was started by
    /// [`the_environment_sits_between_the_file_and_the_flags`].
    const CHILD: &str = "PINBOOK_CONFIG_TEST_CHILD";

    /// clap reads the real environment, and this crate cannot set variables (`set_var` is
    /// unsafe), so this runs [`environment_child`] in a child test process with them set.
    #[test]
    fn the_environment_sits_between_the_file_and_the_flags() {
        let f = file(FILE);
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "config::args::tests::environment_child",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("PINBOOK_CONFIG", f.path())
            .env("PINBOOK_GRPC_ADDR", "127.0.0.1:3000")
            .env("PINBOOK_METRICS_ADDR", "127.0.0.1:3001")
            .env("PINBOOK_DATA_CORES", "0,1")
            .env("PINBOOK_SYMBOLS", "IBM,MSFT")
            .env("PINBOOK_IDLE", "backoff")
            .env("PINBOOK_LOOP", "false")
            .env(ADMIN_TOKEN_ENV, "env-token")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "the child test did not run:\n{stdout}"
        );
    }

    #[test]
    #[ignore = "run by the_environment_sits_between_the_file_and_the_flags with its environment"]
    fn environment_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        // the file comes from PINBOOK_CONFIG; one flag beats its variable
        let args = parse(&["--metrics-addr", "127.0.0.1:4001"]);
        let c = load(&args).unwrap();
        assert_eq!(c.grpc_addr.port(), 3000, "environment beats the file");
        assert_eq!(c.metrics_addr.port(), 4001, "flag beats the environment");
        assert_eq!(c.simulator.rate, 5, "the file beats the defaults");
        assert_eq!(c.cores.data, Some(vec![0, 1]));
        assert_eq!(c.symbols, ["IBM", "MSFT"]);
        assert_eq!(c.idle.to_string(), "backoff");
        assert!(
            !c.file.looping,
            "PINBOOK_LOOP=false beats the file's loop = true"
        );
        assert_eq!(
            c.auth.admin_token.as_ref().map(Secret::expose),
            Some("env-token")
        );
    }
}
