use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::{Bearer, HostAllowList, PassThrough};
use crate::Error;
use crate::source::TokenSource;

/// A [`Layer`] that wraps services in [`Bearer`]. See the [module documentation](super).
#[derive(Clone)]
pub struct BearerLayer<P = PassThrough> {
    pub(super) source: Arc<dyn TokenSource>,
    pub(super) hosts: Option<Arc<HostAllowList>>,
    pub(super) policy: P,
}

impl BearerLayer {
    /// A layer that takes tokens from `source`, sends them to every host and passes 401
    /// answers through.
    pub fn new<T: TokenSource>(source: T) -> BearerLayer {
        Self::from_shared(Arc::new(source))
    }

    /// Like [`BearerLayer::new`], for a source that is already shared.
    pub fn from_shared(source: Arc<dyn TokenSource>) -> BearerLayer {
        BearerLayer {
            source,
            hosts: None,
            policy: PassThrough,
        }
    }
}

impl<P> BearerLayer<P> {
    /// Attach tokens only to requests for these hosts (`host` or `host:port`: https only, and
    /// http for a loopback host; `http://host[:port]` to allow plain http — see
    /// [`HostAllowList`](super::HostAllowList)); requests to other hosts, or over another
    /// scheme, pass through unchanged, without a token. Fails on an entry that is not a host,
    /// or on an empty list.
    ///
    /// The host is read from the request URI, else from its `Host` header; a request with
    /// neither gets no token. A tonic `Channel` adds the origin *inside* the channel, so a layer
    /// over a `Channel` sees path-only URIs: don't combine `allow_hosts` with it (a channel
    /// talks to one endpoint anyway), or set the `Host` header yourself.
    pub fn allow_hosts<I, H>(mut self, hosts: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = H>,
        H: AsRef<str>,
    {
        self.hosts = Some(Arc::new(HostAllowList::new(hosts)?));
        Ok(self)
    }

    /// What to do on a 401 answer: [`PassThrough`] (the default),
    /// [`InvalidateToken`](super::InvalidateToken) or [`ReplayOnce`](super::ReplayOnce).
    pub fn on_unauthorized<Q>(self, policy: Q) -> BearerLayer<Q> {
        BearerLayer {
            source: self.source,
            hosts: self.hosts,
            policy,
        }
    }

    /// The token source.
    pub fn source(&self) -> &Arc<dyn TokenSource> {
        &self.source
    }
}

impl<P: fmt::Debug> fmt::Debug for BearerLayer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("source", &"dyn TokenSource")
            .field("hosts", &self.hosts)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<S, P: Clone> Layer<S> for BearerLayer<P> {
    type Service = Bearer<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer {
            inner,
            source: Arc::clone(&self.source),
            hosts: self.hosts.clone(),
            policy: self.policy.clone(),
            fresh: None,
        }
    }
}
