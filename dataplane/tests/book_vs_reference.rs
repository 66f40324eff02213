//! Differential test: the fast L3 book against the plain BTreeMap/HashMap reference, on long
//! generated streams over many symbols and seeds. At every checkpoint and at the end, every
//! book's full L2 state must be identical — and so must an L2 mirror rebuilt only from the
//! emitted change records, which proves the records say everything.

use std::collections::{BTreeMap, HashMap};

use dataplane::book::reference::ReferenceBooks;
use dataplane::book::{Books, BooksConfig, L2Change};
use dataplane::feed::generator::{Generator, GeneratorConfig, Profile};
use dataplane::feed::itch::{Side, parse};

type Levels = Vec<(i64, u64, u32)>;

/// Price → (shares, orders) per (locate, side), built from change records alone.
#[derive(Default)]
struct Mirror(HashMap<(u16, bool), BTreeMap<i64, (u64, u32)>>);

impl Mirror {
    fn apply(&mut self, c: L2Change) {
        let side = self.0.entry((c.locate, c.side == Side::Buy)).or_default();
        if c.shares == 0 {
            assert_eq!(c.orders, 0, "a removed level has no orders: {c:?}");
            side.remove(&c.price);
        } else {
            assert!(c.orders > 0, "a level with shares has orders: {c:?}");
            side.insert(c.price, (c.shares, c.orders));
        }
    }

    fn levels(&self, locate: u16, side: Side) -> Levels {
        let Some(map) = self.0.get(&(locate, side == Side::Buy)) else {
            return Vec::new();
        };
        let flat = |(p, (s, o)): (&i64, &(u64, u32))| (*p, *s, *o);
        match side {
            Side::Buy => map.iter().rev().map(flat).collect(),
            Side::Sell => map.iter().map(flat).collect(),
        }
    }
}

fn fast_levels(books: &mut Books<'_>, locate: u16, side: Side) -> Levels {
    books
        .book(locate)
        .map(|b| {
            b.side(side)
                .map(|l| (l.price, l.shares, l.orders))
                .collect()
        })
        .unwrap_or_default()
}

/// Compares the queues of one side's levels (the first `depth`) with the reference's: the
/// orders listed in time priority, and for every seventh order (by reference) its place in
/// the queue.
fn compare_queues(
    books: &mut Books<'_>,
    reference: &ReferenceBooks,
    locate: u16,
    side: Side,
    levels: &Levels,
    depth: usize,
    at: u64,
) {
    for &(price, _, _) in levels.iter().take(depth) {
        let want = reference.queue(locate, side, price);
        let got: Vec<(u64, u32)> = books
            .book(locate)
            .map(|b| {
                b.queue(side, price)
                    .map(|o| (o.reference, o.shares))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            got, want,
            "queue of locate {locate} {side:?} {price} differs after {at} messages"
        );
        let mut shares_ahead = 0u64;
        for (ahead, &(r, shares)) in want.iter().enumerate() {
            if r % 7 == 0 {
                let position = books.position(r).expect("a queued order has a position");
                assert_eq!(
                    (position.orders_ahead as usize, position.shares_ahead),
                    (ahead, shares_ahead),
                    "place of order {r} in its queue differs after {at} messages"
                );
            }
            shares_ahead += u64::from(shares);
        }
    }
}

/// Compares every book (but those the fast side could not hold, if `skip_incomplete`), and
/// the queues of the first `queue_depth` levels of each side; returns how many sides compared
/// had at least one level.
fn compare(
    books: &mut Books<'_>,
    mirror: &Mirror,
    reference: &ReferenceBooks,
    at: u64,
    skip_incomplete: bool,
    queue_depth: usize,
) -> usize {
    let mut non_empty = 0;
    for locate in reference.locates() {
        if skip_incomplete && books.book(locate).is_none_or(|b| b.incomplete()) {
            continue;
        }
        for side in [Side::Buy, Side::Sell] {
            let want = reference.levels(locate, side);
            let got = fast_levels(books, locate, side);
            assert_eq!(
                got, want,
                "locate {locate} {side:?} differs after {at} messages"
            );
            if !skip_incomplete {
                assert_eq!(
                    mirror.levels(locate, side),
                    want,
                    "L2 mirror of locate {locate} {side:?} differs after {at} messages"
                );
            }
            if !skip_incomplete {
                compare_queues(books, reference, locate, side, &want, queue_depth, at);
            }
            non_empty += usize::from(!want.is_empty());
        }
        if let (Some(book), Some(name)) = (books.book(locate), reference.symbol(locate)) {
            assert_eq!(book.symbol(), name);
        }
    }
    non_empty
}

/// Runs `messages` generated messages through both books, comparing every `every`.
fn run(
    config: GeneratorConfig,
    books_config: BooksConfig,
    messages: u64,
    every: u64,
) -> Books<'static> {
    run_profile(config, Profile::Touch, books_config, messages, every)
}

