//! The pinbook control plane: everything that runs off the pinned cores.
//!
//! It will hold the tonic services, the L2 mirror books fed from the data plane's event rings,
//! subscriber fan-out, auth, configuration and metrics. It knows nothing of ITCH: the only types
//! it shares with the data plane are the command and event structs carried by the rings.
//!
//! This crate never uses `unsafe`.
#![forbid(unsafe_code)]

pub mod config;
