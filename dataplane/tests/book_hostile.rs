//! The fast book against the reference on arbitrary message sequences, as a clumsy or hostile
//! feed would send them: duplicate and unknown references, references far apart (the order
//! store's window slides), replaces onto live or identical references, zero and oversized
//! share counts, books cleared mid-stream and their references reused. After every message
//! the L2 state of every book, every level's queue in time priority and every order's place in
//! its queue must equal the reference's.

use dataplane::book::reference::ReferenceBooks;
use dataplane::book::{Books, BooksConfig};
use dataplane::feed::itch::encode::{self, EncHeader};
use dataplane::feed::itch::{Side, parse};
use proptest::prelude::*;

const LOCATES: u16 = 3;

/// References close together, far apart, and at the ends of the range.
const REFS: [u64; 12] = [
    0,
    1,
    2,
    3,
    5,
    8,
    100,
    129,
    260,
    1 << 33,
    u64::MAX - 1,
    u64::MAX,
];

#[derive(Clone, Copy, Debug)]
enum Op {
    Add(u16, usize, bool, u32, u32),
    Execute(usize, u32),
    Cancel(usize, u32),
    Delete(usize),
    Replace(usize, usize, u32, u32),
    ClearBook(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let r = 0..REFS.len();
    prop_oneof![
        4 => (0..LOCATES, r.clone(), any::<bool>(), 0u32..4, 1u32..6)
            .prop_map(|(l, r, b, s, p)| Op::Add(l, r, b, s, p)),
        2 => (r.clone(), 0u32..5).prop_map(|(r, s)| Op::Execute(r, s)),
        2 => (r.clone(), 0u32..5).prop_map(|(r, s)| Op::Cancel(r, s)),
        2 => r.clone().prop_map(Op::Delete),
        2 => (r.clone(), r, 0u32..4, 1u32..6).prop_map(|(a, b, s, p)| Op::Replace(a, b, s, p)),
        1 => (0..LOCATES).prop_map(Op::ClearBook),
    ]
}

fn h(locate: u16) -> EncHeader {
    EncHeader {
        stock_locate: locate,
        tracking: 0,
        timestamp: 1,
    }
}

fn message(op: Op) -> Option<Vec<u8>> {
    let stock = encode::stock("S");
    Some(match op {
        Op::Add(l, r, buy, shares, price) => {
            let side = if buy { Side::Buy } else { Side::Sell };
            encode::add_order(h(l), REFS[r], side, shares, stock, price, None)
        }
        Op::Execute(r, s) => encode::order_executed(h(0), REFS[r], s, 7).to_vec(),
        Op::Cancel(r, s) => encode::order_cancel(h(0), REFS[r], s).to_vec(),
        Op::Delete(r) => encode::order_delete(h(0), REFS[r]).to_vec(),
        Op::Replace(a, b, s, p) => encode::order_replace(h(0), REFS[a], REFS[b], s, p).to_vec(),
        Op::ClearBook(_) => return None,
    })
}

fn check(
    books: &mut Books<'_>,
    reference: &ReferenceBooks,
    step: usize,
) -> Result<(), TestCaseError> {
    books.settle_all();
    for locate in 0..LOCATES {
        for side in [Side::Buy, Side::Sell] {
            let want = reference.levels(locate, side);
            let book = books.view(locate).expect("within capacity");
            prop_assert!(!book.incomplete(), "capacity is ample");
            let got: Vec<(i64, u64, u32)> = book
                .side(side)
                .map(|l| (l.price, l.shares, l.orders))
                .collect();
            prop_assert_eq!(
                &got,
                &want,
                "levels of {} {:?} after step {}",
                locate,
                side,
                step
            );
            for &(price, _, _) in &want {
                let queue = reference.queue(locate, side, price);
                let got: Vec<(u64, u32)> = book
                    .queue(side, price)
                    .map(|o| (o.reference, o.shares))
                    .collect();
                prop_assert_eq!(&got, &queue, "queue at {} after step {}", price, step);
                let mut shares_ahead = 0u64;
                for (ahead, &(r, shares)) in queue.iter().enumerate() {
                    let p = books.position(r).expect("a queued order has a position");
                    prop_assert_eq!(
                        (p.orders_ahead as usize, p.shares_ahead),
                        (ahead, shares_ahead)
                    );
                    shares_ahead += u64::from(shares);
                }
            }
        }
    }
    prop_assert_eq!(books.live_orders(), reference.live_orders());
    // each chunk is pinned by a live order or a level's tail: none leaks
    prop_assert!(books.queue_chunks() <= books.live_orders() + books.live_levels());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_sequences_match_the_reference(ops in prop::collection::vec(op(), 1..200)) {
        let config = BooksConfig {
            max_orders: 64,
            max_levels: 64,
            max_levels_per_side: 64,
            max_symbols: 4,
        };
        let mut books = Books::new(config, None).unwrap();
        let mut reference = ReferenceBooks::new();
        for locate in 0..LOCATES {
            let listing = encode::stock_directory(h(locate), encode::stock("S"));
            let message = parse(&listing).unwrap();
            books.apply(&message, &mut |_| {});
            reference.apply(&message);
        }
        for (step, op) in ops.into_iter().enumerate() {
            match message(op) {
                Some(bytes) => {
                    let message = parse(&bytes).unwrap();
                    books.apply(&message, &mut |_| {});
                    reference.apply(&message);
                }
                None => {
                    if let Op::ClearBook(locate) = op {
                        books.clear_book(locate);
                        reference.clear_book(locate);
                    }
                }
            }
            check(&mut books, &reference, step)?;
        }
    }
}
