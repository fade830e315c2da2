//! Azupay: the enable/details client ([`client`]), the enable-once flow ([`enable`]) and the
//! recovery Secret that keeps a one-time secret whose write was refused ([`recovery`]).

pub mod client;
pub mod enable;
pub mod recovery;

pub use client::{AzupayClient, AzupayError};
