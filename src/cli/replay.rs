//! `pinbook replay`: build every book from an ITCH 5.0 BinaryFILE as fast as possible.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dataplane::arena::Arena;
use dataplane::book::books::BookLevel as Level;
use dataplane::book::lookahead::Lookahead;
use dataplane::book::{BookView, Books, BooksConfig, Op, itch_price};
use dataplane::feed::binaryfile::{
    BinaryFile, FrameError, Frames, framing_lost_at, resume_after_loss,
};
use dataplane::feed::itch::{self, ParseError};
use dataplane::topology::Topology;
use serde_json::json;

/// Arguments of `pinbook replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The BinaryFILE to replay (u16 length, message, repeated), e.g. from `pinbook gen`.
    pub file: PathBuf,
    /// Only print these symbols' books (comma-separated); all listed books by default.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Levels per side to print.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub depth: u32,
    /// Print one JSON object on stdout: {"messages": N, "books": {SYMBOL: {"bids": [[price,
    /// shares, orders], ...], "asks": [...]}}}, prices in ITCH integer units, best first.
    #[arg(long)]
    pub json: bool,
    /// Live orders the books can hold.
    #[arg(long, default_value_t = BooksConfig::default().max_orders)]
    pub max_orders: usize,
    /// Price levels the books can hold, all books and sides together.
    #[arg(long, default_value_t = BooksConfig::default().max_levels)]
    pub max_levels: usize,
    /// Price levels one side of one book can hold.
    #[arg(long, default_value_t = BooksConfig::default().max_levels_per_side)]
    pub max_levels_per_side: u32,
    /// Highest stock locate + 1 the books accept.
    #[arg(long, default_value_t = BooksConfig::default().max_symbols)]
    pub max_symbols: usize,
}

/// Errors met on the way, by kind.
#[derive(Debug, Default)]
struct Errors {
    frames: BTreeMap<&'static str, u64>,
    /// Times the framing was lost and found again further on (the books may be wrong).
    framing_lost: u64,
    parse: BTreeMap<&'static str, u64>,
}

impl Errors {
    fn frame(&mut self, e: &FrameError) {
        let kind = match e {
            FrameError::Truncated { .. } => "truncated",
            FrameError::ZeroLength { .. } => "zero length",
        };
        *self.frames.entry(kind).or_default() += 1;
    }

    fn parse(&mut self, e: &ParseError) {
        let kind = match e {
            ParseError::Empty => "empty",
            ParseError::UnknownType { .. } => "unknown type",
            ParseError::WrongLength { .. } => "wrong length",
            ParseError::InvalidField { .. } => "invalid field",
        };
        *self.parse.entry(kind).or_default() += 1;
    }
}

