//! Bearer-token checks for the admin service (and, when configured, the book service).
//!
//! `authorization: Bearer <token>`: missing → UNAUTHENTICATED, wrong → PERMISSION_DENIED. The
//! comparison takes the same time whatever the token's bytes (subtle's constant-time eq).

use subtle::ConstantTimeEq;
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
