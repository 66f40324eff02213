//! The checksum every snapshot and delta carries (documented in proto/pinbook/v2/book.proto).
//!
//! CRC-32 (IEEE) over the best `min(depth, 10)` levels of each side of the book the client
//! holds: bids best first, then asks best first, each level as `price: i64 BE` then
//! `shares: u64 BE`.

/// Levels per side the checksum covers at most.
pub const CHECKSUM_LEVELS: usize = 10;

/// The checksum of a book given its sides best first as `(price, shares)`; only the first
/// `min(depth, 10)` levels of each side count.
pub fn checksum(
    bids: impl IntoIterator<Item = (i64, u64)>,
    asks: impl IntoIterator<Item = (i64, u64)>,
    depth: usize,
) -> u32 {
    let n = depth.min(CHECKSUM_LEVELS);
    let mut crc = crc32fast::Hasher::new();
    for (price, shares) in bids.into_iter().take(n).chain(asks.into_iter().take(n)) {
        crc.update(&price.to_be_bytes());
        crc.update(&shares.to_be_bytes());
    }
    crc.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors published in proto/pinbook/v2/checksum_vectors.txt, checked against the
    /// implementation: `depth | bids | asks | crc` per line.
    #[test]
    fn published_vectors_hold() {
        let text = include_str!("../../proto/pinbook/v2/checksum_vectors.txt");
        let mut checked = 0;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let fields: Vec<&str> = line.split('|').map(str::trim).collect();
            let [depth, bids, asks, crc] = fields[..] else {
                panic!("bad vector line {line:?}");
            };
            let levels = |s: &str| -> Vec<(i64, u64)> {
                s.split_whitespace()
                    .map(|l| {
                        let (p, q) = l.split_once('x').unwrap();
                        (p.parse().unwrap(), q.parse().unwrap())
                    })
                    .collect()
            };
            let expected = u32::from_str_radix(crc.trim_start_matches("0x"), 16).unwrap();
            assert_eq!(
                checksum(levels(bids), levels(asks), depth.parse().unwrap()),
                expected,
                "{line}"
            );
            checked += 1;
        }
        assert!(checked >= 4);
    }

    #[test]
    fn the_bytes_are_big_endian_price_then_shares() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1_000_000i64.to_be_bytes());
        bytes.extend_from_slice(&300u64.to_be_bytes());
        assert_eq!(checksum([(1_000_000, 300)], [], 5), crc32fast::hash(&bytes));
        assert_eq!(checksum([], [], 10), 0);
        // levels past min(depth, 10) do not count
        let deep: Vec<(i64, u64)> = (0..20).map(|i| (100 - i, 1)).collect();
        assert_eq!(
            checksum(deep.clone(), [], 10),
            checksum(deep[..10].to_vec(), [], 50)
        );
        assert_eq!(
            checksum(deep.clone(), [], 2),
            checksum(deep[..2].to_vec(), [], 2)
        );
    }
}
