//! The pool against a `HashMap` model on random operation sequences, including stale handles
//! and double frees.

use std::collections::HashMap;

use dataplane::pool::{Handle, Pool, PoolFull};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Alloc(u64),
    /// Free the n-th handle ever issued (live, freed or reused).
    Free(usize),
    Get(usize),
    Bump(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u64>().prop_map(Op::Alloc),
        2 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::Get),
        1 => any::<usize>().prop_map(Op::Bump),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 512 }))]

    #[test]
    fn pool_behaves_like_a_hashmap(capacity in 0usize..16, ops in prop::collection::vec(op(), 0..if cfg!(miri) { 60 } else { 300 })) {
        let mut pool = Pool::with_capacity(capacity);
        let mut model: HashMap<Handle, u64> = HashMap::new();
        let mut issued: Vec<Handle> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc(v) => match pool.alloc(v) {
                    Ok(h) => {
                        prop_assert!(model.len() < capacity);
                        prop_assert!(!issued.contains(&h), "a handle is never issued twice");
                        model.insert(h, v);
                        issued.push(h);
                    }
                    Err(PoolFull(back)) => {
                        prop_assert_eq!(back, v);
                        prop_assert_eq!(model.len(), capacity);
                    }
                },
                Op::Free(i) if !issued.is_empty() => {
                    let h = issued[i % issued.len()];
                    match model.remove(&h) {
                        Some(v) => prop_assert_eq!(pool.free(h), Ok(v)),
                        None => prop_assert!(pool.free(h).is_err()),
                    }
                }
                Op::Get(i) if !issued.is_empty() => {
                    let h = issued[i % issued.len()];
                    prop_assert_eq!(pool.get(h), model.get(&h));
                }
                Op::Bump(i) if !issued.is_empty() => {
                    let h = issued[i % issued.len()];
                    if let Some(v) = pool.get_mut(h) {
                        *v = v.wrapping_add(1);
                    }
                    if let Some(v) = model.get_mut(&h) {
                        *v = v.wrapping_add(1);
                    }
                }
                _ => {}
            }
            prop_assert_eq!(pool.len(), model.len());
            prop_assert_eq!(pool.is_full(), model.len() == capacity);
        }
        let mut live: Vec<(Handle, u64)> = pool.iter().map(|(h, v)| (h, *v)).collect();
        let mut want: Vec<(Handle, u64)> = model.into_iter().collect();
        live.sort_by_key(|(h, _)| h.index());
        want.sort_by_key(|(h, _)| h.index());
        prop_assert_eq!(live, want);
    }
}
