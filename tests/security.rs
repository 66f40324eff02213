//! Safe exposure, end to end: `pinbook serve` over TLS and mutual TLS with the CLI clients
//! connecting as users would (and failing with a line that names the fix when they cannot),
//! plaintext refused off loopback unless `--insecure`, and a generated admin token that is
//! never printed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{BIN, Server, TOKEN, text};
use controlplane::tls::test_certs::{Ca, write};

/// A CA and a server certificate for `localhost` and 127.0.0.1, as files.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Pki {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            ca: Ca::new("pinbook test CA"),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The CA's certificate as a file; returns its path.
    fn ca_file(&self, name: &str) -> String {
        write(&self.dir.path().join(name), &self.ca.pem());
        self.path(name)
    }

    /// A certificate of this CA for `names`, as `STEM.pem` and `STEM.key`.
    fn issue(&self, names: &[&str], stem: &str) -> (String, String) {
        let (cert, key) = self.ca.issue(names).write(self.dir.path(), stem);
        (display(&cert), display(&key))
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The server over TLS with `extra` arguments.
fn tls_server(pki: &Pki, extra: &[&str]) -> Server {
    let (cert, key) = pki.issue(&["localhost", "127.0.0.1"], "server");
    let mut args = vec!["--sim-rate", "20000", "--sim-symbols", "20"];
    let files = ["--tls-cert".to_owned(), cert, "--tls-key".to_owned(), key];
    args.extend(files.iter().map(String::as_str));
    args.extend_from_slice(extra);
    Server::start_with(&args)
}

/// `pinbook book AAPL` with `args`; its stderr when it fails, `None` when it succeeds.
fn book_error(server: &Server, args: &[&str]) -> Option<String> {
    let mut all = vec!["book", "AAPL"];
    all.extend_from_slice(args);
    let out = server.run(&all);
    (!out.status.success()).then(|| text(&out.stderr))
}

#[test]
fn tls_serves_clients_that_trust_its_ca_and_tells_the_others_why_not() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]);
    let ca = pki.ca_file("ca.pem");
    server.wait_serving(&[("PINBOOK_TLS_CA", &ca)]);
    assert!(
        server
            .log()
            .contains("pinbook: TLS with the certificate of CN=localhost"),
        "{}",
        server.log()
    );
    // the flag works as the variable does, for admin commands too
    assert_eq!(book_error(&server, &["--tls-ca", &ca]), None);
    let out = server.admin(&["symbols", "list", "--tls-ca", &ca]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let plaintext = book_error(&server, &[]).expect("plaintext to a TLS server fails");
    assert!(plaintext.contains("--tls-ca"), "{plaintext}");

    let other = Pki::new();
    let stranger = other.ca_file("other-ca.pem");
    let untrusted = book_error(&server, &["--tls-ca", &stranger]).expect("an untrusted server");
    assert!(
        untrusted.contains("not signed by the CA given with --tls-ca"),
        "{untrusted}"
    );

    let wrong_name = book_error(
        &server,
        &["--tls-ca", &ca, "--tls-server-name", "books.example"],
    )
    .expect("a certificate for another name");
    assert!(
        wrong_name.contains("does not hold the name"),
        "{wrong_name}"
    );
}

