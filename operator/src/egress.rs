//! The egress policy: the hosts the operator may send secrets to.
//!
//! Every call the operator makes carries a secret: the Azupay API key (enable and details
//! calls) or a client secret (token requests). Whoever may create an OAuthClient chooses those
//! URLs (`spec.azupay.endpoint`, `spec.tokenUrl`) or lets a provider choose them (the
//! `oauth2TokenUrl` of Azupay's details answer), so each URL is checked against this
//! operator-wide policy before anything is sent:
//! - `https://` only; plain `http://` only to a loopback host (`127.0.0.0/8`, `::1`,
//!   `localhost`) and only when the operator was started with `--egress-allow-http-loopback`
//!   (for local tests against a sandbox);
//! - the host (`host`, or `host:port`) must be on the allow-list: by default the public hosts of
//!   the providers' documents ([`clientcreds::provider::Preset::public_hosts`]), written
//!   [`PRESET_HOSTS`] in `--egress-allow-hosts` (Helm value `egress.allowHosts`).
//!
//! A refused URL ends as the reason `EgressDenied` in a condition and an event naming the host
//! and the fix; nothing is sent.
//!
//! ```
//! use clientcreds_operator::egress::EgressPolicy;
//!
//! let policy = EgressPolicy::default();
//! assert!(policy.check("spec.tokenUrl", "https://accounts.payu.in/oauth/token").is_ok());
//! let refused = policy.check("spec.tokenUrl", "https://collector.example/token").unwrap_err();
//! assert!(refused.contains("collector.example") && refused.contains("--egress-allow-hosts"));
//!
//! let tests = EgressPolicy::new(["127.0.0.1"], true)?;
//! assert!(tests.check("spec.tokenUrl", "http://127.0.0.1:8080/token").is_ok());
//! # Ok::<(), clientcreds_operator::egress::EgressConfigError>(())
//! ```

use clientcreds::Provider;
use clientcreds::bearer::HostAllowList;
use url::{Host, Url};

/// The `--egress-allow-hosts` entry that stands for the public hosts of every provider preset.
pub const PRESET_HOSTS: &str = "@presets";

/// The flag, environment variable and Helm value that set the allow-list (for messages).
const ALLOW_HOSTS_FIX: &str =
    "--egress-allow-hosts (env EGRESS_ALLOW_HOSTS, Helm value egress.allowHosts)";
/// The flag, environment variable and Helm value that allow plain http to loopback.
const HTTP_LOOPBACK_FIX: &str = "--egress-allow-http-loopback (env EGRESS_ALLOW_HTTP_LOOPBACK, Helm value egress.allowHttpLoopback)";

/// A bad `--egress-allow-hosts` entry.
#[derive(Debug, thiserror::Error)]
#[error("--egress-allow-hosts: {0}")]
pub struct EgressConfigError(String);

/// Where the operator may send secrets. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EgressPolicy {
    allow: HostAllowList,
    hosts: Vec<String>,
    http_loopback: bool,
}

impl Default for EgressPolicy {
    /// The presets' public hosts, https only.
    fn default() -> Self {
        let hosts = preset_hosts();
        Self {
            allow: HostAllowList::new(&hosts)
                .unwrap_or_else(|_| unreachable!("the presets' hosts are valid host names")),
            hosts,
            http_loopback: false,
        }
    }
}

fn preset_hosts() -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for host in Provider::ALL.iter().flat_map(|p| p.preset().public_hosts()) {
        if !hosts.iter().any(|h| h == host) {
            hosts.push(host.to_owned());
        }
    }
    hosts
}

