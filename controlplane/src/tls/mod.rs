//! TLS for the gRPC server: the `[tls]` section, and the certificates read and checked before
//! the server starts, so a bad one stops `serve` with one line that names the fix instead of
//! failing every client's handshake later.
//!
//! Checked at startup: both files exist and hold PEM; the certificate is valid now (not expired,
//! not yet to come); the key belongs to the certificate; the client CA (mutual TLS) holds at
//! least one certificate. With a client CA every client must present a certificate it signed —
//! there is no optional mode, since a service that asks for client certificates means to rely
//! on them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::ConfigError;

#[cfg(any(test, feature = "test-support"))]
pub mod test_certs;

/// How long a client has to finish its TLS handshake before the connection is dropped (a
/// client that opens a TCP connection and says nothing holds no more than this).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `[tls]`: the server's certificate and key (PEM), and the CA its clients' certificates must
/// be signed by for mutual TLS. None set: plaintext, allowed only on loopback (or with
/// `insecure`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM, leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) that sign the clients' certificates; set, every client must
    /// present one (mutual TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether TLS is configured (a certificate given).
    pub fn enabled(&self) -> bool {
        self.cert.is_some() || self.key.is_some()
    }
}

/// The server's TLS, loaded and checked.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// What tonic serves with.
    pub config: ServerTlsConfig,
    /// Whether clients must present a certificate.
    pub mutual: bool,
    /// The certificate's subject, for the startup line.
    pub subject: String,
    /// When the certificate expires (RFC 2822), for the startup line.
    pub not_after: String,
}

impl ServerTls {
    /// Reads and checks `[tls]`; `Ok(None)` when TLS is not configured.
    ///
    /// # Errors
    /// A certificate or key given without the other, a client CA without a certificate, a
    /// file that cannot be read or holds no PEM of its kind, a certificate not valid now, or a
    /// key that does not belong to the certificate.
    pub fn load(tls: &TlsConfig) -> Result<Option<Self>, ConfigError> {
        let (cert_path, key_path) = match (&tls.cert, &tls.key) {
            (None, None) => {
                return match &tls.client_ca {
                    Some(_) => Err(ConfigError::ClientCaWithoutTls),
                    None => Ok(None),
                };
            }
            (Some(_), None) => return Err(ConfigError::TlsHalf { missing: "key" }),
            (None, Some(_)) => return Err(ConfigError::TlsHalf { missing: "cert" }),
            (Some(cert), Some(key)) => (cert, key),
        };
        let cert_pem = read(cert_path, "tls.cert")?;
        let key_pem = read(key_path, "tls.key")?;
        let leaf = first_certificate(&cert_pem, cert_path, "tls.cert")?;
        check_valid_now(&leaf, cert_path)?;
        if !holds_private_key(&key_pem) {
            return Err(ConfigError::TlsPem {
                what: "tls.key",
                path: key_path.clone(),
                expected: "PEM private key (-----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY)",
            });
        }
        let mut config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&cert_pem, &key_pem))
            .timeout(HANDSHAKE_TIMEOUT);
        let mutual = match &tls.client_ca {
            Some(ca_path) => {
                let ca_pem = read(ca_path, "tls.client_ca")?;
                first_certificate(&ca_pem, ca_path, "tls.client_ca")?;
                config = config
                    .client_ca_root(Certificate::from_pem(ca_pem))
                    .client_auth_optional(false);
                true
            }
            None => false,
        };
        // tonic builds rustls's configuration here, which checks that the key signs for the
        // certificate: a mismatch is found now, not at the first handshake
        tonic::transport::Server::builder()
            .tls_config(config.clone())
            .map_err(|e| {
                let reason = error_chain(&e);
                if reason.contains("KeyMismatch") || reason.contains("not be consistent") {
                    ConfigError::TlsKeyMismatch {
                        cert: cert_path.clone(),
                        key: key_path.clone(),
                    }
                } else {
                    ConfigError::TlsRejected { reason }
                }
            })?;
        Ok(Some(Self {
            config,
            mutual,
            subject: leaf.subject,
            not_after: leaf.not_after,
        }))
    }
}

/// What startup needs of a certificate.
struct Leaf {
    subject: String,
    not_before: String,
    not_after: String,
    valid_now: bool,
    expired: bool,
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::TlsFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The first certificate of a PEM bundle.
fn first_certificate(pem: &[u8], path: &Path, what: &'static str) -> Result<Leaf, ConfigError> {
    let not_pem = || ConfigError::TlsPem {
        what,
        path: path.to_path_buf(),
        expected: "PEM certificate (-----BEGIN CERTIFICATE-----)",
    };
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let Ok(block) = block else {
            return Err(not_pem());
        };
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = block.parse_x509().map_err(|_| not_pem())?;
        let validity = cert.validity();
        return Ok(Leaf {
            subject: cert.subject().to_string(),
            not_before: validity
                .not_before
                .to_rfc2822()
                .unwrap_or_else(|_| validity.not_before.to_string()),
            not_after: validity
                .not_after
                .to_rfc2822()
                .unwrap_or_else(|_| validity.not_after.to_string()),
            valid_now: validity.is_valid(),
            expired: validity.time_to_expiration().is_none()
                && x509_parser::time::ASN1Time::now() > validity.not_after,
        });
    }
    Err(not_pem())
}

