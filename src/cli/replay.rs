//! `pinbook replay`: build every book from an ITCH 5.0 BinaryFILE, or from Databento DBN MBO
//! files, as fast as possible.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use controlplane::config::FeedSpec;
use controlplane::price::decimal;
use dataplane::arena::Arena;
use dataplane::book::books::BookLevel as Level;
use dataplane::book::lookahead::Lookahead;
use dataplane::book::{BookView, Books, BooksConfig, Op};
use dataplane::feed::binaryfile::{
    BinaryFile, FrameError, Frames, framing_lost_at, resume_after_loss,
};
use dataplane::feed::itch::{self, ParseError, Side};
use dataplane::source::dbn::DbnSource;
use dataplane::source::file::{FileOptions, Pace};
use dataplane::source::{FeedEvent, FeedSource, Polled};
use dataplane::topology::Topology;
use serde_json::json;

/// Arguments of `pinbook replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The ITCH BinaryFILE to replay (u16 length, message, repeated), e.g. from `pinbook gen`
    /// (the same as `--feed file:PATH`).
    #[arg(required_unless_present = "feed", conflicts_with = "feed")]
    pub file: Option<PathBuf>,
    /// The feed to replay: `file:PATH` (ITCH BinaryFILE) or `dbn:PATH[,PATH…]` (Databento DBN
    /// MBO files, `.dbn` or `.dbn.zst`, played in order as one session).
    #[arg(long)]
    pub feed: Option<FeedSpec>,
    /// Only print these symbols' books (comma-separated); all listed books by default.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Levels per side to print.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub depth: u32,
    /// Print one JSON object on stdout: {"messages": N, "books": {SYMBOL: {"price_exponent": E,
    /// "bids": [[price, shares, orders], ...], "asks": [...]}}}, best first, prices integers in
    /// the feed's own unit (price × 10^E: ITCH E = -4, DBN E = -9).
    #[arg(long)]
    pub json: bool,
    /// With --json, add to each book "bid_orders" and "ask_orders": for each level shown in
    /// "bids"/"asks", in the same order, its orders first to fill first as [reference, shares]
    /// pairs (DBN: the order id as the reference).
    #[arg(long, requires = "json")]
    pub orders: bool,
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
    /// DBN records refused, by reason.
    rejected: BTreeMap<String, u64>,
    /// DBN files or records that could not be decoded.
    undecodable: u64,
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

/// What a replay did.
struct Replayed {
    /// What was replayed, for the report.
    what: String,
    messages: u64,
    changes: u64,
    errors: Errors,
}

