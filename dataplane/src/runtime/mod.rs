//! The pinned data-plane runtime (being written).

pub mod idle;
pub mod stats;
