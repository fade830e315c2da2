//! Azupay: the enable/details client ([`client`]) and the enable-once flow ([`enable`]).

pub mod client;
pub mod enable;

pub use client::{AzupayClient, AzupayError};
