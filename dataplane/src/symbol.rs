//! [`Symbol`]: an instrument's name as ITCH carries it, 8 bytes of ASCII padded with spaces on
//! the right. Every name the service takes (flags, config, gRPC requests, the CLI) becomes one
//! through [`Symbol::parse`], the only place names are checked and normalised, so a symbol is
//! compared and looked up exactly as the feed spells it.
//!
//! ```
//! use dataplane::symbol::Symbol;
//!
//! let aapl: Symbol = " AAPL ".parse().unwrap();
//! assert_eq!(aapl.as_str(), "AAPL");
//! assert_eq!(aapl.to_string(), "AAPL");
//! assert_eq!(aapl.to_itch(), *b"AAPL    ");
//! assert!("TOOLONGNAME".parse::<Symbol>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

/// An instrument's name: 1 to 8 printable ASCII characters, space-padded to 8 bytes as in
/// ITCH. One read from the feed ([`Symbol::from_itch`]) holds whatever bytes the feed sent.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Symbol([u8; 8]);

/// A name that is not a symbol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a symbol (1 to 8 printable ASCII characters)")]
pub struct NotASymbol(pub String);

impl Symbol {
    /// `name` trimmed and padded, or `None` if it is empty, longer than 8 bytes or not
    /// printable ASCII once trimmed.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        if name.is_empty() || name.len() > 8 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let mut bytes = [b' '; 8];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(Self(bytes))
    }

    /// The 8 bytes of an ITCH alpha field as they came (not checked).
    pub const fn from_itch(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    /// The 8 space-padded bytes, as ITCH writes them.
    pub const fn to_itch(self) -> [u8; 8] {
        self.0
    }

    /// The name, padding trimmed; empty if the bytes are not ASCII (a feed may send anything).
    pub fn as_str(&self) -> &str {
        crate::feed::itch::alpha_str(&self.0).unwrap_or("")
    }
}

impl FromStr for Symbol {
    type Err = NotASymbol;

    fn from_str(name: &str) -> Result<Self, NotASymbol> {
        Self::parse(name).ok_or_else(|| NotASymbol(name.to_owned()))
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) => write!(f, "Symbol({s:?})"),
            Err(_) => write!(f, "Symbol({:?})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_ones_are_refused() {
        let b = Symbol::parse("AAPL").unwrap();
        assert_eq!(&b.to_itch(), b"AAPL    ");
        assert_eq!(b.as_str(), "AAPL");
        assert_eq!(
            Symbol::parse(" MSFT "),
            Some(Symbol::from_itch(*b"MSFT    "))
        );
        assert_eq!(Symbol::parse("ABCDEFGH").unwrap().as_str(), "ABCDEFGH");
        for bad in ["", "TOOLONGNAME", "A B", "ÄPFEL", "\t"] {
            assert_eq!(Symbol::parse(bad), None, "{bad:?}");
            let err = bad.parse::<Symbol>().unwrap_err();
            assert!(err.to_string().contains("is not a symbol"), "{err}");
        }
    }

    #[test]
    fn feed_bytes_are_kept_as_sent_and_shown_safely() {
        let odd = Symbol::from_itch([0xff, b'A', b' ', b' ', b' ', b' ', b' ', b' ']);
        assert_eq!(odd.as_str(), "");
        assert!(format!("{odd:?}").starts_with("Symbol(["));
        assert_eq!(
            format!("{:?}", Symbol::parse("X").unwrap()),
            "Symbol(\"X       \")"
        );
    }
}