/// Replays the file and prints the books.
pub fn run(args: &ReplayArgs) -> Result<()> {
    let file = BinaryFile::open(&args.file)?;
    let config = BooksConfig {
        max_orders: args.max_orders,
        max_levels: args.max_levels,
        max_levels_per_side: args.max_levels_per_side,
        max_symbols: args.max_symbols,
    };
    // The books live in an arena bound to this thread's NUMA node, as on a shard.
    let topology = Topology::detect_or_fallback();
    let arena = Arena::new(&topology, None, config.arena_bytes())
        .context("cannot reserve memory for the books")?;
    let mut books = Books::new(config, Some(&arena)).context("cannot reserve the books")?;
    let progress = progress_bar(file.len() as u64);

    let mut errors = Errors::default();
    let mut messages = 0u64;
    let mut changes = 0u64;
    let mut consumed = 0u64;
    let started = Instant::now();
    let all = file.bytes();
    // `frames` walks `all[base..]`: after a framing loss it starts over where framing is sound
    let mut base = 0;
    let mut frames = Frames::new(all);
    let mut ahead = Lookahead::new();
    while let Some(frame) = frames.next() {
        let lost_at = match frame {
            Ok(bytes) => {
                consumed += 2 + bytes.len() as u64;
                match itch::parse(bytes) {
                    Ok(message) => {
                        messages += 1;
                        ahead.push(&mut books, Op::of(&message), &mut |_| changes += 1);
                        None
                    }
                    Err(e) => {
                        let at = base + frames.offset() - 2 - bytes.len();
                        let lost = framing_lost_at(all, at);
                        if !lost {
                            errors.parse(&e);
                        }
                        lost.then_some(at)
                    }
                }
            }
            Err(e) => {
                let at = match e {
                    FrameError::Truncated { offset, .. } => base + offset,
                    FrameError::ZeroLength { offset } => base + offset,
                };
                let lost = framing_lost_at(all, at);
                if !lost {
                    errors.frame(&e);
                    if let FrameError::ZeroLength { .. } = e {
                        consumed += 2;
                    }
                }
                lost.then_some(at)
            }
        };
        if let Some(at) = lost_at {
            // as the service does: count it, skip to where framing is sound again
            errors.framing_lost += 1;
            base = resume_after_loss(all, at);
            consumed = base as u64;
            frames = Frames::new(all.get(base..).unwrap_or_default());
        }
        if let Some(bar) = &progress
            && messages & 0xF_FFFF == 0
        {
            bar.set_position(consumed);
        }
    }
    ahead.drain(&mut books, &mut |_| changes += 1);
    let elapsed = started.elapsed();
    if errors.framing_lost > 0 {
        let times = match errors.framing_lost {
            1 => "once".to_owned(),
            n => format!("{n} times"),
        };
        eprintln!(
            "pinbook: {}: the framing was lost {times} (a damaged or spliced file?) and found \
             again further on; messages in the skipped stretches are missing, so books may be \
             wrong",
            args.file.display(),
        );
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    let stats = books.stats();
    if stats.orders_full + stats.levels_full + stats.symbols_full > 0 {
        eprintln!(
            "pinbook: the books ran out of room ({} orders, {} levels and {} symbols refused), so \
             the books marked INCOMPLETE are wrong: raise --max-orders (now {}), --max-levels \
             (now {}) or --max-symbols (now {}) and replay again",
            stats.orders_full,
            stats.levels_full,
            stats.symbols_full,
            args.max_orders,
            args.max_levels,
            args.max_symbols,
        );
    }
    books.settle_all();
    let selected = select(&books, &args.symbols);
    if selected.is_empty() && !args.symbols.is_empty() {
        anyhow::bail!(
            "none of the symbols {} is in {}'s stock directory (it lists {} symbols; run without \
             --symbols to see them)",
            args.symbols.join(","),
            args.file.display(),
            books.listed().count()
        );
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        print_json(&mut out, messages, &selected, args.depth as usize)?;
    } else {
        print_text(
            &mut out, &args.file, messages, elapsed, &errors, &books, changes,
        )?;
        for book in &selected {
            print_book(&mut out, book, args.depth as usize)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The books to print: the asked-for symbols (warning about unknown ones), else all listed.
fn select<'b>(books: &'b Books<'_>, symbols: &[String]) -> Vec<BookView<'b>> {
    if symbols.is_empty() {
        return books.views().collect();
    }
    symbols
        .iter()
        .filter_map(|s| {
            let found = books.locate_of(s).and_then(|l| books.view(l));
            if found.is_none() {
                eprintln!("pinbook: symbol {s} is not in the file's stock directory; skipped");
            }
            found
        })
        .collect()
}

fn progress_bar(bytes: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || bytes < 64 << 20 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(bytes);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "replaying {bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

fn triples(levels: impl Iterator<Item = Level>, depth: usize) -> Vec<[u64; 3]> {
    levels
        .take(depth)
        .map(|l| {
            [
                u64::from(itch_price(l.price)),
                l.shares,
                u64::from(l.orders),
            ]
        })
        .collect()
}

fn print_json(
    out: &mut impl Write,
    messages: u64,
    books: &[BookView<'_>],
    depth: usize,
) -> std::io::Result<()> {
    let books: serde_json::Map<String, serde_json::Value> = books
        .iter()
        .map(|b| {
            (
                b.symbol().to_owned(),
                json!({"bids": triples(b.bids(), depth), "asks": triples(b.asks(), depth)}),
            )
        })
        .collect();
    writeln!(out, "{}", json!({"messages": messages, "books": books}))
}

fn print_text(
    out: &mut impl Write,
    path: &std::path::Path,
    messages: u64,
    elapsed: Duration,
    errors: &Errors,
    books: &Books<'_>,
    changes: u64,
) -> std::io::Result<()> {
    let secs = elapsed.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "replayed {}: {messages} messages in {elapsed:.2?}: {:.2} M msg/s, {:.1} ns/msg, {changes} level changes",
        path.display(),
        messages as f64 / secs / 1e6,
        secs * 1e9 / (messages.max(1) as f64),
    )?;
    let s = books.stats();
    writeln!(
        out,
        "errors: frames {:?}, framing lost {}, parse {:?}; book: {} unknown refs, {} duplicate refs, {} overfills, \
         {} crossings, capacity hits: {} orders, {} levels, {} symbols",
        errors.frames,
        errors.framing_lost,
        errors.parse,
        s.unknown_refs,
        s.duplicate_refs,
        s.overfills,
        s.crossed,
        s.orders_full,
        s.levels_full,
        s.symbols_full,
    )?;
    writeln!(
        out,
        "books: {} listed, {} live orders, {} levels",
        books.views().count(),
        books.live_orders(),
        books.live_levels(),
    )
}

fn print_book(out: &mut impl Write, book: &BookView<'_>, depth: usize) -> std::io::Result<()> {
    let mut flags = Vec::new();
    if book.crossed() {
        flags.push("CROSSED");
    }
    if book.incomplete() {
        flags.push("INCOMPLETE");
    }
    match book.trading_state() {
        b'H' => flags.push("halted"),
        b'P' => flags.push("paused"),
        b'Q' => flags.push("quotation only"),
        _ => {}
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} (locate {}) {}",
        book.symbol(),
        book.locate(),
        flags.join(" ")
    )?;
    writeln!(
        out,
        "  {:>12} {:>10} {:>6} | {:>12} {:>10} {:>6}",
        "bid", "shares", "orders", "ask", "shares", "orders"
    )?;
    let bids = triples(book.bids(), depth);
    let asks = triples(book.asks(), depth);
    let cell = |l: Option<&[u64; 3]>| match l {
        Some([p, s, o]) => format!("{:>12} {s:>10} {o:>6}", price(*p)),
        None => format!("{:>12} {:>10} {:>6}", "", "", ""),
    };
    for i in 0..bids.len().max(asks.len()) {
        writeln!(out, "  {} | {}", cell(bids.get(i)), cell(asks.get(i)))?;
    }
    Ok(())
}

/// ITCH integer price (4 implied decimals) as dollars.
fn price(ticks: u64) -> String {
    format!("{}.{:04}", ticks / 10_000, ticks % 10_000)
}
