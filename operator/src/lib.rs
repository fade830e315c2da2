//! The clientcreds operator: `OAuthClient` resources, Azupay enable-once, and fresh OAuth 2.0
//! client-credentials tokens in Secrets that pods mount.
//!
//! Layout (after kube-rs controller-rs and the Stackable operators):
//! - [`crd`]: the `OAuthClient` custom resource;
//! - [`refresh`], [`build`], [`validate`]: pure functions of their inputs and a clock (refresh
//!   times, desired Secrets, status and conditions, validation);
//! - [`azupay`]: the enable/details client and the enable-once state machine;
//! - [`controller`]: dereference → validate → build → apply → status;
//! - [`telemetry`], [`server`]: metrics and the `/metrics`, `/healthz`, `/readyz` endpoints;
//! - [`rbac`]: the permissions it needs, the one source of `deploy/rbac.yaml` and the chart's RBAC;
//! - [`run`]: runs it all, with optional leader election on a `Lease` (kube-lease-manager).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(unreachable_pub)]

pub mod azupay;
pub mod build;
pub mod controller;
pub mod crd;
pub mod rbac;
pub mod refresh;
pub mod run;
pub mod server;
pub mod telemetry;
pub mod validate;
