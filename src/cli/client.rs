//! What the gRPC client commands (`subscribe`, `book`, `symbols`, `stats`) share: the server
//! address and admin-token flags, the runtime, the connection, and gRPC errors as text.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use controlplane::config::ADMIN_TOKEN_ENV;
use controlplane::metrics::code_name;

use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

/// How long a command waits for the TCP (and HTTP/2) connection to the server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a client command finds the server.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// The server's gRPC address, as `pinbook serve` prints it.
    #[arg(
        long,
        value_name = "HOST:PORT",
        env = "PINBOOK_ADDR",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    pub addr: String,
}

/// Where an admin command finds the server and its admin token.
#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// The server's address.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The file holding the admin token, read when PINBOOK_ADMIN_TOKEN is not set (`pinbook
    /// serve` writes a generated token there) [default: $XDG_STATE_HOME/pinbook/admin-token].
    #[arg(long, value_name = "PATH", global = true)]
    pub token_file: Option<PathBuf>,
}

/// A current-thread runtime for one client command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the client runtime")
}

/// Connects to the server at `addr` (`HOST:PORT`, or a URL), giving up after
/// [`CONNECT_TIMEOUT`].
pub async fn connect(addr: &str) -> Result<Channel> {
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|e| {
        anyhow!("--addr {addr:?} is not an address ({e}); give HOST:PORT, e.g. 127.0.0.1:50051")
    })?;
    endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot connect to {addr}: is `pinbook serve` running? (pass its address with \
                 --addr or PINBOOK_ADDR) ({})",
                transport_cause(&e)
            )
        })
}

/// The innermost cause of a transport error: the OS's words ("Connection refused").
fn transport_cause(e: &tonic::transport::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The admin token: [`ADMIN_TOKEN_ENV`] when set, else the contents of `--token-file`;
/// surrounding whitespace is ignored, as the server ignores it.
pub fn admin_token(args: &AdminArgs) -> Result<String> {
    if let Some(token) = std::env::var_os(ADMIN_TOKEN_ENV) {
        let token = token.into_string().map_err(|_| {
            anyhow!("{ADMIN_TOKEN_ENV} is not valid UTF-8; set it to the server's admin token")
        })?;
        let token = token.trim();
        if token.is_empty() {
            bail!("{ADMIN_TOKEN_ENV} is empty; set it to the server's admin token or unset it");
        }
        return Ok(token.to_owned());
    }
    let path = args
        .token_file
        .clone()
        .unwrap_or_else(super::serve::default_token_path);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow!(
            "no admin token: {ADMIN_TOKEN_ENV} is not set and {} cannot be read ({e}); set \
             {ADMIN_TOKEN_ENV}, or pass --token-file with the file `pinbook serve` wrote",
            path.display()
        )
    })?;
    let token = text.trim();
    if token.is_empty() {
        bail!(
            "the admin token file {} is empty; set {ADMIN_TOKEN_ENV} or point --token-file \
             at the file `pinbook serve` wrote",
            path.display()
        );
    }
    Ok(token.to_owned())
}

/// `message` as a book-service request: with `authorization: Bearer $PINBOOK_BOOK_TOKEN` when
/// that variable is set (for servers configured with `auth.book_token`), plain otherwise.
pub fn book_request<T>(message: T) -> Result<tonic::Request<T>> {
    match std::env::var("PINBOOK_BOOK_TOKEN") {
        Ok(token) if !token.is_empty() => authorized(message, &token),
        _ => Ok(tonic::Request::new(message)),
    }
}

/// `request` with the metadata `authorization: Bearer <token>`.
pub fn authorized<T>(message: T, token: &str) -> Result<tonic::Request<T>> {
    let value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
        anyhow!("the admin token holds characters that cannot go in gRPC metadata; check it")
    })?;
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

/// A gRPC status as the error the command ends with: `<CODE>: <message>`.
pub fn status_error(status: &tonic::Status) -> anyhow::Error {
    anyhow!("{}", describe_status(status))
}

/// `<CODE>: <message>`, e.g. `NOT_FOUND: symbol "NOPE" is not published here`.
pub fn describe_status(status: &tonic::Status) -> String {
    let message = status.message();
    if message.is_empty() {
        code_name(status.code()).to_owned()
    } else {
        format!("{}: {message}", code_name(status.code()))
    }
}

/// A symbol argument checked and trimmed as the server does (1 to 8 printable ASCII
/// characters), so the client asks for, and checks updates of, the name the server uses.
pub fn parse_symbol(text: &str) -> std::result::Result<String, String> {
    use dataplane::runtime::event::{symbol_bytes, symbol_str};
    symbol_bytes(text)
        .map(|bytes| symbol_str(&bytes).to_owned())
        .ok_or_else(|| format!("{text:?} is not a symbol (1 to 8 printable ASCII characters)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_code_then_message() {
        let status = tonic::Status::not_found("symbol \"NOPE\" is not published here");
        assert_eq!(
            describe_status(&status),
            "NOT_FOUND: symbol \"NOPE\" is not published here"
        );
        assert_eq!(
            describe_status(&tonic::Status::unavailable("")),
            "UNAVAILABLE"
        );
    }

    #[test]
    fn the_token_goes_out_as_a_bearer() {
        let request = authorized((), "abc").unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer abc"
        );
        assert!(authorized((), "a\nb").is_err());
    }
}
