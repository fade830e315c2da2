//! The host allow-list.

use http::Request;
use http::header::HOST;

use crate::Error;

/// Hosts a token may be sent to, and over which scheme.
///
/// Entries:
/// - `host` or `host:port` (no port: any port): **https only** — a bearer token never goes in
///   clear text to such a host; a loopback host (`localhost`, `127.0.0.1`, `[::1]`) also over
///   http;
/// - `https://host[:port]`: https only;
/// - `http://host[:port]`: plain http too (an explicit opt-in, e.g. for a sidecar).
///
/// Hosts compare case-insensitively with the request URI's authority (or, for a URI without
/// one, the `Host` header). A request whose URI has no scheme (a path-only URI with a `Host`
/// header, as a proxy sees it) is judged by its host alone; any scheme other than http and
/// https gets no token.
///
/// ```
/// use clientcreds::bearer::HostAllowList;
///
/// let hosts = HostAllowList::new(["api.example.com", "localhost:8443", "http://sidecar"])?;
/// assert!(hosts.allows_url(Some("https"), "API.example.com", None));
/// assert!(!hosts.allows_url(Some("http"), "api.example.com", None), "not in clear text");
/// assert!(hosts.allows_url(Some("http"), "localhost", Some(8443)), "loopback");
/// assert!(!hosts.allows_url(Some("https"), "localhost", Some(80)));
/// assert!(hosts.allows_url(Some("http"), "sidecar", Some(8080)));
/// assert!(!hosts.allows_url(Some("https"), "evil.example.com", None));
/// # Ok::<(), clientcreds::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HostAllowList {
    hosts: Vec<Entry>,
}

/// One allowed host.
#[derive(Debug, Clone)]
struct Entry {
    host: String,
    port: Option<u16>,
    /// Whether plain http is allowed too.
    http: bool,
}

impl HostAllowList {
    /// An allow-list; fails with [`Error::Config`] (field `allow_hosts`) on an entry that is not
    /// `host`, `host:port` or `http(s)://host[:port]`.
    pub fn new<I, H>(hosts: I) -> Result<HostAllowList, Error>
    where
        I: IntoIterator<Item = H>,
        H: AsRef<str>,
    {
        let mut list = Vec::new();
        for entry in hosts {
            let entry = entry.as_ref().trim();
            let (scheme, rest) = match entry.split_once("://") {
                Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
                None => (None, entry),
            };
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            let authority: http::uri::Authority = rest.parse().map_err(|_| bad(entry))?;
            if rest.is_empty() || authority.as_str().contains('@') {
                return Err(bad(entry));
            }
            let host = authority.host().to_ascii_lowercase();
            let http = match scheme.as_deref() {
                None => is_loopback(&host),
                Some("https") => false,
                Some("http") => true,
                Some(_) => return Err(bad(entry)),
            };
            list.push(Entry {
                host,
                port: authority.port_u16(),
                http,
            });
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

    /// Whether a token may go to `host` at `port` over `scheme` (`None`: not known).
    pub fn allows_url(&self, scheme: Option<&str>, host: &str, port: Option<u16>) -> bool {
        let plain = match scheme {
            None => None,
            Some(s) if s.eq_ignore_ascii_case("https") => Some(false),
            Some(s) if s.eq_ignore_ascii_case("http") => Some(true),
            Some(_) => return false,
        };
        self.hosts.iter().any(|entry| {
            entry.host.eq_ignore_ascii_case(host)
                && (entry.port.is_none() || entry.port == port)
                && (plain != Some(true) || entry.http)
        })
    }

    /// Whether a token may go with `request`. A request without a host (no authority in the
    /// URI, no `Host` header) is not allowed.
    pub fn allows<B>(&self, request: &Request<B>) -> bool {
        let uri = request.uri();
        if let Some(host) = uri.host() {
            return self.allows_url(uri.scheme_str(), host, uri.port_u16());
        }
        let header = request.headers().get(HOST).and_then(|h| h.to_str().ok());
        match header.and_then(|h| h.parse::<http::uri::Authority>().ok()) {
            Some(authority) => {
                self.allows_url(uri.scheme_str(), authority.host(), authority.port_u16())
            }
            None => false,
        }
    }
}

/// Whether `host` is this machine (a token over plain http does not leave it).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn bad(entry: &str) -> Error {
    Error::Config {
        field: "allow_hosts",
        message: format!(
            "{entry:?} is not a host name, host:port or http(s)://host[:port], e.g. \
             \"api.example.com\""
        ),
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
    fn the_scheme_matters() {
        let hosts = HostAllowList::new([
            "api.example.com",
            "https://secure.test",
            "http://sidecar:8080",
        ])
        .unwrap();
        let allows = |uri: &str| hosts.allows(&Request::get(uri).body(()).unwrap());
        // (uri, allowed)
        for (uri, want) in [
            ("https://api.example.com/x", true),
            ("http://api.example.com/x", false),
            ("https://secure.test/x", true),
            ("http://secure.test/x", false),
            ("http://sidecar:8080/x", true),
            ("https://sidecar:8080/x", true),
            ("http://sidecar:9090/x", false),
            ("ftp://api.example.com/x", false),
        ] {
            assert_eq!(allows(uri), want, "{uri}");
        }
        let loopback = HostAllowList::new(["localhost", "127.0.0.1", "[::1]"]).unwrap();
        for uri in [
            "http://localhost:1/x",
            "http://127.0.0.1/x",
            "http://[::1]:8/x",
        ] {
            assert!(
                loopback.allows(&Request::get(uri).body(()).unwrap()),
                "{uri}"
            );
        }
    }

    #[test]
    fn bad_entries_name_the_field() {
        for bad in ["", "https://x/y", "user@host", "a b", "ftp://x", "https://"] {
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
