//! `pinbook config`: show the running server's configuration, or change a setting while it
//! serves (AdminService GetConfig and SetConfig).

use std::io::Write;

use anyhow::Result;
use controlplane::pb::{self, admin_service_client::AdminServiceClient};

use super::client::{self, AdminArgs};

/// Arguments of `pinbook config`.
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// Where the server and the admin token are.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// A `pinbook config` action.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Print the configuration in force, as TOML (tokens left out).
    Get,
    /// Change one setting while the server runs, e.g. `limits.max_subscribers 5000` or
    /// `idle backoff`; the server checks it as it checks the file and says when it takes
    /// effect. Keys that cannot change live are refused with a word on restarting.
    Set {
        /// The key, as in the TOML file: `section.key` (`subscribers.heartbeat_ms`) or `key`.
        key: String,
        /// The value, as TOML (`5000`, `"spin"`); a bare word is taken as a string.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
}

/// Runs the action and prints its answer.
pub fn run(args: &ConfigArgs) -> Result<()> {
    let token = client::admin_token(&args.admin)?;
    let text = client::runtime()?.block_on(async {
        let channel = client::connect(&args.admin.server).await?;
        let mut admin = AdminServiceClient::new(channel);
        match &args.action {
            Action::Get => admin
                .get_config(client::authorized(pb::GetConfigRequest {}, &token)?)
                .await
                .map(|r| r.into_inner().toml)
                .map_err(|status| client::status_error(&status)),
            Action::Set { key, value } => admin
                .set_config(client::authorized(
                    pb::SetConfigRequest {
                        key: key.clone(),
                        value: value.clone(),
                    },
                    &token,
                )?)
                .await
                .map(|r| {
                    let c = r.into_inner();
                    format!(
                        "{} = {} (was {}); takes effect {}\n",
                        c.key, c.new_value, c.old_value, c.effect
                    )
                })
                .map_err(|status| client::status_error(&status)),
        }
    })?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
