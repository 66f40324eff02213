//! The L3 order book: every order, aggregated into 64-byte price levels per side.
//!
//! - [`Books`] holds every book of a shard and applies ITCH messages to them, emitting one
//!   [`L2Change`] per changed level; see its docs for what is guaranteed.
//! - [`ladder::Ladder`] is one side (sorted levels, best last); [`level_store::LevelStore`] lends
//!   ladders their levels; [`level::Level`] is one cache line.
//! - [`order_index`] maps ITCH order references to pool slots.
//! - [`reference::ReferenceBooks`] is the slow, obviously correct model the tests compare with.

pub mod books;
pub mod change;
pub mod ladder;
pub mod level;
pub mod level_store;
pub mod order_index;
pub mod reference;
pub mod stats;

pub use books::{BookView, Books, BooksConfig, BooksError, Order};
pub use change::L2Change;
pub use stats::BookStats;
