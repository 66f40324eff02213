//! The pinbook data plane: the code that runs on the pinned, busy-polling cores.
//!
//! What this crate guarantees:
//! - **No locks, no allocation, no syscalls on the hot path.** [`ring`] and [`pool`] allocate
//!   only when they are built; every later operation is a bounded number of steps.
//! - **One writer per piece of state.** A [`ring::Producer`] and a [`ring::Consumer`] cannot be
//!   cloned or shared; a [`pool::Pool`] is owned by one thread and needs no atomics.
//! - **Misuse is reported, not undefined.** A full ring hands the value back; a stale or
//!   double-freed pool handle is an error; a failed NUMA binding falls back with a warning.
//! - **No tokio, no protobuf.** The books take time from the messages, so they replay
//!   deterministically; only [`runtime`] and [`source`] read the clock ([`clock::now_ns`]).
//! - **Books are exact, L3 included.** [`book::Books`] is checked against the plain
//!   [`book::reference`] model on 10 M-message streams and on arbitrary hostile sequences:
//!   every level, every level's queue in time priority, and every order's place in it.
//!
//! The [`runtime`] runs shards: pinned threads that poll a [`source`], keep the books and talk to
//! the control plane through rings only.
//!
//! `unsafe` lives only in [`ring`], [`arena`] (carving, binding, dropping carved values),
//! [`feed::binaryfile`] (the memory map of a capture file) and [`prefetch`] (the prefetch
//! instruction); each block carries its proof. The
//! ring is model-checked with loom (`RUSTFLAGS="--cfg loom"`); the ring, pool and arena
//! regions run under Miri. The [`pool`] and the [`book`] are safe code.
//!
//! ```
//! use dataplane::{pool::Pool, ring::ring};
//!
//! let (mut tx, mut rx) = ring::<u64>(1024);
//! tx.push(7).unwrap();
//! assert_eq!(rx.pop(), Some(7));
//!
//! let mut orders = Pool::with_capacity(2);
//! let h = orders.alloc("order").unwrap();
//! assert_eq!(orders.free(h), Ok("order"));
//! assert!(orders.free(h).is_err()); // double free: reported, not UB
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod arena;
pub mod book;
pub mod clock;
pub mod feed;
pub mod nil;
pub mod pool;
pub mod prefetch;
pub mod ring;
pub mod runtime;
pub mod source;
pub mod symbol;
pub mod sync;
pub mod topology;
