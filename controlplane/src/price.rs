//! Prices as the contract carries them: signed 64-bit integers with a per-symbol exponent
//! (`price × 10^price_exponent`: -4 for ITCH, -9 for DBN), and their decimal form.

/// `price × 10^exponent` in decimal, with at least two decimals when the exponent has them and
/// no trailing zeros beyond: `decimal(1_502_300, -4)` is `150.23`, `decimal(5, -4)` is
/// `0.0005`, `decimal(4_810_250_000_000, -9)` is `4810.25`, `decimal(-250_000_000, -9)` is
/// `-0.25`. Exact: no floating point.
pub fn decimal(price: i64, exponent: i8) -> String {
    let sign = if price < 0 { "-" } else { "" };
    let magnitude = price.unsigned_abs();
    if exponent >= 0 {
        // zeros appended: no arithmetic to overflow, whatever exponent the wire carried
        let zeros = if magnitude == 0 {
            0
        } else {
            usize::from(exponent.unsigned_abs())
        };
        return format!("{sign}{magnitude}{}", "0".repeat(zeros));
    }
    let places = usize::from(exponent.unsigned_abs());
    let digits = format!("{magnitude:0>width$}", width = places + 1);
    let (whole, fraction) = digits.split_at(digits.len() - places);
    let keep = fraction.trim_end_matches('0').len().max(places.min(2));
    format!("{sign}{whole}.{}", &fraction[..keep])
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimals_are_exact_and_trimmed_to_two_places() {
        assert_eq!(decimal(1_502_300, -4), "150.23");
        assert_eq!(decimal(1_502_345, -4), "150.2345");
        assert_eq!(decimal(5, -4), "0.0005");
        assert_eq!(decimal(0, -4), "0.00");
        assert_eq!(decimal(4_810_250_000_000, -9), "4810.25");
        assert_eq!(decimal(4_810_000_000_000, -9), "4810.00");
        assert_eq!(decimal(-250_000_000, -9), "-0.25");
        assert_eq!(decimal(-3, -1), "-0.3");
        assert_eq!(decimal(i64::MIN, -9), "-9223372036.854775808");
        assert_eq!(decimal(i64::MAX, -9), "9223372036.854775807");
        assert_eq!(decimal(42, 0), "42");
        assert_eq!(decimal(-42, 2), "-4200");
        assert_eq!(decimal(7, 127).len(), 128, "no overflow on any exponent");
        assert_eq!(decimal(0, 40), "0");
        assert_eq!(decimal(5, -128).len(), 130);
    }
}
