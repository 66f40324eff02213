//! What the gRPC client commands (`subscribe`, `book`, `symbols`, `stats`) share: the server
//! address and admin-token flags, the runtime, the connection, and gRPC errors as text.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use controlplane::config::ADMIN_TOKEN_ENV;
use controlplane::metrics::code_name;

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

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
    /// TLS: the CA certificate (PEM) that signed the server's certificate; given, the
    /// connection is TLS.
    #[arg(long, value_name = "PEM", env = "PINBOOK_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Mutual TLS: this client's certificate (PEM), for a server started with
    /// --tls-client-ca.
    #[arg(
        long,
        value_name = "PEM",
        env = "PINBOOK_CLIENT_CERT",
        global = true,
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Mutual TLS: this client's private key (PEM).
    #[arg(
        long,
        value_name = "PEM",
        env = "PINBOOK_CLIENT_KEY",
        global = true,
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// TLS: the name the server's certificate must hold [default: the host of --addr].
    #[arg(
        long,
        value_name = "NAME",
        env = "PINBOOK_TLS_SERVER_NAME",
        global = true
    )]
    pub tls_server_name: Option<String>,
}

impl ServerArgs {
    /// The TLS configuration these flags ask for, `None` for plaintext.
    fn tls(&self) -> Result<Option<ClientTlsConfig>> {
        let Some(ca) = &self.tls_ca else {
            if self.tls_cert.is_some() {
                bail!(
                    "--tls-cert needs --tls-ca: give the CA that signed the server's certificate \
                     (PINBOOK_TLS_CA)"
                );
            }
            return Ok(None);
        };
        let read = |path: &PathBuf, flag: &str| {
            std::fs::read(path).map_err(|e| {
                anyhow!(
                    "{flag} {} cannot be read ({e}); check the path",
                    path.display()
                )
            })
        };
        let mut tls =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca, "--tls-ca")?));
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            tls = tls.identity(Identity::from_pem(
                read(cert, "--tls-cert")?,
                read(key, "--tls-key")?,
            ));
        }
        if let Some(name) = &self.tls_server_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(Some(tls))
    }
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

/// Connects to the server `server.addr` (`HOST:PORT`, or a URL), over TLS when `--tls-ca` is
/// given, giving up after [`CONNECT_TIMEOUT`].
pub async fn connect(server: &ServerArgs) -> Result<Channel> {
    let addr = &server.addr;
    let tls = server.tls()?;
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else if tls.is_some() {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    };
    if uri.starts_with("https://") && tls.is_none() {
        bail!(
            "--addr {addr} asks for TLS: give the CA that signed the server's certificate with \
             --tls-ca (PINBOOK_TLS_CA)"
        );
    }
    let mut endpoint = Endpoint::from_shared(uri).map_err(|e| {
        anyhow!("--addr {addr:?} is not an address ({e}); give HOST:PORT, e.g. 127.0.0.1:50051")
    })?;
    let over_tls = tls.is_some();
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| {
            anyhow!(
                "TLS: {} ; check --tls-ca, --tls-cert and --tls-key",
                transport_cause(&e)
            )
        })?;
    }
    endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .connect()
        .await
        .map_err(|e| connect_error(addr, &transport_cause(&e), over_tls))
}

/// Why a connection failed, with what to do about it.
fn connect_error(addr: &str, cause: &str, over_tls: bool) -> anyhow::Error {
    let hint = tls_hint(cause, Some(addr)).unwrap_or_else(|| {
        if over_tls && (cause.contains("InvalidContentType") || cause.contains("corrupt message")) {
            "the server does not speak TLS; leave out --tls-ca (PINBOOK_TLS_CA)".to_owned()
        } else if over_tls {
            "is `pinbook serve` running, with TLS? (pass its address with --addr or \
             PINBOOK_ADDR; a server that asks for client certificates needs --tls-cert and \
             --tls-key signed by its client CA)"
                .to_owned()
        } else {
            "is `pinbook serve` running? (pass its address with --addr or PINBOOK_ADDR; a \
             server with TLS needs --tls-ca)"
                .to_owned()
        }
    });
    anyhow!("cannot connect to {addr}: {hint} ({cause})")
}

/// What to do about a TLS failure whose innermost cause (rustls's words) is `cause`, if it is
/// one; `addr` is the address connected to, when known.
fn tls_hint(cause: &str, addr: Option<&str>) -> Option<String> {
    let hint = if cause.contains("UnknownIssuer") || cause.contains("BadSignature") {
        "the server's certificate is not signed by the CA given with --tls-ca; give the CA that \
         issued it"
            .to_owned()
    } else if cause.contains("NotValidForName") || cause.contains("not valid for name") {
        format!(
            "the server's certificate does not hold the name in --addr{}; connect by a name it \
             holds, or give that name with --tls-server-name",
            addr.map(|a| format!(" {a}")).unwrap_or_default()
        )
    } else if cause.contains("Expired") || cause.contains("certificate expired") {
        "the server's certificate has expired; its operator must renew it".to_owned()
    } else if cause.contains("NotValidYet") || cause.contains("not valid yet") {
        "the server's certificate is not valid yet; check this machine's clock".to_owned()
    } else if cause.contains("CertificateRequired") || cause.contains("certificate required") {
        "the server requires a client certificate (mutual TLS): give --tls-cert and --tls-key"
            .to_owned()
    } else if cause.contains("UnknownCA")
        || cause.contains("BadCertificate")
        || cause.contains("DecryptError")
    {
        "the server refused this client's certificate: give one signed by the CA the server \
         trusts (its --tls-client-ca)"
            .to_owned()
    } else {
        return None;
    };
    Some(hint)
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

/// `<CODE>: <message>`, e.g. `NOT_FOUND: symbol "NOPE" is not published here`; for a call that
/// failed in the connection under it (a TLS alert, a plaintext client at a TLS server), what
/// to do about it.
pub fn describe_status(status: &tonic::Status) -> String {
    if let Some(source) = std::error::Error::source(status) {
        let mut cause: &dyn std::error::Error = source;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let cause = cause.to_string();
        let hint = tls_hint(&cause, None).unwrap_or_else(|| {
            "the connection failed before an answer: a server with TLS needs --tls-ca (and, \
             with client certificates, --tls-cert and --tls-key); one without TLS, none of them"
                .to_owned()
        });
        return format!("{}: {hint} ({cause})", code_name(status.code()));
    }
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
