//! [`Generator`]: a deterministic synthetic ITCH 5.0 stream with realistic book flow.
//!
//! The same seed and symbol count give the same bytes on every machine (the RNG is
//! xoshiro256++, a fixed algorithm). The stream opens like a NASDAQ day — start of messages, a
//! stock directory (R) per symbol, start of system hours, a trading action (H) per symbol, start
//! of market hours — then runs an endless body:
//!
//! - symbols are picked with a Zipf-like skew (a few names carry most of the flow);
//! - adds (A, some F) land near the touch around a slowly walking mid price;
//! - partial and full executions (E, C) hit the best price; partial cancels (X), deletes (D)
//!   and replaces (U) pick resting orders, younger ones more often;
//! - messages a book must skip are mixed in: trades (P), NOII (I), and rare halts and resumes
//!   (H).
//!
//! Book sizes hover around a target depth so long streams neither empty nor explode, and a
//! book never holds more orders than were allocated for it when the generator was built: once
//! built, [`Generator::next_into`] allocates nothing (beyond growing `out` if it is short).
//! [`Generator::closing`] yields the end-of-day system events.
//!
//! That is the [`Profile::Touch`] stream: small books (about 120 orders each) whose whole
//! working set fits in cache. [`Profile::Deep`] has a real day's working set instead: every
//! symbol is equally busy, books grow to about 1,500 orders each (1.5 M live orders over 1,000
//! symbols), cancels, executions and replaces pick uniformly among a book's live orders (so the
//! book under test touches cold memory on most messages), and prices spread over ±5 % of the
//! mid, the book sometimes crossing as a real feed's can.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::itch::Side;
use super::itch::encode::{self, EncHeader};
use crate::symbol::Symbol;

/// Well-known tickers used for the first symbols, so a demo can subscribe to familiar names.
const FAMOUS: [&str; 16] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD", "INTC", "NFLX", "QQQ", "SPY",
    "AVGO", "COST", "PEP", "ADBE",
];

/// ITCH prices have 4 implied decimals: one cent is 100 ticks.
const CENT: u32 = 100;

/// Resting orders per symbol the flow steers towards.
const TARGET_DEPTH: usize = 120;

/// The shape of the stream; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// Small books near the touch: the whole working set stays in cache.
    #[default]
    Touch,
    /// A real day's working set: ~1,500 live orders per symbol, uniform picks, wide prices.
    Deep,
}

impl Profile {
    /// Resting orders per symbol the flow steers towards.
    const fn target_depth(self) -> usize {
        match self {
            Self::Touch => TARGET_DEPTH,
            Self::Deep => DEEP_TARGET_DEPTH,
        }
    }
}

/// [`Profile::Deep`]: resting orders per symbol the flow steers towards.
const DEEP_TARGET_DEPTH: usize = 1_500;

/// [`Profile::Deep`]: prices spread over this many per mille of the mid either side.
const DEEP_SPREAD_PER_MILLE: u32 = 50;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Number of symbols (stock locates `1..=symbols`), at least 1 and at most 65,535.
    pub symbols: u16,
    /// RNG seed: the same seed gives the same stream.
    pub seed: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            symbols: 100,
            seed: 1,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Live {
    reference: u64,
    side: Side,
    price: u32,
    shares: u32,
}

/// One generated instrument.
#[derive(Debug)]
struct Instrument {
    name: Symbol,
    mid: u32,
    orders: Vec<Live>,
    halted: bool,
}

/// Where in the day the stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    StartOfMessages,
    Directory(u16),
    StartOfSystemHours,
    Trading(u16),
    StartOfMarketHours,
    Body,
}

/// An endless, deterministic ITCH 5.0 message source.
#[derive(Debug)]
pub struct Generator {
    rng: Xoshiro256PlusPlus,
    symbols: Vec<Instrument>,
    /// Cumulative pick weights of the symbols (Zipf-like, s = 1).
    weights: Vec<f64>,
    phase: Phase,
    next_ref: u64,
    next_match: u64,
    /// The day's MWCB decline levels (V) were sent.
    mwcb_levels_sent: bool,
    timestamp: u64,
    tracking: u16,
    profile: Profile,
}

