//! `pinbook serve`: the service. Data plane on its cores, gRPC control plane on the others.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use controlplane::config::{self, NatsConfig, ServeArgs};
use controlplane::gateway::GatewayOptions;
use controlplane::nats::publisher::{PublishOptions, Publisher};
use controlplane::server::{self, ServerOptions};
use dataplane::runtime::DataPlane;
use dataplane::topology::Topology;

/// Where `serve` writes a generated admin token, and where the CLI clients look for it.
pub fn default_token_path() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("pinbook").join("admin-token")
}

/// What runs under the server: the data plane on its cores, or (a gateway) the books of NATS
/// partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `pinbook serve`.
    Serve,
    /// `pinbook gateway`.
    Gateway,
}

/// Runs the service until SIGINT or SIGTERM.
pub fn run(args: &ServeArgs) -> Result<()> {
    run_as(args, Role::Serve, |_| {})
}

/// Runs the service, or a gateway, until SIGINT or SIGTERM; `overlay` has the last word on
/// the configuration (a gateway's own flags).
pub fn run_as(
    args: &ServeArgs,
    role: Role,
    overlay: impl FnOnce(&mut config::Config),
) -> Result<()> {
    // First of all, so a signal during startup means "shut down once started", not death.
    let stop = Stop::install()?;
    let topology = Arc::new(Topology::detect_or_fallback());
    let mut config = config::load(args)?;
    overlay(&mut config);
    // a gateway has no data plane to keep clear of: unless told, its threads are not pinned
    // (pinned to the first core by default, they queued behind a serve on the same machine,
    // whose control plane and event thread default to that core too)
    let unpinned = role == Role::Gateway && config.cores.control.is_none();
    let validated = config.validate(&topology)?;
    for warning in validated.warnings() {
        tracing::warn!("{warning}");
    }
    if args.print_config {
        print!("{}", validated.config().to_toml()?);
        return Ok(());
    }
    let admin_token = match validated.admin_token() {
        Some(token) => token.expose().to_owned(),
        None => {
            let path = default_token_path();
            // the token itself is never printed: log collectors keep stdout and stderr
            if let Some(token) = controlplane::auth::reusable_token(&path) {
                // another instance (a gateway beside serve) or an earlier run made it: one
                // token for this machine's admin commands, whichever server they ask
                eprintln!(
                    "pinbook: no admin token configured; using the one generated earlier in {} \
                     (delete it for a new one)",
                    path.display()
                );
                token
            } else {
                let token = controlplane::auth::generate_token()
                    .context("cannot generate an admin token")?;
                controlplane::auth::write_token_file(&path, &token).with_context(|| {
                    format!("cannot write the admin token to {}", path.display())
                })?;
                eprintln!(
                    "pinbook: no admin token configured; generated one in {} (mode 0600); \
                     admin commands on this machine read it from there",
                    path.display()
                );
                token
            }
        }
    };
    let c = validated.config();
    if role == Role::Gateway && c.nats.from.is_empty() {
        anyhow::bail!("a gateway reads its books from NATS: give --from nats://HOST:PORT");
    }
    if role == Role::Serve && !c.nats.from.is_empty() {
        anyhow::bail!("[nats] from is for `pinbook gateway`; `serve` reads its --feed");
    }
    let plane = match role {
        Role::Serve => Some(
            DataPlane::start(
                Arc::clone(&topology),
                validated.shard_configs(&topology),
                validated.feed_sources()?,
            )
            .context("cannot start the data plane")?,
        ),
        // started inside the runtime: the NATS client lives there
        Role::Gateway => None,
    };
    let mut options = validated.server_options(admin_token)?;
    if unpinned {
        options.control_cores.clear();
    }
    let exposure = validated.exposure_warning().map(str::to_owned);
    let scheme = match validated.tls() {
        Some(tls) => {
            eprintln!(
                "pinbook: TLS{} with the certificate of {} (valid until {})",
                if tls.mutual {
                    ", client certificates required,"
                } else {
                    ""
                },
                tls.subject,
                tls.not_after
            );
            Scheme::Tls
        }
        None => Scheme::Plaintext,
    };
    let control = if unpinned {
        Vec::new()
    } else {
        validated.control_cores().to_vec()
    };
    let workers = if control.is_empty() {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    } else {
        control.len()
    };
    let next = AtomicUsize::new(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("pinbook-control")
        .enable_all()
        .on_thread_start(move || {
            if !control.is_empty() {
                let core = control[next.fetch_add(1, Ordering::Relaxed) % control.len()];
                core_affinity::set_for_current(core_affinity::CoreId { id: core });
            }
        })
        .build()
        .context("cannot start the control-plane runtime")?;
    let nats = c.nats.clone();
    runtime.block_on(async move {
        let plane = match plane {
            Some(plane) => plane,
            None => controlplane::gateway::start(&GatewayOptions {
                servers: nats.from.clone(),
                partitions: nats.partitions.clone(),
            })
            .await
            .context("cannot start the gateway")?,
        };
        serve(
            options,
            c.metrics_addr,
            plane,
            stop,
            scheme,
            exposure,
            &nats,
        )
        .await
    })
}

/// How clients reach the gRPC server, for the lines `serve` prints.
#[derive(Clone, Copy)]
enum Scheme {
    Plaintext,
    Tls,
}

/// How often the `--insecure` warning is repeated.
const INSECURE_REMINDER: Duration = Duration::from_secs(3600);

async fn serve(
    options: ServerOptions,
    metrics_addr: SocketAddr,
    plane: DataPlane,
    stop: Stop,
    scheme: Scheme,
    exposure: Option<String>,
    nats: &NatsConfig,
) -> Result<()> {
    if let Some(warning) = exposure {
        // at startup, then every hour, so it is in every rotated log
        tokio::spawn(async move {
            let mut every = tokio::time::interval(INSECURE_REMINDER);
            loop {
                every.tick().await;
                tracing::warn!("{warning}");
            }
        });
    }
    let handle = controlplane::metrics::install()?;
    // the metrics address first: a port in use fails at once, before any server runs
    let (metrics_at, _metrics) = controlplane::metrics::serve(metrics_addr, handle).await?;
    let running = server::start(options, plane).await?;
    let _sampler =
        controlplane::metrics::spawn_sampler(Arc::clone(&running.shared), Duration::from_secs(1));
    let publisher = if nats.publish.is_empty() {
        None
    } else {
        let options = PublishOptions {
            servers: nats.publish.clone(),
            partition: nats.partition.clone(),
            instance: nats.instance(),
            snapshot_every: Duration::from_millis(nats.snapshot_ms),
            heartbeat: running.shared.stream_limits().heartbeat,
            standby: nats.standby,
        };
        println!(
            "pinbook: publishing partition {} on NATS {} as {}{}",
            options.partition,
            options.servers.join(","),
            options.instance,
            if options.standby { " (standby)" } else { "" }
        );
        Some(Publisher::start(Arc::clone(&running.shared), options).await?)
    };
    let addr = running.local_addr;
    println!("pinbook: metrics on http://{metrics_at}/metrics");
    println!(
        "pinbook: gRPC on {addr} (health, reflection, pinbook.v2.BookService, pinbook.v2.AdminService)"
    );
    match scheme {
        Scheme::Plaintext => {
            println!("pinbook: try  pinbook subscribe AAPL --addr {addr}");
            println!("pinbook:      grpcurl -plaintext {addr} list");
        }
        Scheme::Tls => {
            println!("pinbook: try  pinbook subscribe AAPL --addr {addr} --tls-ca CA.pem");
            println!("pinbook:      grpcurl -cacert CA.pem {addr} list");
        }
    }
    stop.wait().await;
    eprintln!("pinbook: shutting down");
    if let Some(publisher) = publisher {
        publisher.stop().await;
    }
    // bounded by the configured shutdown_ms
    running.shutdown().await;
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM, caught from the moment `serve` starts.
///
/// tokio's signal streams exist only inside a running runtime, which `serve` builds after it
/// has read its configuration and started the data plane; a signal before that would kill the
/// process with the default action (exit 143 for SIGTERM). So the handlers are installed with
/// signal-hook at the first line, and a thread turns the first signal into a message the
/// runtime awaits later. A second signal exits at once, for an operator whose shutdown hangs.
struct Stop {
    first: tokio::sync::oneshot::Receiver<i32>,
}

impl Stop {
    fn install() -> Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
            .context("cannot install the SIGINT and SIGTERM handlers")?;
        let (tx, first) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("pinbook-signals".to_owned())
            .spawn(move || {
                let mut tx = Some(tx);
                for signal in signals.forever() {
                    match tx.take() {
                        Some(tx) => {
                            // the runtime may be gone already (startup failed): nothing to tell
                            let _ = tx.send(signal);
                        }
                        None => {
                            eprintln!("pinbook: second signal, exiting without a clean shutdown");
                            std::process::exit(128 + signal);
                        }
                    }
                }
            })
            .context("cannot start the signal thread")?;
        Ok(Self { first })
    }

    /// Returns once the first SIGINT or SIGTERM has arrived (at once if it came during
    /// startup).
    async fn wait(self) {
        // an error means the signal thread ended, which it never does while it can read
        // signals: treat it as a stop too
        let _ = self.first.await;
    }
}
