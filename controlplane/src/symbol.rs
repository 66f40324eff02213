//! Symbol names as the services take them: checked and normalised the way the data plane
//! does ([`symbol_bytes`], [`symbol_str`]), so a name is looked up exactly as the hub stores it.

use dataplane::runtime::event::{symbol_bytes, symbol_str};
use tonic::Status;

/// `given` as the data plane's 8 space-padded bytes and as the trimmed name the hub knows it
/// by.
///
/// # Errors
/// INVALID_ARGUMENT naming `field` if `given` is empty, longer than 8 bytes or not printable
/// ASCII once trimmed.
pub(crate) fn parse(field: &str, given: &str) -> Result<([u8; 8], String), Status> {
    let bytes = symbol_bytes(given).ok_or_else(|| {
        Status::invalid_argument(format!(
            "{field}: {given:?} is not a symbol (1 to 8 printable ASCII characters)"
        ))
    })?;
    Ok((bytes, symbol_str(&bytes).to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_padded() {
        for given in ["AAPL", " AAPL", "AAPL  ", "\tAAPL\n"] {
            let (bytes, name) = parse("symbol", given).unwrap();
            assert_eq!(&bytes, b"AAPL    ", "{given:?}");
            assert_eq!(name, "AAPL", "{given:?}");
        }
        assert_eq!(parse("symbol", "ABCDEFGH").unwrap().1, "ABCDEFGH");
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
