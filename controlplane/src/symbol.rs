//! Symbol names as the services take them: a [`Symbol`], checked and normalised by the data
//! plane's [`Symbol::parse`], so a name is looked up exactly as the hub stores it (its
//! [`Symbol::as_str`]).

use dataplane::symbol::Symbol;
use tonic::Status;

/// `given` as a [`Symbol`].
///
/// # Errors
/// INVALID_ARGUMENT naming `field` if `given` is empty, longer than 8 bytes or not printable
/// ASCII once trimmed.
pub(crate) fn parse(field: &str, given: &str) -> Result<Symbol, Status> {
    Symbol::parse(given).ok_or_else(|| {
        Status::invalid_argument(format!(
            "{field}: {} is not a symbol (1 to 8 printable ASCII characters)",
            Echo(given)
        ))
    })
}

/// Characters of a rejected input quoted back in an error, at most. A status message travels
/// in an HTTP/2 trailer, which the client bounds (16 KiB by default): echoing a long input
/// whole would turn a clear INVALID_ARGUMENT into the client's RESOURCE_EXHAUSTED.
pub(crate) const ECHO_CHARS: usize = 24;

/// Client input quoted for an error message: escaped as `{:?}` does, cut to [`ECHO_CHARS`]
/// characters with its full length said when longer.
pub(crate) struct Echo<'a>(pub &'a str);

impl std::fmt::Display for Echo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let given = self.0;
        match given.char_indices().nth(ECHO_CHARS) {
            None => write!(f, "{given:?}"),
            Some((cut, _)) => write!(f, "{:?}… ({} bytes)", &given[..cut], given.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_padded() {
        for given in ["AAPL", " AAPL", "AAPL  ", "\tAAPL\n"] {
            let symbol = parse("symbol", given).unwrap();
            assert_eq!(&symbol.to_itch(), b"AAPL    ", "{given:?}");
            assert_eq!(symbol.as_str(), "AAPL", "{given:?}");
        }
        assert_eq!(parse("symbol", "ABCDEFGH").unwrap().as_str(), "ABCDEFGH");
    }

    #[test]
    fn long_input_is_never_echoed_whole() {
        let long = "X".repeat(20_000);
        let status = parse("symbol", &long).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().len() < 200, "{}", status.message());
        assert!(status.message().contains("(20000 bytes)"), "{status:?}");
        assert_eq!(Echo("AB\u{e9}").to_string(), "\"AB\u{e9}\"");
        let multibyte = "\u{e9}".repeat(100);
        assert!(Echo(&multibyte).to_string().ends_with("… (200 bytes)"));
    }

    #[test]
    fn bad_names_are_invalid_arguments_naming_the_field() {
        for bad in ["", "   ", "TOOLONGNAME", "A B", "ÄPFEL", "AB\u{7f}"] {
            let status = parse("symbols", bad).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad:?}");
            assert!(status.message().starts_with("symbols: "), "{status:?}");
            assert!(status.message().contains("printable ASCII"), "{status:?}");
        }
    }
}
