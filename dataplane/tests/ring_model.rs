//! The ring against `VecDeque` on random operation sequences (one thread; the cross-thread
//! behaviour is loom's job).

use std::collections::VecDeque;

use dataplane::ring::{PushError, ring};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Push(u32),
    PushSlice(Vec<u32>),
    Pop,
    PopBatch(usize),
    Peek,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u32>().prop_map(Op::Push),
        1 => prop::collection::vec(any::<u32>(), 0..12).prop_map(Op::PushSlice),
        3 => Just(Op::Pop),
        1 => (0usize..12).prop_map(Op::PopBatch),
        1 => Just(Op::Peek),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 512 }))]

    #[test]
    fn ring_behaves_like_a_bounded_vecdeque(capacity in 1usize..10, ops in prop::collection::vec(op(), 0..if cfg!(miri) { 60 } else { 200 })) {
        let (mut tx, mut rx) = ring::<u32>(capacity);
        let mut model = VecDeque::new();
        for op in ops {
            match op {
                Op::Push(v) => {
                    let r = tx.push(v);
                    if model.len() < capacity {
                        prop_assert_eq!(r, Ok(()));
                        model.push_back(v);
                    } else {
                        prop_assert_eq!(r, Err(PushError::Full(v)));
                    }
                }
                Op::PushSlice(vs) => {
                    let fit = vs.len().min(capacity - model.len());
                    prop_assert_eq!(tx.push_slice(&vs), fit);
                    model.extend(&vs[..fit]);
                }
                Op::Pop => prop_assert_eq!(rx.pop(), model.pop_front()),
                Op::PopBatch(max) => {
                    let mut got = Vec::new();
                    let n = rx.pop_batch(max, |v| got.push(v));
                    let want: Vec<u32> = model.drain(..max.min(model.len())).collect();
                    prop_assert_eq!(n, want.len());
                    prop_assert_eq!(got, want);
                }
                Op::Peek => prop_assert_eq!(rx.peek().copied(), model.front().copied()),
            }
            prop_assert_eq!(tx.len(), model.len());
            prop_assert_eq!(rx.len(), model.len());
            prop_assert_eq!(rx.is_empty(), model.is_empty());
            prop_assert_eq!(tx.is_full(), model.len() == capacity);
            prop_assert_eq!(tx.slots(), capacity - model.len());
        }
    }
}
