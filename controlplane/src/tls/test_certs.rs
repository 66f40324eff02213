//! Certificates for tests (feature `test-support`): a CA, and certificates it signs for names
//! and times of the test's choosing, as PEM — what `openssl req`/`openssl x509` would make,
//! without a process or files the test did not ask for.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// A test helper failing is a broken test, not a case to handle.
fn must<T>(result: Result<T, rcgen::Error>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("rcgen: {e}"),
    }
}

impl Ca {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = must(CertificateParams::new(Vec::<String>::new()));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
        Self {
            issuer: must(CertifiedIssuer::self_signed(
                params,
                must(KeyPair::generate()),
            )),
        }
    }

    /// The CA's certificate.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate valid from yesterday for a year, for `names` (DNS names or IP addresses;
    /// the first is also the common name).
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_between(names, (2020, 1, 1), (2100, 1, 1))
    }

    /// A certificate for `names` valid from `not_before` to `not_after` (year, month, day).
    pub fn issue_between(
        &self,
        names: &[&str],
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> Issued {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = must(CertificateParams::new(names.clone()));
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = must(KeyPair::generate());
        let cert = must(params.signed_by(&key, &self.issuer));
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl Issued {
    /// Writes `STEM.pem` and `STEM.key` into `dir`; returns their paths.
    ///
    /// # Panics
    /// The files cannot be written.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        write(&cert, &self.cert_pem);
        write(&key, &self.key_pem);
        (cert, key)
    }
}

/// Writes `text` to `path`.
///
/// # Panics
/// The file cannot be written.
pub fn write(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        panic!("cannot write {}: {e}", path.display());
    }
}
