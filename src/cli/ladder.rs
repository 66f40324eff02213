//! A book as text: prices in dollars, the two sides side by side, best first.

use std::io::Write;

use controlplane::contract::Level;

/// ITCH integer ticks (4 implied decimals) as dollars: `1502300` → `150.2300`.
pub fn dollars(ticks: u32) -> String {
    format!("{}.{:04}", ticks / 10_000, ticks % 10_000)
}

/// Writes the ladder: a header line, then bids and asks side by side, best first, at most
/// `depth` rows.
pub fn write_ladder(
    out: &mut impl Write,
    bids: impl IntoIterator<Item = impl Into<Level>>,
    asks: impl IntoIterator<Item = impl Into<Level>>,
    depth: usize,
) -> std::io::Result<()> {
    writeln!(
        out,
        "  {:>12} {:>10} {:>6} | {:>12} {:>10} {:>6}",
        "bid", "shares", "orders", "ask", "shares", "orders"
    )?;
    let bids: Vec<Level> = bids.into_iter().take(depth).map(Into::into).collect();
    let asks: Vec<Level> = asks.into_iter().take(depth).map(Into::into).collect();
    let cell = |row: Option<&Level>| match row {
        Some(l) => {
            format!("{:>12} {:>10} {:>6}", dollars(l.price), l.shares, l.orders)
        }
        None => format!("{:>12} {:>10} {:>6}", "", "", ""),
    };
    for i in 0..bids.len().max(asks.len()) {
        writeln!(out, "  {} | {}", cell(bids.get(i)), cell(asks.get(i)))?;
    }
    if bids.is_empty() && asks.is_empty() {
        writeln!(out, "  (empty book)")?;
    }
    Ok(())
}

/// A side as JSON: `[[price, shares, orders], ...]`, best first.
pub fn json_side(levels: impl IntoIterator<Item = impl Into<Level>>) -> serde_json::Value {
    levels
        .into_iter()
        .map(Into::into)
        .map(|l: Level| serde_json::json!([l.price, l.shares, l.orders]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_have_four_decimals() {
        assert_eq!(dollars(1_502_300), "150.2300");
        assert_eq!(dollars(5), "0.0005");
        assert_eq!(dollars(0), "0.0000");
    }

    #[test]
    fn the_ladder_pairs_bids_with_asks_best_first() {
        let mut out = Vec::new();
        write_ladder(
            &mut out,
            [(1_000_000, 300, 2), (990_000, 100, 1)],
            [(1_010_000, 50, 1)],
            10,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].contains("100.0000") && lines[1].contains("101.0000"));
        assert!(lines[2].contains("99.0000") && !lines[2].contains("101.0000"));
    }
}
