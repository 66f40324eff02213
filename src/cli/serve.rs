//! `pinbook serve`: the service. Data plane on its cores, gRPC control plane on the others.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use controlplane::config::{self, ServeArgs};
use controlplane::hub::Policy;
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

/// Runs the service until SIGINT or SIGTERM.
pub fn run(args: &ServeArgs) -> Result<()> {
    let topology = Arc::new(Topology::detect_or_fallback());
    let config = config::load(args)?;
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
            let token =
                controlplane::auth::generate_token().context("cannot generate an admin token")?;
            let path = default_token_path();
            controlplane::auth::write_token_file(&path, &token)
                .with_context(|| format!("cannot write the admin token to {}", path.display()))?;
            eprintln!(
                "pinbook: no admin token configured; generated one (only you can read it): {}\n\
                 pinbook: admin token: {token}",
                path.display()
            );
            token
        }
    };
    let c = validated.config();
    let plane = DataPlane::start(
        Arc::clone(&topology),
        validated.shard_configs(&topology),
        validated.feed_sources()?,
    )
    .context("cannot start the data plane")?;
    let options = ServerOptions {
        grpc_addr: c.grpc_addr,
        max_depth: c.subscribers.max_depth as usize,
        heartbeat: validated.heartbeat(),
        policy: Policy {
            queue: c.subscribers.queue,
            max_resyncs: c.subscribers.max_resyncs as usize,
            window: validated.resync_window(),
            stall: validated.stall(),
        },
        admin_token,
        book_token: validated.book_token().map(|t| t.expose().to_owned()),
        control_cores: validated.control_cores().to_vec(),
        config_toml: c.to_toml()?,
        shutdown_timeout: validated.shutdown(),
    };
    let control = validated.control_cores().to_vec();
    let next = AtomicUsize::new(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(control.len().max(1))
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
    runtime.block_on(serve(options, c.metrics_addr, plane))
}

async fn serve(options: ServerOptions, metrics_addr: SocketAddr, plane: DataPlane) -> Result<()> {
    let handle = controlplane::metrics::install()?;
    let running = server::start(options, plane).await?;
    let (metrics_at, _metrics) = controlplane::metrics::serve(metrics_addr, handle).await?;
    let _sampler =
        controlplane::metrics::spawn_sampler(Arc::clone(&running.shared), Duration::from_secs(1));
    let addr = running.local_addr;
    println!("pinbook: metrics on http://{metrics_at}/metrics");
    println!(
        "pinbook: gRPC on {addr} (health, reflection, pinbook.v1.BookService, pinbook.v1.AdminService)"
    );
    println!("pinbook: try  pinbook subscribe AAPL --addr {addr}");
    println!("pinbook:      grpcurl -plaintext {addr} list");
    wait_for_signal().await;
    eprintln!("pinbook: shutting down");
    // bounded by the configured shutdown_ms
    running.shutdown().await;
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM ({e}); Ctrl-C still stops pinbook");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