impl Generator {
    /// A [`Profile::Touch`] generator for `config`; symbol counts outside `1..=65535` are
    /// clamped.
    pub fn new(config: GeneratorConfig) -> Self {
        Self::with_profile(config, Profile::Touch)
    }

    /// A generator of `profile` for `config`. A [`Profile::Deep`] one reserves its books up
    /// front: about 72 KB per symbol.
    pub fn with_profile(config: GeneratorConfig, profile: Profile) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        let count = config.symbols.max(1);
        // a full book gets a delete instead of an add, so the body never allocates
        let capacity = 2 * profile.target_depth();
        let symbols = (0..count)
            .map(|i| Instrument {
                name: Symbol::from_itch(encode::stock(&symbol_name(i as usize))),
                mid: CENT * rng.random_range(500..50_000),
                orders: Vec::with_capacity(capacity),
                halted: false,
            })
            .collect();
        let mut total = 0.0;
        let weights = (0..count)
            .map(|i| {
                total += 1.0 / (f64::from(i) + 1.0);
                total
            })
            .collect();
        Self {
            rng,
            symbols,
            weights,
            phase: Phase::StartOfMessages,
            next_ref: 1,
            next_match: 1,
            mwcb_levels_sent: false,
            // 04:00:00, when NASDAQ's system hours start
            timestamp: 4 * 3600 * 1_000_000_000,
            tracking: 0,
            profile,
        }
    }

    /// The symbol names, locate 1 first.
    pub fn symbol_names(&self) -> impl Iterator<Item = &str> {
        self.symbols.iter().map(|s| s.name.as_str())
    }

    /// The next `n` messages (unframed), one `Vec` each: for tests and in-memory feeds.
    pub fn messages(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                let mut message = Vec::new();
                self.next_into(&mut message);
                message
            })
            .collect()
    }

    /// Appends the next message (unframed) to `out` and returns its type byte.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> u8 {
        self.timestamp += self.rng.random_range(1..4_000);
        self.tracking = self.tracking.wrapping_add(1);
        let start = out.len();
        match self.phase {
            Phase::StartOfMessages => {
                self.phase = Phase::Directory(0);
                out.extend_from_slice(&encode::system_event(self.header(0), b'O'));
            }
            Phase::Directory(i) => {
                let next = i + 1;
                self.phase = if next as usize == self.symbols.len() {
                    Phase::StartOfSystemHours
                } else {
                    Phase::Directory(next)
                };
                let name = self.symbols[i as usize].name.to_itch();
                out.extend_from_slice(&encode::stock_directory(self.header(i + 1), name));
            }
            Phase::StartOfSystemHours => {
                self.phase = Phase::Trading(0);
                out.extend_from_slice(&encode::system_event(self.header(0), b'S'));
            }
            Phase::Trading(i) => {
                let next = i + 1;
                self.phase = if next as usize == self.symbols.len() {
                    Phase::StartOfMarketHours
                } else {
                    Phase::Trading(next)
                };
                let name = self.symbols[i as usize].name.to_itch();
                out.extend_from_slice(&encode::trading_action(
                    self.header(i + 1),
                    name,
                    b'T',
                    *b"    ",
                ));
            }
            Phase::StartOfMarketHours => {
                self.phase = Phase::Body;
                self.timestamp = self
                    .timestamp
                    .max(9 * 3600 * 1_000_000_000 + 1_800_000_000_000);
                out.extend_from_slice(&encode::system_event(self.header(0), b'Q'));
            }
            Phase::Body => self.body(out),
        }
        out.get(start).copied().unwrap_or(0)
    }

    /// The end-of-day system events: end of market hours, end of system hours, end of messages.
    pub fn closing(&mut self) -> [[u8; 12]; 3] {
        [b'M', b'E', b'C'].map(|code| {
            self.timestamp += 1_000;
            self.tracking = self.tracking.wrapping_add(1);
            encode::system_event(self.header(0), code)
        })
    }

    fn header(&self, locate: u16) -> EncHeader {
        EncHeader {
            stock_locate: locate,
            tracking: self.tracking,
            timestamp: self.timestamp,
        }
    }

    fn pick_symbol(&mut self) -> usize {
        if self.profile == Profile::Deep {
            return self.rng.random_range(0..self.symbols.len());
        }
        let total = self.weights.last().copied().unwrap_or(1.0);
        let x = self.rng.random::<f64>() * total;
        self.weights
            .partition_point(|w| *w < x)
            .min(self.symbols.len() - 1)
    }

    fn body(&mut self, out: &mut Vec<u8>) {
        let s = self.pick_symbol();
        let locate = s as u16 + 1;
        let roll = self.rng.random_range(0..1000u32);
        // Messages the book skips (or only notes), about 4% of the flow.
        if roll < 29 {
            return self.trade(s, out);
        }
        if roll < 30 {
            return self.rare(s, out);
        }
        if roll < 38 {
            let (name, mid) = (self.symbols[s].name.to_itch(), self.symbols[s].mid);
            let imbalance = self.rng.random_range(0..10_000);
            out.extend_from_slice(&encode::noii(
                self.header(locate),
                name,
                100 * imbalance,
                imbalance,
                if imbalance % 2 == 0 { b'B' } else { b'S' },
                mid,
                b'C',
            ));
            return;
        }
        if roll < 39 {
            // Halts are rare and short: a halted symbol resumes at its next draw here.
            if !self.symbols[s].halted && !self.rng.random_ratio(1, 20) {
                return self.add(s, out);
            }
            let sym = &mut self.symbols[s];
            sym.halted = !sym.halted;
            let (state, name) = (if sym.halted { b'H' } else { b'T' }, sym.name.to_itch());
            out.extend_from_slice(&encode::trading_action(
                self.header(locate),
                name,
                state,
                *b"    ",
            ));
            return;
        }
        let depth = self.symbols[s].orders.len();
        let target = self.profile.target_depth();
        // Steer each book towards its target depth (a deep book grows fast to get there).
        let add_per_mille = match (self.profile, depth) {
            (_, 0) => 1000,
            (Profile::Deep, d) if d < target => 850,
            (_, d) if d < target / 2 => 700,
            (_, d) if d < target => 520,
            (_, d) if d < target * 2 => 440,
            _ => 250,
        };
        let roll = self.rng.random_range(0..1000u32);
        if roll < add_per_mille {
            return self.add(s, out);
        }
        match self.rng.random_range(0..100u32) {
            0..55 => self.delete(s, out),
            55..70 => self.execute(s, out),
            70..82 => self.cancel(s, out),
            _ => self.replace(s, out),
        }
    }

    fn new_ref(&mut self) -> u64 {
        // dense and increasing, with the odd gap, like a real day
        let gap = if self.rng.random_ratio(1, 50) { 2 } else { 1 };
        let r = self.next_ref;
        self.next_ref += gap;
        r
    }

    fn quote(&mut self, s: usize) -> (Side, u32) {
        let side = if self.rng.random() {
            Side::Buy
        } else {
            Side::Sell
        };
        if self.profile == Profile::Deep {
            return (side, self.deep_price(s, side));
        }
        let sym = &mut self.symbols[s];
        if self.rng.random_ratio(1, 40) {
            sym.mid = if self.rng.random() {
                sym.mid.saturating_add(CENT)
            } else {
                sym.mid.saturating_sub(CENT).max(2 * CENT)
            };
        }
        // Mostly within a few cents of the touch, sometimes deep in the book.
        let mut ticks = 1 + self.rng.random_range(0..4u32);
        if self.rng.random_ratio(1, 5) {
            ticks += self.rng.random_range(0..60u32);
        }
        let price = match side {
            Side::Buy => sym.mid.saturating_sub(ticks * CENT),
            Side::Sell => sym.mid.saturating_add(ticks * CENT),
        };
        (side, self.uncrossed(s, side, price))
    }

    /// [`Profile::Deep`]: a price on `side` within ±5 % of the mid, denser near it, mostly on
    /// its own side (a fifth cross it: the book may cross, as a real feed's can between
    /// messages).
    fn deep_price(&mut self, s: usize, side: Side) -> u32 {
        let mid = self.symbols[s].mid;
        let reach = (mid / 1000 * DEEP_SPREAD_PER_MILLE / CENT).max(1);
        // u² of a uniform u: dense near the mid, thinning out to the reach, as real books are
        let u = self.rng.random::<f64>();
        let ticks = (u * u * f64::from(reach)) as u32 * CENT;
        let own_side = !self.rng.random_ratio(1, 5);
        let below = matches!(side, Side::Buy) == own_side;
        if below {
            mid.saturating_sub(ticks).max(CENT)
        } else {
            mid.saturating_add(ticks)
        }
    }

    /// Takes order `i` out of book `s`: in place for the touch stream, whose picks favour
    /// young orders by position; swapped with the last for the deep one (O(1); its picks are
    /// uniform).
    fn take(&mut self, s: usize, i: usize) -> Live {
        let orders = &mut self.symbols[s].orders;
        match self.profile {
            Profile::Touch => orders.remove(i),
            Profile::Deep => orders.swap_remove(i),
        }
    }

    /// `price` moved off the other side's best, so the book never crosses: an exchange would
    /// have matched such an order, not rested it.
    fn uncrossed(&self, s: usize, side: Side, price: u32) -> u32 {
        let orders = &self.symbols[s].orders;
        match side {
            Side::Buy => {
                let best_ask = orders
                    .iter()
                    .filter(|o| o.side == Side::Sell)
                    .map(|o| o.price)
                    .min()
                    .unwrap_or(u32::MAX);
                price.min(best_ask.saturating_sub(CENT)).max(CENT)
            }
            Side::Sell => {
                let best_bid = orders
                    .iter()
                    .filter(|o| o.side == Side::Buy)
                    .map(|o| o.price)
                    .max()
                    .unwrap_or(0);
                price.max(best_bid.saturating_add(CENT)).max(2 * CENT)
            }
        }
    }

    fn lot(&mut self) -> u32 {
        if self.rng.random_ratio(1, 10) {
            self.rng.random_range(1..100) // odd lot
        } else {
            100 * self.rng.random_range(1..=10)
        }
    }

    fn add(&mut self, s: usize, out: &mut Vec<u8>) {
        let orders = &self.symbols[s].orders;
        if orders.len() >= orders.capacity() {
            // A full book: pushing would reallocate. Not recursive: `delete` only adds to an
            // empty book.
            return self.delete(s, out);
        }
        let (side, price) = self.quote(s);
        let shares = self.lot();
        let reference = self.new_ref();
        let attribution = self.rng.random_ratio(1, 10).then_some(*b"NSDQ");
        let locate = s as u16 + 1;
        let name = self.symbols[s].name.to_itch();
        encode::add_order_into(
            out,
            self.header(locate),
            reference,
            side,
            shares,
            name,
            price,
            attribution,
        );
        self.symbols[s].orders.push(Live {
            reference,
            side,
            price,
            shares,
        });
    }

    /// Index of a resting order, younger ones more likely (most orders die young).
    fn pick_order(&mut self, s: usize) -> Option<usize> {
        let n = self.symbols[s].orders.len();
        if n == 0 {
            return None;
        }
        if self.profile == Profile::Deep {
            return Some(self.rng.random_range(0..n));
        }
        let back = if self.rng.random_ratio(2, 3) {
            self.rng.random_range(0..n.min(16))
        } else {
            self.rng.random_range(0..n)
        };
        Some(n - 1 - back)
    }

    /// Index of an order at the best price of a random side (any live order, for the deep
    /// stream).
    fn pick_best(&mut self, s: usize) -> Option<usize> {
        if self.profile == Profile::Deep {
            return self.pick_order(s);
        }
        let side = if self.rng.random() {
            Side::Buy
        } else {
            Side::Sell
        };
        let orders = &self.symbols[s].orders;
        let better = |a: &Live, b: &Live| match side {
            Side::Buy => a.price > b.price,
            Side::Sell => a.price < b.price,
        };
        let mut best: Option<usize> = None;
        for (i, o) in orders.iter().enumerate() {
            // the oldest order at the best price: time priority
            if o.side == side && best.is_none_or(|b| better(o, &orders[b])) {
                best = Some(i);
            }
        }
        best.or_else(|| self.pick_order(s))
    }

    fn delete(&mut self, s: usize, out: &mut Vec<u8>) {
        let Some(i) = self.pick_order(s) else {
            return self.add(s, out);
        };
        let order = self.take(s, i);
        out.extend_from_slice(&encode::order_delete(
            self.header(s as u16 + 1),
            order.reference,
        ));
    }

    fn execute(&mut self, s: usize, out: &mut Vec<u8>) {
        let Some(i) = self.pick_best(s) else {
            return self.add(s, out);
        };
        let order = self.symbols[s].orders[i];
        let shares = if self.rng.random() {
            order.shares
        } else {
            self.rng.random_range(1..=order.shares)
        };
        let match_number = self.next_match;
        self.next_match += 1;
        let h = self.header(s as u16 + 1);
        if self.rng.random_ratio(1, 8) {
            // executed at a price other than the resting order's (e.g. a cross)
            out.extend_from_slice(&encode::order_executed_with_price(
                h,
                order.reference,
                shares,
                match_number,
                true,
                order.price.saturating_add(CENT),
            ));
        } else {
            out.extend_from_slice(&encode::order_executed(
                h,
                order.reference,
                shares,
                match_number,
            ));
        }
        self.reduce(s, i, shares);
    }

    fn cancel(&mut self, s: usize, out: &mut Vec<u8>) {
        let Some(i) = self.pick_order(s) else {
            return self.add(s, out);
        };
        let order = self.symbols[s].orders[i];
        if order.shares < 2 {
            return self.delete(s, out);
        }
        let shares = self.rng.random_range(1..order.shares);
        out.extend_from_slice(&encode::order_cancel(
            self.header(s as u16 + 1),
            order.reference,
            shares,
        ));
        self.reduce(s, i, shares);
    }

    fn replace(&mut self, s: usize, out: &mut Vec<u8>) {
        let Some(i) = self.pick_order(s) else {
            return self.add(s, out);
        };
        let old = self.take(s, i);
        // keep the side; the new price is a fresh quote on that side
        let price = if self.profile == Profile::Deep {
            self.deep_price(s, old.side)
        } else {
            let (quoted_side, quoted) = self.quote(s);
            if quoted_side == old.side {
                quoted
            } else {
                let mid = self.symbols[s].mid;
                let mirrored = match old.side {
                    Side::Buy => mid.saturating_sub(quoted.saturating_sub(mid)),
                    Side::Sell => mid.saturating_add(mid.saturating_sub(quoted)),
                };
                self.uncrossed(s, old.side, mirrored)
            }
        };
        let shares = self.lot();
        let reference = self.new_ref();
        out.extend_from_slice(&encode::order_replace(
            self.header(s as u16 + 1),
            old.reference,
            reference,
            shares,
            price,
        ));
        self.symbols[s].orders.push(Live {
            reference,
            side: old.side,
            price,
            shares,
        });
    }

    /// One of the rarer tape and status messages: a cross, a broken trade, Reg SHO, a LULD
    /// collar, an IPO release, or (market-wide) circuit-breaker levels or a breach.
    fn rare(&mut self, s: usize, out: &mut Vec<u8>) {
        let locate = s as u16 + 1;
        let (name, mid) = (self.symbols[s].name.to_itch(), self.symbols[s].mid);
        let h = self.header(locate);
        match self.rng.random_range(0..20u32) {
            0..6 => {
                let match_number = self.next_match;
                self.next_match += 1;
                let shares = u64::from(self.lot()) * 10;
                let cross = [b'O', b'C', b'H', b'I'][self.rng.random_range(0..4)];
                out.extend_from_slice(&encode::cross_trade(
                    h,
                    shares,
                    name,
                    mid,
                    match_number,
                    cross,
                ));
            }
            6..9 => {
                let broken = self.rng.random_range(1..self.next_match.max(2));
                out.extend_from_slice(&encode::broken_trade(h, broken));
            }
            9..13 => {
                out.extend_from_slice(&encode::reg_sho(h, name, self.reg_sho_action()));
            }
            13..16 => {
                let band = mid / 20;
                let extension = self.rng.random_range(0..3);
                out.extend_from_slice(&encode::luld_collar(
                    h,
                    name,
                    mid,
                    mid + band,
                    mid.saturating_sub(band),
                    extension,
                ));
            }
            16..18 => {
                let qualifier = if self.rng.random_ratio(1, 4) {
                    b'C'
                } else {
                    b'A'
                };
                out.extend_from_slice(&encode::ipo_quoting(h, name, 34_200, qualifier, mid));
            }
            18 if !self.mwcb_levels_sent => {
                // the day's circuit-breaker levels, once
                self.mwcb_levels_sent = true;
                out.extend_from_slice(&encode::mwcb_levels(
                    self.header(0),
                    // 4,000.00, 3,700.00, 3,200.00 with 8 implied decimals
                    [4_000 * DECIMALS_8, 3_700 * DECIMALS_8, 3_200 * DECIMALS_8],
                ));
            }
            19 if self.rng.random_ratio(1, 1000) => {
                // a breach is rarer still (one every ~20 M messages)
                let level = [b'1', b'2', b'3'][self.rng.random_range(0..3)];
                out.extend_from_slice(&encode::mwcb_breach(self.header(0), level));
            }
            _ => {
                out.extend_from_slice(&encode::reg_sho(h, name, self.reg_sho_action()));
            }
        }
    }

    /// A Reg SHO action: mostly `0` (no price test), sometimes `1` or `2` (in effect).
    fn reg_sho_action(&mut self) -> u8 {
        if self.rng.random_ratio(1, 5) {
            [b'1', b'2'][self.rng.random_range(0..2)]
        } else {
            b'0'
        }
    }

    fn trade(&mut self, s: usize, out: &mut Vec<u8>) {
        let (side, price) = self.quote(s);
        let shares = self.lot();
        let match_number = self.next_match;
        self.next_match += 1;
        let name = self.symbols[s].name.to_itch();
        out.extend_from_slice(&encode::trade(
            self.header(s as u16 + 1),
            0,
            side,
            shares,
            name,
            price,
            match_number,
        ));
    }

    fn reduce(&mut self, s: usize, i: usize, shares: u32) {
        if shares >= self.symbols[s].orders[i].shares {
            self.take(s, i);
        } else {
            self.symbols[s].orders[i].shares -= shares;
        }
    }
}