/// [`run`] on a stream of `profile`.
fn run_profile(
    config: GeneratorConfig,
    profile: Profile,
    books_config: BooksConfig,
    messages: u64,
    every: u64,
) -> Books<'static> {
    let mut generator = Generator::with_profile(config, profile);
    let mut books = Books::new(books_config, None).unwrap();
    let mut reference = ReferenceBooks::new();
    let mut mirror = Mirror::default();
    // big enough for everything: then every book must match, the L2 stream too
    let complete = books_config.max_orders >= BooksConfig::default().max_orders
        && books_config.max_levels >= BooksConfig::default().max_levels
        && books_config.max_levels_per_side >= BooksConfig::default().max_levels_per_side
        && books_config.max_symbols >= BooksConfig::default().max_symbols;
    let mut buf = Vec::with_capacity(64);
    let mut compared = 0;
    for i in 1..=messages {
        buf.clear();
        generator.next_into(&mut buf);
        let message = parse(&buf).unwrap();
        books.apply(&message, &mut |c| mirror.apply(c));
        reference.apply(&message);
        if i % every == 0 || i == messages {
            // queues near the touch at each checkpoint, every queue at the end
            let queue_depth = if i == messages { usize::MAX } else { 4 };
            compared = compared.max(compare(
                &mut books,
                &mirror,
                &reference,
                i,
                !complete,
                queue_depth,
            ));
        }
    }
    assert!(compared > 0, "no checkpoint compared a non-empty book");
    if complete {
        assert_eq!(books.live_orders(), reference.live_orders());
    }
    books
}

#[test]
fn fast_book_matches_reference_over_millions_of_messages() {
    let cases = [
        (1, 100u16, 1_000_000u64),
        (2, 500, 400_000),
        (3, 20, 400_000),
        (4, 2000, 400_000),
    ];
    for (seed, symbols, messages) in cases {
        let books = run(
            GeneratorConfig { symbols, seed },
            BooksConfig::default(),
            messages,
            50_000,
        );
        let s = books.stats();
        assert_eq!(s.messages, messages);
        assert!(
            s.adds > messages / 4 && s.executions > 0 && s.cancels > 0,
            "{s:?}"
        );
        assert!(s.deletes > 0 && s.replaces > 0 && s.skipped > 0, "{s:?}");
        assert_eq!(
            s.unknown_refs + s.duplicate_refs,
            0,
            "generated streams are clean: {s:?}"
        );
        assert_eq!(s.orders_full + s.levels_full + s.symbols_full, 0, "{s:?}");
    }
}

#[test]
fn fast_book_matches_reference_on_a_deep_working_set() {
    // ~1,500 live orders per book, uniform picks, prices over ±5 %: most messages touch cold
    // orders, and books cross now and then
    let messages = 1_000_000;
    let books = run_profile(
        GeneratorConfig {
            symbols: 100,
            seed: 5,
        },
        Profile::Deep,
        BooksConfig::default(),
        messages,
        100_000,
    );
    let s = books.stats();
    assert!(books.live_orders() > 100_000, "{}", books.live_orders());
    assert!(s.crossed > 0, "a deep stream crosses now and then: {s:?}");
    assert_eq!(s.unknown_refs + s.duplicate_refs + s.overfills, 0, "{s:?}");
    assert_eq!(s.orders_full + s.levels_full + s.symbols_full, 0, "{s:?}");
}

#[test]
fn capacity_limits_are_counted_and_spare_the_other_books() {
    // Too few orders and levels for the flow: adds get refused. Refusals are counted, the books
    // that lost an order say so, and every other book still matches the reference exactly.
    let config = BooksConfig {
        max_orders: 3_000,
        max_levels: 2_048,
        max_levels_per_side: 40,
        max_symbols: 64,
    };
    let mut books = run(
        GeneratorConfig {
            symbols: 40,
            seed: 7,
        },
        config,
        200_000,
        10_000,
    );
    let s = books.stats();
    assert!(
        s.orders_full > 0 || s.levels_full > 0,
        "limits were not hit: {s:?}"
    );
    assert!(books.listed().any(|b| b.incomplete()));
}

#[test]
fn locates_beyond_capacity_are_counted() {
    let config = BooksConfig {
        max_symbols: 10,
        ..BooksConfig::default()
    };
    let mut books = run(
        GeneratorConfig {
            symbols: 30,
            seed: 3,
        },
        config,
        50_000,
        10_000,
    );
    assert!(books.stats().symbols_full > 0);
    assert_eq!(books.listed().count(), 9, "locates 1..=9 fit in 10 books");
}

/// Books for a 10 M-message stream of either profile (the deep one holds ~1.8 M orders and
/// ~1.2 M levels).
fn ten_million_config() -> BooksConfig {
    BooksConfig {
        max_orders: 4 << 20,
        max_levels: 2 << 20,
        ..BooksConfig::default()
    }
}

/// 10 M messages of `profile` over 1,000 symbols, compared every 1 M: nothing refused.
fn ten_million(profile: Profile, seed: u64) -> Books<'static> {
    let config = GeneratorConfig {
        symbols: 1000,
        seed,
    };
    let books = run_profile(config, profile, ten_million_config(), 10_000_000, 1_000_000);
    let s = books.stats();
    assert_eq!(s.messages, 10_000_000);
    assert_eq!(s.unknown_refs + s.duplicate_refs + s.overfills, 0, "{s:?}");
    assert_eq!(s.orders_full + s.levels_full + s.symbols_full, 0, "{s:?}");
    books
}

/// 10 M messages of each profile; slow in a debug build, so `scripts/test` runs them in
/// release (`cargo test --release -- --ignored`).
#[test]
#[ignore = "10 M messages: run in release by scripts/test"]
fn ten_million_touch_messages_match_the_reference() {
    ten_million(Profile::Touch, 11);
}

#[test]
#[ignore = "10 M messages: run in release by scripts/test"]
fn ten_million_deep_messages_match_the_reference() {
    let books = ten_million(Profile::Deep, 12);
    assert!(books.live_orders() > 1_000_000, "{}", books.live_orders());
    assert!(books.stats().crossed > 0, "{:?}", books.stats());
}
