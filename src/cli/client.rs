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

/// The HTTP/2 stream window a client command offers the server.
///
/// h2 (0.4.16 and later) closes a connection with GOAWAY ENHANCE_YOUR_CALM once the DATA
/// frames of under 256 bytes it holds unread cost more than its budget, half the connection
/// window (each is charged 256 − its length); tonic reports that as `RESOURCE_EXHAUSTED: h2
/// protocol error`. A subscription's deltas travel one per frame of 60–100 bytes, so a client
/// that stops reading (stdout to a pipe nobody drains) would hold a whole stream window of
/// them: with hyper's defaults (2 MiB stream, 5 MiB connection) that is about 3.5 MiB of
/// charges against 2.5 MiB. With 256 KiB against a budget of 2 MiB, even 40-byte frames stay
/// under it, and the server, not the client's h2, deals with the slow reader (a
/// SLOW_CONSUMER resync, or a close that says why).
pub const STREAM_WINDOW: u32 = 256 << 10;

/// The HTTP/2 connection window a client command offers: see [`STREAM_WINDOW`].
pub const CONNECTION_WINDOW: u32 = 4 << 20;

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

/// A runtime for a command that blocks on its output inside `block_on` (`subscribe` writing
/// to a slow pipe): the connection's tasks run on a worker thread of their own, so a blocked
/// write does not stop the HTTP/2 connection (its pings, its window updates, the server's
/// status) — the command is a slow reader, not a dead peer.
pub fn streaming_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
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
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
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
    dataplane::symbol::Symbol::parse(text)
        .map(|symbol| symbol.to_string())
        // clap quotes the value itself, once: saying it again doubles a long paste
        .ok_or_else(|| "it is not a symbol (1 to 8 printable ASCII characters)".to_owned())
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
