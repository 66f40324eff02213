//! [`Secret`]: a token that is never printed.

use std::fmt;

/// A token (admin or book). Its [`Debug`](fmt::Debug) prints `<hidden>`, it has no
/// `Display`, and it cannot be serialized: the configuration's TOML never holds it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `token`.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, to compare with what a client sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(token: &str) -> Self {
        Self::new(token)
    }
}

impl From<String> for Secret {
    fn from(token: String) -> Self {
        Self::new(token)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "<hidden>");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(<hidden>)");
        assert_eq!(secret.expose(), "hunter2");
    }
}
