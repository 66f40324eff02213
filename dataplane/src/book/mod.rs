//! The L3 order book: every order and every price level of a shard, each found from the
//! message that names it.
//!
//! - [`Books`] holds every book of a shard and applies ITCH messages to them, emitting one
//!   [`L2Change`] per changed level; see its docs for the layout and what is guaranteed.
//! - [`order_store::OrderStore`] keeps each order inline at its reference;
//!   [`level_table::LevelTable`] each level by (locate, side, price); [`side::SideOrder`] orders
//!   one side's levels (exact at the top), its lists lent by [`price_lists::PriceLists`].
//! - [`reference::ReferenceBooks`] is the slow, obviously correct model the tests compare with.

pub mod books;
pub mod change;
pub mod level_table;
pub mod lookahead;
pub mod op;
pub mod order_store;
pub mod price_lists;
pub mod queues;
pub mod reference;
pub mod side;
pub mod stats;

pub use books::{BookView, Books, BooksConfig, BooksError, Order, Position};
pub use change::{ChangeSink, L2Change};
pub use op::{NewOrder, Op};
pub use stats::BookStats;
