//! Who may call: bearer tokens for the admin service, and for the book service the book token
//! or the entitlements of `[[auth.entitlements]]` (a token or a client certificate, each with
//! the symbols it may see).
//!
//! `authorization: Bearer <token>`: missing → UNAUTHENTICATED, wrong → PERMISSION_DENIED. The
//! comparison takes the same time whatever the token's bytes (subtle's constant-time eq), and a
//! token is compared with every configured one, so the time does not say which came close.

use subtle::ConstantTimeEq;

use crate::config::Secret;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// A tonic interceptor requiring `token`, or letting everything through when `None`.
#[derive(Clone, Debug)]
pub struct BearerAuth {
    token: Option<std::sync::Arc<str>>,
    what: &'static str,
}

impl BearerAuth {
    /// Requires `token` for the calls of `what` ("admin", "book").
    pub fn new(token: Option<String>, what: &'static str) -> Self {
        Self {
            token: token.map(Into::into),
            what,
        }
    }

    /// Checks the metadata of one request.
    ///
    /// # Errors
    /// UNAUTHENTICATED without a bearer token, PERMISSION_DENIED with a wrong one.
    pub fn check(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let Some(expected) = &self.token else {
            return Ok(());
        };
        let Some(value) = metadata.get("authorization") else {
            return Err(Status::unauthenticated(format!(
                "{} calls need the metadata `authorization: Bearer <token>`",
                self.what
            )));
        };
        let given = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("the authorization metadata must be `Bearer <token>`")
            })?;
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "wrong {} token",
                self.what
            )))
        }
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        // a refusal is counted by the server's `CountRequests` layer, as every call is
        self.check(request.metadata())?;
        Ok(request)
    }
}

/// What one book client may see: `symbols`, or every symbol when `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The entitlement's name, for messages and logs.
    pub name: String,
    /// The symbols it may subscribe to and look up (trimmed names); `None`: all.
    pub symbols: Option<std::collections::HashSet<String>>,
}

impl Grant {
    /// PERMISSION_DENIED unless `symbol` is granted.
    ///
    /// # Errors
    /// The status naming the symbol and the entitlement.
    pub fn allows(&self, symbol: &str) -> Result<(), Status> {
        match &self.symbols {
            Some(symbols) if !symbols.contains(symbol) => Err(Status::permission_denied(format!(
                "symbol {symbol:?} is not among the symbols of entitlement {:?}; ask the \
                 operator to add it to [[auth.entitlements]]",
                self.name
            ))),
            _ => Ok(()),
        }
    }
}

/// How book calls are let in.
#[derive(Clone, Debug, Default)]
pub struct BookAccess {
    /// `[auth] book_token`: every symbol.
    pub token: Option<Secret>,
    /// Entitlements by token.
    pub tokens: Vec<(Secret, Grant)>,
    /// Entitlements by client certificate subject (mutual TLS).
    pub certificates: Vec<(String, Grant)>,
}

impl BookAccess {
    /// Whether book calls need a token or an entitled certificate.
    pub fn closed(&self) -> bool {
        self.token.is_some() || !self.tokens.is_empty() || !self.certificates.is_empty()
    }

    /// Every token that lets a book call in.
    pub fn known_tokens(&self) -> impl Iterator<Item = &Secret> {
        self.token.iter().chain(self.tokens.iter().map(|(t, _)| t))
    }
}

/// The book service's interceptor: lets a call in with the [`Grant`] it has (in the request's
/// extensions), or refuses it.
#[derive(Clone, Debug)]
pub struct BookAuth {
    access: std::sync::Arc<BookAccess>,
}

impl BookAuth {
    /// Checks calls against `access`.
    pub fn new(access: BookAccess) -> Self {
        Self {
            access: std::sync::Arc::new(access),
        }
    }

    /// The grant of a call with these metadata and, under mutual TLS, this certificate subject.
    ///
    /// # Errors
    /// UNAUTHENTICATED without a token (and no entitled certificate), PERMISSION_DENIED with a
    /// wrong one.
    pub fn grant(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        subject: Option<&str>,
    ) -> Result<Grant, Status> {
        let a = &self.access;
        let all = || Grant {
            name: "book_token".into(),
            symbols: None,
        };
        if !a.closed() {
            return Ok(all());
        }
        if let Some(subject) = subject
            && let Some((_, grant)) = a.certificates.iter().find(|(s, _)| s == subject)
        {
            return Ok(grant.clone());
        }
        let Some(value) = metadata.get("authorization") else {
            return Err(Status::unauthenticated(
                "book calls need the metadata `authorization: Bearer <token>` (or an entitled \
                 client certificate)",
            ));
        };
        let given = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("the authorization metadata must be `Bearer <token>`")
            })?;
        // every token is compared, whatever matched before
        let mut found: Option<Grant> = None;
        if let Some(token) = &a.token
            && bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
        {
            found = Some(all());
        }
        for (token, grant) in &a.tokens {
            if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) && found.is_none() {
                found = Some(grant.clone());
            }
        }
        found.ok_or_else(|| Status::permission_denied("wrong book token"))
    }
}

impl Interceptor for BookAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let subject = crate::limits::certificate_subject(request.extensions());
        let grant = self.grant(request.metadata(), subject.as_deref())?;
        request.extensions_mut().insert(grant);
        Ok(request)
    }
}

/// A fresh random token: 32 bytes from the OS's CSPRNG (`/dev/urandom`) as 64 hex digits.
///
/// # Errors
/// `/dev/urandom` cannot be read.
pub fn generate_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The token a [`write_token_file`] left at `path`, if it is still there as it was written:
/// a regular file (not a link) open to its owner only, holding one token as
/// [`generate_token`] makes them. Anything else gives `None` (and a new token is made).
pub fn reusable_token(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    (token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())).then(|| token.to_owned())
}

/// Writes `token` to `path` readable by its owner only (mode 0600), creating the directory.
///
/// # Errors
/// The I/O error, with the path.
pub fn write_token_file(path: &std::path::Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{token}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataMap;

    fn with(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn missing_wrong_and_right_tokens() {
        let auth = BearerAuth::new(Some("s3cret".into()), "admin");
        assert_eq!(
            auth.check(&MetadataMap::new()).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            auth.check(&with("Basic abc")).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            auth.check(&with("Bearer nope")).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            auth.check(&with("Bearer s3cre")).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        auth.check(&with("Bearer s3cret")).unwrap();
        BearerAuth::new(None, "book")
            .check(&MetadataMap::new())
            .unwrap();
    }

    #[test]
    fn only_a_private_generated_token_file_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("admin-token");
        assert_eq!(reusable_token(&path), None, "no file");
        let token = generate_token().unwrap();
        write_token_file(&path, &token).unwrap();
        assert_eq!(reusable_token(&path).as_deref(), Some(token.as_str()));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(reusable_token(&path), None, "open to others");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(reusable_token(&link), None, "a link");
        write_token_file(&path, "not a token").unwrap();
        assert_eq!(reusable_token(&path), None, "not one of ours");
    }

    #[test]
    fn generated_tokens_differ_and_files_are_private() {
        let (a, b) = (generate_token().unwrap(), generate_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let path = std::env::temp_dir().join(format!("pinbook-token-test-{}", std::process::id()));
        write_token_file(&path, &a).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), a);
        std::fs::remove_file(&path).unwrap();
    }
}