/// One unit of an MWCB price (8 implied decimals).
const DECIMALS_8: u64 = 100_000_000;

/// The name of symbol `i`: a famous ticker, then `A000`, `A001`, … (unique, at most 8 bytes).
fn symbol_name(i: usize) -> String {
    match FAMOUS.get(i) {
        Some(name) => (*name).to_owned(),
        None => {
            let k = i - FAMOUS.len();
            let letter = char::from(b'A' + (k / 1000 % 26) as u8);
            let suffix = ["", "X", "Y", "Z"][(k / 26_000).min(3)];
            format!("{letter}{:03}{suffix}", k % 1000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::itch::{Message, parse};

    fn stream(config: GeneratorConfig, n: usize) -> Vec<Vec<u8>> {
        Generator::new(config).messages(n)
    }

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let a = stream(
            GeneratorConfig {
                symbols: 5,
                seed: 9,
            },
            2000,
        );
        let b = stream(
            GeneratorConfig {
                symbols: 5,
                seed: 9,
            },
            2000,
        );
        let c = stream(
            GeneratorConfig {
                symbols: 5,
                seed: 10,
            },
            2000,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_message_parses_and_the_day_opens_properly() {
        let msgs = stream(
            GeneratorConfig {
                symbols: 3,
                seed: 1,
            },
            50_000,
        );
        let kinds: Vec<u8> = msgs.iter().map(|m| m[0]).collect();
        assert_eq!(&kinds[..9], b"SRRRSHHHS");
        let mut seen = std::collections::BTreeSet::new();
        let mut last_ts = 0;
        for m in &msgs {
            let parsed = parse(m).unwrap_or_else(|e| panic!("{e}: {m:?}"));
            let ts = parsed.header().timestamp;
            assert!(ts >= last_ts, "timestamps never go back");
            last_ts = ts;
            seen.insert(parsed.kind());
            if let Message::AddOrder(a) = parsed {
                assert!((1..=3).contains(&a.header().stock_locate));
            }
        }
        for kind in *b"SRHAFECXDUPI" {
            assert!(seen.contains(&kind), "no {} message", kind as char);
        }
    }

    #[test]
    fn books_never_outgrow_their_preallocated_orders() {
        let mut g = Generator::new(GeneratorConfig {
            symbols: 1,
            seed: 4,
        });
        let capacity = g.symbols[0].orders.capacity();
        let mut buf = Vec::with_capacity(64);
        for _ in 0..300_000 {
            buf.clear();
            g.next_into(&mut buf);
            assert!(g.symbols[0].orders.len() <= capacity);
            // Force the full-book path, rare in a natural stream: fill the book to its cap.
            if g.symbols[0].orders.len() < capacity && g.symbols[0].orders.len() > TARGET_DEPTH {
                let last = *g.symbols[0].orders.last().expect("non-empty");
                g.symbols[0].orders.resize(capacity, last);
            }
        }
        assert_eq!(
            g.symbols[0].orders.capacity(),
            capacity,
            "never reallocated"
        );
        assert_eq!(buf.capacity(), 64);
    }

    #[test]
    fn the_deep_profile_grows_every_book_deep_and_wide() {
        let symbols = 20;
        let mut g = Generator::with_profile(GeneratorConfig { symbols, seed: 7 }, Profile::Deep);
        let capacity = g.symbols[0].orders.capacity();
        let mut buf = Vec::with_capacity(64);
        for _ in 0..200_000 {
            buf.clear();
            g.next_into(&mut buf);
            assert!(crate::feed::itch::parse(&buf).is_ok(), "{buf:?}");
        }
        for s in &g.symbols {
            let name = s.name.as_str();
            assert!(
                s.orders.len() > DEEP_TARGET_DEPTH * 8 / 10,
                "{name}: {} live orders",
                s.orders.len()
            );
            assert_eq!(s.orders.capacity(), capacity, "{name} never reallocated");
            let (lo, hi) = s.orders.iter().fold((u32::MAX, 0), |(lo, hi), o| {
                (lo.min(o.price), hi.max(o.price))
            });
            assert!(
                hi - lo > s.mid / 20,
                "{name}: prices {lo}..{hi} around {}",
                s.mid
            );
        }
        // touch stays as it was: the same seed gives a different, shallow stream
        let mut touch = Generator::new(GeneratorConfig { symbols, seed: 7 });
        for _ in 0..200_000 {
            buf.clear();
            touch.next_into(&mut buf);
        }
        assert!(
            touch
                .symbols
                .iter()
                .all(|s| s.orders.len() <= 2 * TARGET_DEPTH)
        );
    }

    #[test]
    fn symbol_names_are_unique() {
        let g = Generator::new(GeneratorConfig {
            symbols: 3000,
            seed: 1,
        });
        let names: std::collections::HashSet<&str> = g.symbol_names().collect();
        assert_eq!(names.len(), 3000);
        assert_eq!(g.symbol_names().next(), Some("AAPL"));
    }
}
