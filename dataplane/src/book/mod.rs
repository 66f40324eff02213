//! Order-book building blocks.
//!
//! The cache-line [`level::Level`] is shared by the L3 book and the benches; the book itself
//! (ladders, order index, ITCH application) builds on it.

pub mod level;
