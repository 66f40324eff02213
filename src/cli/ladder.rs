//! A book as text: decimal prices, the two sides side by side, best first.

use std::io::Write;

use controlplane::contract::Level;
use controlplane::price::decimal;

/// Writes the ladder: a header line, then bids and asks side by side, best first, at most
/// `depth` rows; prices are integers × 10^`price_exponent`, shown in decimal.
pub fn write_ladder(
    out: &mut impl Write,
    bids: impl IntoIterator<Item = impl Into<Level>>,
    asks: impl IntoIterator<Item = impl Into<Level>>,
    depth: usize,
    price_exponent: i8,
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
            let price = decimal(l.price, price_exponent);
            format!("{price:>12} {:>10} {:>6}", l.shares, l.orders)
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