fn check_valid_now(leaf: &Leaf, path: &Path) -> Result<(), ConfigError> {
    if leaf.valid_now {
        return Ok(());
    }
    Err(if leaf.expired {
        ConfigError::TlsExpired {
            path: path.to_path_buf(),
            not_after: leaf.not_after.clone(),
        }
    } else {
        ConfigError::TlsNotYetValid {
            path: path.to_path_buf(),
            not_before: leaf.not_before.clone(),
        }
    })
}

fn holds_private_key(pem: &[u8]) -> bool {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .any(|block| block.label.ends_with("PRIVATE KEY"))
}

/// An error and its sources, innermost last.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::test_certs::{Ca, write};
    use super::*;

    struct Files {
        dir: tempfile::TempDir,
        ca: Ca,
    }

    impl Files {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
                ca: Ca::new("pinbook test CA"),
            }
        }

        fn config(&self, cert: &Path, key: &Path) -> TlsConfig {
            TlsConfig {
                cert: Some(cert.to_path_buf()),
                key: Some(key.to_path_buf()),
                client_ca: None,
            }
        }

        fn error(&self, tls: &TlsConfig) -> String {
            ServerTls::load(tls).unwrap_err().to_string()
        }
    }

    #[test]
    fn a_valid_certificate_loads_and_a_client_ca_makes_it_mutual() {
        let f = Files::new();
        let (cert, key) = f.ca.issue(&["localhost"]).write(f.dir.path(), "server");
        let mut tls = f.config(&cert, &key);
        let loaded = ServerTls::load(&tls).unwrap().unwrap();
        assert!(!loaded.mutual);
        assert!(loaded.subject.contains("localhost"), "{}", loaded.subject);
        let ca = f.dir.path().join("clients.pem");
        write(&ca, &Ca::new("clients").pem());
        tls.client_ca = Some(ca);
        assert!(ServerTls::load(&tls).unwrap().unwrap().mutual);
        assert!(ServerTls::load(&TlsConfig::default()).unwrap().is_none());
    }

    #[test]
    fn half_a_configuration_says_what_is_missing() {
        let f = Files::new();
        let (cert, key) = f.ca.issue(&["localhost"]).write(f.dir.path(), "server");
        let only_cert = TlsConfig {
            key: None,
            ..f.config(&cert, &key)
        };
        assert!(f.error(&only_cert).contains("tls.key is not set"));
        let only_key = TlsConfig {
            cert: None,
            ..f.config(&cert, &key)
        };
        assert!(f.error(&only_key).contains("tls.cert is not set"));
        let only_ca = TlsConfig {
            client_ca: Some(cert.clone()),
            ..TlsConfig::default()
        };
        assert!(f.error(&only_ca).contains("needs TLS"));
    }

    #[test]
    fn missing_files_and_files_of_the_wrong_kind_name_the_fix() {
        let f = Files::new();
        let (cert, key) = f.ca.issue(&["localhost"]).write(f.dir.path(), "server");
        let missing = f.dir.path().join("nope.pem");
        let msg = f.error(&f.config(&missing, &key));
        assert!(
            msg.starts_with("tls.cert")
                && msg.contains("nope.pem")
                && msg.contains("check the path"),
            "{msg}"
        );
        // the key where the certificate should be, and the other way round
        let msg = f.error(&f.config(&key, &key));
        assert!(msg.contains("holds no PEM certificate"), "{msg}");
        let msg = f.error(&f.config(&cert, &cert));
        assert!(msg.contains("PEM private key"), "{msg}");
        let garbage = f.dir.path().join("garbage.pem");
        write(&garbage, "not pem at all\n");
        let msg = f.error(&f.config(&garbage, &key));
        assert!(msg.contains("PEM certificate"), "{msg}");
    }

    #[test]
    fn an_expired_or_future_certificate_is_refused_with_its_date() {
        let f = Files::new();
        let (cert, key) =
            f.ca.issue_between(&["localhost"], (2001, 1, 1), (2002, 1, 1))
                .write(f.dir.path(), "old");
        let msg = f.error(&f.config(&cert, &key));
        assert!(
            msg.contains("expired on") && msg.contains("2002") && msg.contains("renew"),
            "{msg}"
        );
        let (cert, key) =
            f.ca.issue_between(&["localhost"], (2200, 1, 1), (2201, 1, 1))
                .write(f.dir.path(), "future");
        let msg = f.error(&f.config(&cert, &key));
        assert!(
            msg.contains("not valid before") && msg.contains("2200"),
            "{msg}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let f = Files::new();
        let (cert, _) = f.ca.issue(&["localhost"]).write(f.dir.path(), "one");
        let (_, other_key) = f.ca.issue(&["localhost"]).write(f.dir.path(), "two");
        let msg = f.error(&f.config(&cert, &other_key));
        assert!(msg.contains("does not belong to the certificate"), "{msg}");
    }
}
