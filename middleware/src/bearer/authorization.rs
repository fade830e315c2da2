//! Setting the `Authorization` header on every path of the layer but the hottest.

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

/// Sets the request's `Authorization` header to `value`, replacing any, on every path but the
/// hottest. Not generic and never inlined, so its `HeaderMap::insert` is compiled once, in this
/// crate: the hottest path in `Bearer::call` is then the only caller of `HeaderMap::insert`
/// in the code generated for the user's service type, and the compiler inlines it there as it
/// does in a static-header layer (BENCHMARKS.md, 2026-12-05).
#[inline(never)]
pub(super) fn set_authorization(headers: &mut HeaderMap, value: HeaderValue) {
    headers.insert(AUTHORIZATION, value);
}
