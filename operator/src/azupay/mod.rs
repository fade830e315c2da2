//! Azupay: the enable/details client ([`client`]), the enable-once flow ([`enable`]), the
//! recovery Secret that keeps a one-time secret whose write was refused ([`recovery`]) and the
//! credentials both hold ([`stored`]).

pub mod client;
pub mod enable;
pub mod recovery;
pub mod stored;

pub use client::{AzupayClient, AzupayError};