#[test]
fn mutual_tls_takes_only_clients_with_a_certificate_of_the_client_ca() {
    let pki = Pki::new();
    let clients = Pki::new();
    let client_ca = clients.ca_file("clients-ca.pem");
    let server = tls_server(&pki, &["--tls-client-ca", &client_ca]);
    let ca = pki.ca_file("ca.pem");
    let (cert, key) = clients.issue(&["desk-1"], "desk");
    let with_cert = [
        ("PINBOOK_TLS_CA", ca.as_str()),
        ("PINBOOK_CLIENT_CERT", cert.as_str()),
        ("PINBOOK_CLIENT_KEY", key.as_str()),
    ];
    server.wait_serving(&with_cert);
    assert!(
        server.log().contains("client certificates required"),
        "{}",
        server.log()
    );
    assert_eq!(
        book_error(
            &server,
            &["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key]
        ),
        None
    );

    let without = book_error(&server, &["--tls-ca", &ca]).expect("no client certificate");
    assert!(
        without.contains("--tls-cert and --tls-key") || without.contains("client certificate"),
        "{without}"
    );

    // a certificate the server's CA signed, but not the client CA
    let (other_cert, other_key) = pki.issue(&["desk-2"], "stranger");
    let refused = book_error(
        &server,
        &[
            "--tls-ca",
            &ca,
            "--tls-cert",
            &other_cert,
            "--tls-key",
            &other_key,
        ],
    )
    .expect("a client certificate of another CA");
    // the server's alert may reach the client only as a broken connection
    assert!(
        refused.contains("refused this client's certificate")
            || refused.contains("--tls-cert and --tls-key"),
        "{refused}"
    );
}

/// `pinbook serve ARGS` run to its end (it should refuse to start).
fn serve_refused(args: &[&str]) -> String {
    let state = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(BIN)
        .arg("serve")
        .args(args)
        .env("PINBOOK_ADMIN_TOKEN", TOKEN)
        .env("XDG_STATE_HOME", state.path())
        .env_remove("PINBOOK_INSECURE")
        .env_remove("PINBOOK_TLS_CERT")
        .env_remove("PINBOOK_TLS_KEY")
        .env_remove("PINBOOK_TLS_CLIENT_CA")
        .stdin(Stdio::null())
        .output()
        .expect("run pinbook serve");
    assert!(!out.status.success(), "serve {args:?} started");
    text(&out.stderr)
}

#[test]
fn plaintext_off_loopback_is_refused_unless_insecure_and_then_warned_about() {
    let msg = serve_refused(&["--grpc-addr", "0.0.0.0:0", "--metrics-addr", "127.0.0.1:0"]);
    assert!(
        msg.contains("grpc_addr would listen on 0.0.0.0:0 in plaintext")
            && msg.contains("--insecure"),
        "{msg}"
    );
    let msg = serve_refused(&["--grpc-addr", "127.0.0.1:0", "--metrics-addr", "0.0.0.0:0"]);
    assert!(msg.contains("metrics_addr"), "{msg}");

    let server = Server::start_with(&[
        "--sim-rate",
        "1000",
        "--grpc-addr",
        "0.0.0.0:0",
        "--insecure",
    ]);
    common::eventually("the warning is logged", common::STARTUP, || {
        let log = server.log();
        if log.contains("--insecure: serving plaintext off loopback (grpc_addr 0.0.0.0:") {
            Ok(())
        } else {
            Err(log)
        }
    });
    // a bad certificate stops serve with one line naming the fix
    let pki = Pki::new();
    let (cert, _) = pki.issue(&["localhost"], "server");
    let (_, other_key) = pki.issue(&["localhost"], "other");
    let msg = serve_refused(&[
        "--grpc-addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &other_key,
    ]);
    assert!(msg.contains("does not belong to the certificate"), "{msg}");
}

#[test]
fn a_generated_admin_token_is_written_privately_and_never_printed() {
    let (server, printed) = Server::start_as(&["--sim-rate", "1000"], None);
    let path: PathBuf = server.state().join("pinbook").join("admin-token");
    let token = std::fs::read_to_string(&path).expect("the generated token file");
    let token = token.trim();
    assert_eq!(token.len(), 64);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // admin commands on this machine find it (the harness points them at the same state dir)
    common::eventually("symbols list answers", common::STARTUP, || {
        let out = server.run(&["symbols", "list"]);
        if out.status.success() {
            Ok(())
        } else {
            Err(text(&out.stderr))
        }
    });
    let log = server.log();
    assert!(log.contains(&path.display().to_string()), "{log}");
    assert!(!log.contains(token), "the token is in the log:\n{log}");
    assert!(
        !printed.iter().any(|line| line.contains(token)),
        "{printed:?}"
    );
}

#[test]
fn entitlements_let_each_client_see_only_its_symbols() {
    let pki = Pki::new();
    let clients = Pki::new();
    let client_ca = clients.ca_file("clients-ca.pem");
    let ca = pki.ca_file("ca.pem");
    let token_file = pki.dir.path().join("desk-1.token");
    write(&token_file, "desk-1-secret\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = pki.dir.path().join("pinbook.toml");
    write(
        &config,
        &format!(
            "[[auth.entitlements]]\nname = \"desk-1\"\ntoken_file = {:?}\nsymbols = [\"AAPL\"]\n\n\
             [[auth.entitlements]]\nname = \"desk-2\"\ncertificate = \"CN=desk-2\"\nsymbols = [\"MSFT\", \"NVDA\"]\n",
            token_file.display().to_string()
        ),
    );
    let server = tls_server(
        &pki,
        &["--config", &display(&config), "--tls-client-ca", &client_ca],
    );
    let (desk1_cert, desk1_key) = clients.issue(&["desk-1"], "desk-1");
    let (desk2_cert, desk2_key) = clients.issue(&["desk-2"], "desk-2");
    let as_desk1 = [
        ("PINBOOK_TLS_CA", ca.as_str()),
        ("PINBOOK_CLIENT_CERT", desk1_cert.as_str()),
        ("PINBOOK_CLIENT_KEY", desk1_key.as_str()),
        ("PINBOOK_BOOK_TOKEN", "desk-1-secret"),
    ];
    server.wait_serving(&as_desk1);
    let book = |env: &[(&str, &str)], symbol: &str| {
        let out = server
            .command(&["book", symbol])
            .envs(env.iter().copied())
            .output()
            .expect("run pinbook book");
        (out.status.success(), text(&out.stderr))
    };
    // desk-1 by its token: AAPL only
    let (ok_aapl, _) = book(&as_desk1, "AAPL");
    assert!(ok_aapl);
    let (ok_msft, err) = book(&as_desk1, "MSFT");
    assert!(!ok_msft);
    assert!(
        err.contains("PERMISSION_DENIED")
            && err.contains("not among the symbols of entitlement \"desk-1\""),
        "{err}"
    );
    // desk-2 by its certificate alone: MSFT and NVDA, not AAPL
    let as_desk2 = [
        ("PINBOOK_TLS_CA", ca.as_str()),
        ("PINBOOK_CLIENT_CERT", desk2_cert.as_str()),
        ("PINBOOK_CLIENT_KEY", desk2_key.as_str()),
    ];
    assert!(book(&as_desk2, "MSFT").0);
    let (ok, err) = book(&as_desk2, "AAPL");
    assert!(!ok && err.contains("\"desk-2\""), "{err}");
    // desk-1's certificate without its token: not entitled
    let (ok, err) = book(&as_desk1[..3], "AAPL");
    assert!(!ok && err.contains("UNAUTHENTICATED"), "{err}");
    // a subscription naming one symbol it may not see is refused whole
    let out = server
        .command(&["subscribe", "AAPL", "MSFT", "--count", "1"])
        .envs(as_desk1.iter().copied())
        .output()
        .expect("run pinbook subscribe");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("PERMISSION_DENIED"),
        "{}",
        text(&out.stderr)
    );
}
