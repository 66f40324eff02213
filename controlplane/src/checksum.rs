//! The checksum every snapshot and delta carries (documented in proto/pinbook/v2/book.proto).
//!
//! CRC-32 (IEEE) over the best `min(depth, 10)` levels of each side of the book the client
//! holds: bids best first, then asks best first, each level as `price: i64 BE` then
//! `shares: u64 BE`.
//!
//! The orders checksum of the market-by-order stream ([`orders_checksum`]; OrdersSnapshot and
//! OrderEvent) is the CRC-32 (IEEE) over the first 32 orders of each side in published order:
//! bids then asks, each order as `reference: u64 BE`, `price: i64 BE`, `shares: u64 BE`.

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
    // the bytes gathered first and hashed in one call: crc32fast's wide (SIMD) path needs
    // long inputs, and 8-byte updates took its slow one
    let mut bytes = [0u8; 2 * CHECKSUM_LEVELS * 16];
    let mut len = 0;
    for (price, shares) in bids.into_iter().take(n).chain(asks.into_iter().take(n)) {
        bytes[len..len + 8].copy_from_slice(&price.to_be_bytes());
        bytes[len + 8..len + 16].copy_from_slice(&shares.to_be_bytes());
        len += 16;
    }
    crc32fast::hash(&bytes[..len])
}

/// Orders per side the orders checksum covers at most.
pub const CHECKSUM_ORDERS: usize = 32;

/// The orders checksum of an order book given its sides in published order (each side best
/// price first, each price oldest first) as `(reference, price, shares)`: only the first
/// [`CHECKSUM_ORDERS`] orders of each side are read, so it costs at most 64 orders whatever
/// the book's size. An empty book gives 0.
pub fn orders_checksum(
    bids: impl IntoIterator<Item = (u64, i64, u64)>,
    asks: impl IntoIterator<Item = (u64, i64, u64)>,
) -> u32 {
    // gathered and hashed in one call, as `checksum` does
    let mut bytes = [0u8; 2 * CHECKSUM_ORDERS * 24];
    let mut len = 0;
    for (reference, price, shares) in bids
        .into_iter()
        .take(CHECKSUM_ORDERS)
        .chain(asks.into_iter().take(CHECKSUM_ORDERS))
    {
        bytes[len..len + 8].copy_from_slice(&reference.to_be_bytes());
        bytes[len + 8..len + 16].copy_from_slice(&price.to_be_bytes());
        bytes[len + 16..len + 24].copy_from_slice(&shares.to_be_bytes());
        len += 24;
    }
    crc32fast::hash(&bytes[..len])
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

    /// The vectors published in proto/pinbook/v2/orders_checksum_vectors.txt (computed with
    /// Python's zlib), checked against the implementation: `bids | asks | crc` per line, each
    /// order `REFxPRICExSHARES`.
    #[test]
    fn published_orders_vectors_hold() {
        let text = include_str!("../../proto/pinbook/v2/orders_checksum_vectors.txt");
        let mut checked = 0;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let fields: Vec<&str> = line.split('|').map(str::trim).collect();
            let [bids, asks, crc] = fields[..] else {
                panic!("bad vector line {line:?}");
            };
            let orders = |s: &str| -> Vec<(u64, i64, u64)> {
                s.split_whitespace()
                    .map(|o| {
                        let parts: Vec<&str> = o.split('x').collect();
                        let [r, p, q] = parts[..] else {
                            panic!("bad order {o:?} in {line:?}");
                        };
                        (r.parse().unwrap(), p.parse().unwrap(), q.parse().unwrap())
                    })
                    .collect()
            };
            let expected = u32::from_str_radix(crc.trim_start_matches("0x"), 16).unwrap();
            assert_eq!(
                orders_checksum(orders(bids), orders(asks)),
                expected,
                "{line}"
            );
            checked += 1;
        }
        assert!(checked >= 8, "{checked} vectors");
    }

    #[test]
    fn orders_bytes_are_big_endian_reference_price_shares() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&7u64.to_be_bytes());
        bytes.extend_from_slice(&(-1_000_000i64).to_be_bytes());
        bytes.extend_from_slice(&300u64.to_be_bytes());
        assert_eq!(
            orders_checksum([(7, -1_000_000, 300)], []),
            crc32fast::hash(&bytes)
        );
        // an ask alone hashes the same bytes as a bid alone: the sides are not tagged
        assert_eq!(
            orders_checksum([], [(7, -1_000_000, 300)]),
            crc32fast::hash(&bytes)
        );
        assert_eq!(orders_checksum([], []), 0);
        // orders past the first 32 of a side do not count, on either side
        let deep: Vec<(u64, i64, u64)> = (0..40).map(|i| (i, 100 - i as i64, 1)).collect();
        let ask = [(99, 200, 5)];
        assert_eq!(
            orders_checksum(deep.clone(), ask),
            orders_checksum(deep[..CHECKSUM_ORDERS].to_vec(), ask)
        );
        assert_eq!(
            orders_checksum(ask, deep.clone()),
            orders_checksum(ask, deep[..CHECKSUM_ORDERS].to_vec())
        );
        assert_ne!(
            orders_checksum(deep.clone(), ask),
            orders_checksum(deep[..CHECKSUM_ORDERS - 1].to_vec(), ask)
        );
    }
}