impl EgressPolicy {
    /// A policy allowing `hosts` (`host` or `host:port`; [`PRESET_HOSTS`] stands for the
    /// presets' public hosts) and, with `allow_http_loopback`, plain http to loopback hosts on
    /// the list.
    pub fn new<I, S>(hosts: I, allow_http_loopback: bool) -> Result<Self, EgressConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut expanded: Vec<String> = Vec::new();
        for entry in hosts {
            let entry = entry.as_ref().trim();
            let more = if entry.eq_ignore_ascii_case(PRESET_HOSTS) {
                preset_hosts()
            } else if entry.is_empty() {
                Vec::new()
            } else {
                vec![entry.to_ascii_lowercase()]
            };
            for h in more {
                if !expanded.contains(&h) {
                    expanded.push(h);
                }
            }
        }
        const HOW: &str = "list hosts as host or host:port, comma-separated, @presets for the \
                           providers' public hosts";
        if expanded.is_empty() {
            return Err(EgressConfigError(format!(
                "the allow-list is empty, so no secret could be sent anywhere; {HOW}"
            )));
        }
        // the scheme is the policy's own rule (https; http to loopback only with the opt-in),
        // never an entry's
        if let Some(url) = expanded.iter().find(|h| h.contains("://")) {
            return Err(EgressConfigError(format!(
                "{url:?} is a URL, not a host; {HOW}"
            )));
        }
        let allow = HostAllowList::new(&expanded).map_err(|e| {
            let problem = match e {
                clientcreds::Error::Config { message, .. } => message,
                other => other.to_string(),
            };
            EgressConfigError(format!("{problem}; {HOW}"))
        })?;
        Ok(Self {
            allow,
            hosts: expanded,
            http_loopback: allow_http_loopback,
        })
    }

    /// The allowed hosts, after expanding [`PRESET_HOSTS`].
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Whether plain http to loopback hosts is allowed.
    pub fn allows_http_loopback(&self) -> bool {
        self.http_loopback
    }

    /// Checks `url`, named `what` in the message (e.g. `spec.tokenUrl`), before a secret is sent
    /// to it. The error is the message of the `EgressDenied` condition and event: it names the
    /// host (never the whole URL, which may carry credentials) and the fix, and says that
    /// nothing was sent.
    pub fn check(&self, what: &str, url: &str) -> Result<(), String> {
        let Ok(parsed) = Url::parse(url) else {
            return Err(format!(
                "{what} is not a valid URL; nothing was sent: set an https:// URL"
            ));
        };
        let Some(host) = parsed.host() else {
            return Err(format!(
                "{what} has no host; nothing was sent: set an https:// URL"
            ));
        };
        let name = host.to_string();
        match parsed.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {
                if !self.http_loopback {
                    return Err(format!(
                        "{what} uses plain http:// to the loopback host {name}, which the operator \
                         allows only when started with {HTTP_LOOPBACK_FIX}; nothing was sent: use \
                         https:// or (for local tests only) set that flag"
                    ));
                }
            }
            scheme => {
                return Err(format!(
                    "{what} uses {scheme}:// to host {name}, but the operator sends secrets only \
                     over https (plain http only to loopback hosts, for tests); nothing was sent: \
                     use an https:// URL"
                ));
            }
        }
        let port = parsed.port_or_known_default();
        // the scheme is checked above, by the operator's own rules
        if !self.allow.allows_url(None, &name, port) {
            return Err(format!(
                "{what} points to host {name}, which is not in the operator's egress allow-list \
                 ({}); nothing was sent: if {name} is a host you trust, the operator's admin adds \
                 it with {ALLOW_HOSTS_FIX}",
                self.hosts.join(", ")
            ));
        }
        Ok(())
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_presets_public_hosts_over_https() {
        let p = EgressPolicy::default();
        for url in [
            "https://api-uat.azupay.com.au/v1",
            "https://auth-uat.azupay.com.au/oauth2/token",
            "https://api-auth.autopay.io/oauth/token",
            "https://uat-accounts.payu.in/oauth/token",
            "https://accounts.payu.in:443/oauth/token",
        ] {
            assert_eq!(p.check("u", url), Ok(()), "{url}");
        }
        assert_eq!(
            p.hosts(),
            EgressPolicy::new([PRESET_HOSTS], false).unwrap().hosts()
        );
        assert!(!p.allows_http_loopback());
    }

    #[test]
    fn refusals_name_the_field_the_host_and_the_fix() {
        let p = EgressPolicy::default();
        // table: url → words the message must hold
        let cases: [(&str, &[&str]); 6] = [
            (
                "https://collector.example/token",
                &[
                    "spec.tokenUrl",
                    "collector.example",
                    "--egress-allow-hosts",
                    "egress.allowHosts",
                ],
            ),
            // a look-alike host
            (
                "https://accounts.payu.in.evil.example/t",
                &["accounts.payu.in.evil.example"],
            ),
            // http to a public host: never, whatever the list
            ("http://accounts.payu.in/oauth/token", &["http://", "https"]),
            // http to loopback without the opt-in
            (
                "http://127.0.0.1:8080/token",
                &["127.0.0.1", "--egress-allow-http-loopback"],
            ),
            ("ftp://accounts.payu.in/x", &["ftp://"]),
            ("not a url", &["not a valid URL"]),
        ];
        for (url, words) in cases {
            let refused = p.check("spec.tokenUrl", url);
            let Err(message) = refused else {
                panic!("{url} was allowed");
            };
            assert!(message.contains("nothing was sent"), "{message}");
            for w in words {
                assert!(message.contains(w), "{url}: {message} lacks {w}");
            }
        }
        // credentials in a URL never reach the message
        let m = p
            .check("spec.tokenUrl", "https://user:hunter2@collector.example/t")
            .unwrap_err();
        assert!(!m.contains("hunter2"), "{m}");
    }

    #[test]
    fn http_only_to_listed_loopback_hosts_and_only_when_opted_in() {
        let p = EgressPolicy::new(["127.0.0.1", "localhost:9000", PRESET_HOSTS], true).unwrap();
        assert_eq!(p.check("u", "http://127.0.0.1:1234/t"), Ok(()));
        assert_eq!(p.check("u", "http://localhost:9000/t"), Ok(()));
        // an entry without a port allows the host on any port, one with a port only that port
        assert_eq!(p.check("u", "https://accounts.payu.in:8443/t"), Ok(()));
        // loopback but not listed (port), or listed but not loopback
        assert!(p.check("u", "http://localhost:9001/t").is_err());
        assert!(p.check("u", "http://127.0.0.2/t").is_err());
        assert!(p.check("u", "http://accounts.payu.in/t").is_err());
        // the presets are still there
        assert_eq!(p.check("u", "https://accounts.payu.in/t"), Ok(()));
        // without the opt-in the same list refuses http
        let p = EgressPolicy::new(["127.0.0.1"], false).unwrap();
        assert!(p.check("u", "http://127.0.0.1:1234/t").is_err());
        assert_eq!(p.check("u", "https://127.0.0.1:1234/t"), Ok(()));
    }

    #[test]
    fn bad_lists_are_refused_naming_the_flag() {
        for bad in [vec!["https://x.example/"], vec![], vec![" "], vec!["a b"]] {
            let err = EgressPolicy::new(bad.clone(), false)
                .unwrap_err()
                .to_string();
            assert!(err.contains("--egress-allow-hosts"), "{bad:?}: {err}");
        }
    }
}
