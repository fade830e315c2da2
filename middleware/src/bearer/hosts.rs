//! The host allow-list.

use http::Request;
use http::header::HOST;

use crate::Error;

/// Hosts a token may be sent to: `host` (any port) or `host:port`, compared case-insensitively
/// with the request URI's authority (or, for a URI without one, the `Host` header).
///
/// ```
/// use clientcreds::bearer::HostAllowList;
///
/// let hosts = HostAllowList::new(["api.example.com", "localhost:8443"])?;
/// assert!(hosts.allows_authority("API.example.com", None));
/// assert!(hosts.allows_authority("localhost", Some(8443)));
/// assert!(!hosts.allows_authority("localhost", Some(80)));
/// assert!(!hosts.allows_authority("evil.example.com", None));
/// # Ok::<(), clientcreds::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HostAllowList {
    hosts: Vec<(String, Option<u16>)>,
}

impl HostAllowList {
    /// An allow-list; fails with [`Error::Config`] (field `allow_hosts`) on an entry that is not
    /// `host` or `host:port`.
    pub fn new<I, H>(hosts: I) -> Result<HostAllowList, Error>
    where
        I: IntoIterator<Item = H>,
        H: AsRef<str>,
    {
        let mut list = Vec::new();
        for entry in hosts {
            let entry = entry.as_ref().trim();
            let authority: http::uri::Authority = entry.parse().map_err(|_| bad(entry))?;
            if entry.is_empty() || authority.as_str().contains('@') {
                return Err(bad(entry));
            }
            list.push((authority.host().to_ascii_lowercase(), authority.port_u16()));
        }
        if list.is_empty() {
            return Err(Error::Config {
                field: "allow_hosts",
                message: "the host allow-list is empty, so no request would get a token; \
                          list at least one host or do not set an allow-list"
                    .into(),
            });
        }
        Ok(HostAllowList { hosts: list })
    }

    /// Whether a token may go to `host` at `port`.
    pub fn allows_authority(&self, host: &str, port: Option<u16>) -> bool {
        self.hosts.iter().any(|(allowed, allowed_port)| {
            allowed.eq_ignore_ascii_case(host) && (allowed_port.is_none() || *allowed_port == port)
        })
    }

    /// Whether a token may go with `request`. A request without a host (no authority in the
    /// URI, no `Host` header) is not allowed.
    pub fn allows<B>(&self, request: &Request<B>) -> bool {
        if let Some(host) = request.uri().host() {
            return self.allows_authority(host, request.uri().port_u16());
        }
        let header = request.headers().get(HOST).and_then(|h| h.to_str().ok());
        match header.and_then(|h| h.parse::<http::uri::Authority>().ok()) {
            Some(authority) => self.allows_authority(authority.host(), authority.port_u16()),
            None => false,
        }
    }
}

fn bad(entry: &str) -> Error {
    Error::Config {
        field: "allow_hosts",
        message: format!("{entry:?} is not a host name or host:port, e.g. \"api.example.com\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_uri_then_host_header() {
        let hosts = HostAllowList::new(["api.example.com"]).unwrap();
        let req = Request::get("https://api.example.com:443/x")
            .body(())
            .unwrap();
        assert!(hosts.allows(&req));
        let req = Request::get("https://api.example.com.evil.net/x")
            .body(())
            .unwrap();
        assert!(!hosts.allows(&req));
        let req = Request::get("/x")
            .header(HOST, "api.example.com")
            .body(())
            .unwrap();
        assert!(hosts.allows(&req));
        let req = Request::get("/x").body(()).unwrap();
        assert!(!hosts.allows(&req));
    }

    #[test]
    fn bad_entries_name_the_field() {
        for bad in ["", "https://x/y", "user@host", "a b"] {
            let err = HostAllowList::new([bad]).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Config {
                        field: "allow_hosts",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        assert!(HostAllowList::new(Vec::<String>::new()).is_err());
    }
}