/// Replays the feed and prints the books.
pub fn run(args: &ReplayArgs) -> Result<()> {
    let feed = match (&args.feed, &args.file) {
        (Some(feed), _) => feed.clone(),
        (None, Some(file)) => FeedSpec::File(file.clone()),
        (None, None) => anyhow::bail!("name a file to replay, or --feed file:PATH|dbn:PATH,…"),
    };
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
    let started = Instant::now();
    let replayed = match &feed {
        FeedSpec::File(path) => replay_itch(path, &mut books)?,
        FeedSpec::Dbn(paths) => replay_dbn(paths, &mut books, args.max_symbols)?,
        other => anyhow::bail!("replay reads files: --feed file:PATH or dbn:PATH,…, not {other}"),
    };
    let Replayed {
        what,
        messages,
        changes,
        errors,
    } = replayed;
    let elapsed = started.elapsed();

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
            what,
            books.listed().count()
        );
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        print_json(
            &mut out,
            messages,
            &selected,
            args.depth as usize,
            args.orders,
        )?;
    } else {
        print_text(&mut out, &what, messages, elapsed, &errors, &books, changes)?;
        for book in &selected {
            print_book(&mut out, book, args.depth as usize)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Builds the books from an ITCH BinaryFILE, prefetching ahead as a shard does.
fn replay_itch(path: &std::path::Path, books: &mut Books<'_>) -> Result<Replayed> {
    let file = BinaryFile::open(path)?;
    let progress = progress_bar(file.len() as u64);
    let mut errors = Errors::default();
    let mut messages = 0u64;
    let mut changes = 0u64;
    let mut consumed = 0u64;
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
                        ahead.push(books, Op::of(&message), &mut |_| changes += 1);
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
    ahead.drain(books, &mut |_| changes += 1);
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if errors.framing_lost > 0 {
        let times = match errors.framing_lost {
            1 => "once".to_owned(),
            n => format!("{n} times"),
        };
        eprintln!(
            "pinbook: {}: the framing was lost {times} (a damaged or spliced file?) and found \
             again further on; messages in the skipped stretches are missing, so books may be \
             wrong",
            path.display(),
        );
    }
    Ok(Replayed {
        what: path.display().to_string(),
        messages,
        changes,
        errors,
    })
}

/// Builds the books from DBN MBO files through the service's own source (every record
/// decoded by the `dbn` crate and translated as a shard does), prefetching ahead.
fn replay_dbn(paths: &[PathBuf], books: &mut Books<'_>, max_symbols: usize) -> Result<Replayed> {
    let options = FileOptions {
        pace: Pace::Unpaced,
        looping: false,
    };
    let mut source = DbnSource::open(paths, options, max_symbols)?;
    let mut errors = Errors::default();
    let mut messages = 0u64;
    let mut changes = 0u64;
    let mut ahead = Lookahead::new();
    loop {
        let polled = source.poll(0, 4096, &mut |event| match event {
            FeedEvent::Decoded { op, action, .. } => {
                if action != 0 {
                    messages += 1;
                }
                ahead.push(books, op, &mut |_| changes += 1);
            }
            FeedEvent::Rejected(why) => {
                *errors.rejected.entry(format!("{why:?}")).or_default() += 1;
            }
            FeedEvent::Malformed { .. } => errors.undecodable += 1,
            _ => {}
        });
        if polled == Polled::Ended {
            break;
        }
    }
    ahead.drain(books, &mut |_| changes += 1);
    if errors.undecodable > 0 {
        eprintln!(
            "pinbook: {} DBN file(s) ended on an undecodable record; the records after it are \
             missing, so books may be wrong",
            errors.undecodable
        );
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Ok(Replayed {
        what: format!("dbn:{}", names.join(",")),
        messages,
        changes,
        errors,
    })
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

fn triples(levels: impl Iterator<Item = Level>, depth: usize) -> Vec<(i64, u64, u32)> {
    levels
        .take(depth)
        .map(|l| (l.price, l.shares, l.orders))
        .collect()
}

/// Each of the best `depth` levels of `side`: its orders, first to fill first, as
/// `[reference, shares]`.
fn queues(book: &BookView<'_>, side: Side, depth: usize) -> Vec<Vec<(u64, u32)>> {
    book.side(side)
        .take(depth)
        .map(|level| {
            book.queue(side, level.price)
                .map(|o| (o.reference, o.shares))
                .collect()
        })
        .collect()
}

fn print_json(
    out: &mut impl Write,
    messages: u64,
    books: &[BookView<'_>],
    depth: usize,
    orders: bool,
) -> std::io::Result<()> {
    let books: serde_json::Map<String, serde_json::Value> = books
        .iter()
        .map(|b| {
            let mut book = json!({
                "price_exponent": b.price_exponent(),
                "bids": triples(b.bids(), depth),
                "asks": triples(b.asks(), depth),
            });
            if orders {
                book["bid_orders"] = json!(queues(b, Side::Buy, depth));
                book["ask_orders"] = json!(queues(b, Side::Sell, depth));
            }
            (b.symbol().to_owned(), book)
        })
        .collect();
    writeln!(out, "{}", json!({"messages": messages, "books": books}))
}

fn print_text(
    out: &mut impl Write,
    what: &str,
    messages: u64,
    elapsed: Duration,
    errors: &Errors,
    books: &Books<'_>,
    changes: u64,
) -> std::io::Result<()> {
    let secs = elapsed.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "replayed {what}: {messages} messages in {elapsed:.2?}: {:.2} M msg/s, {:.1} ns/msg, {changes} level changes",
        messages as f64 / secs / 1e6,
        secs * 1e9 / (messages.max(1) as f64),
    )?;
    let s = books.stats();
    writeln!(
        out,
        "errors: frames {:?}, framing lost {}, parse {:?}, records refused {:?}, undecodable {}; \
         book: {} unknown refs, {} duplicate refs, {} overfills, {} modifies of unknown orders, \
         {} crossings, capacity hits: {} orders, {} levels, {} symbols",
        errors.frames,
        errors.framing_lost,
        errors.parse,
        errors.rejected,
        errors.undecodable,
        s.unknown_refs,
        s.duplicate_refs,
        s.overfills,
        s.modify_unknown,
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
    let exponent = book.price_exponent();
    let cell = |l: Option<&(i64, u64, u32)>| match l {
        Some(&(p, s, o)) => format!("{:>12} {s:>10} {o:>6}", decimal(p, exponent)),
        None => format!("{:>12} {:>10} {:>6}", "", "", ""),
    };
    for i in 0..bids.len().max(asks.len()) {
        writeln!(out, "  {} | {}", cell(bids.get(i)), cell(asks.get(i)))?;
    }
    Ok(())
}
