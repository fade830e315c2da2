//! The state every handler shares: clients, issued tokens, recordings, faults, the clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Provider;
use crate::config::{AzupayClient, Client, RateLimit, SandboxConfig};
use crate::control::{self, Fault, FaultPoint, RecordedRequest};

/// Everything behind the server, shared by the handlers and the [`Sandbox`](crate::Sandbox)
/// handle.
pub(crate) struct Shared {
    pub(crate) base_url: String,
    pub(crate) jwt_key: [u8; 32],
    state: Mutex<State>,
}

/// An Azupay client and its OAuth 2.0 state.
#[derive(Clone)]
pub(crate) struct AzupayAccount {
    pub(crate) client_id: String,
    pub(crate) api_key: String,
    pub(crate) allowed_scopes: Vec<String>,
    pub(crate) oauth2_client_id: String,
    pub(crate) oauth2_client_secret: String,
    pub(crate) enabled: bool,
}

/// A token the sandbox issued.
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    pub(crate) provider: Provider,
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    /// Unix seconds on the sandbox clock.
    pub(crate) expires_at: u64,
    pub(crate) revoked: bool,
}

pub(crate) struct State {
    pub(crate) azupay: Vec<AzupayAccount>,
    pub(crate) clients: [Vec<Client>; 5],
    pub(crate) lifetimes: [Duration; 5],
    pub(crate) tokens: HashMap<String, IssuedToken>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) tokens_issued: HashMap<(Provider, String), u64>,
    pub(crate) enable_calls: HashMap<String, u64>,
    /// One queue per provider's token endpoint, then Azupay enable's, then Azupay details'.
    pub(crate) faults: [VecDeque<Fault>; control::FAULT_QUEUES],
    pub(crate) clock_offset: Duration,
    pub(crate) payu_rate_limit: Option<RateLimit>,
    /// Start (sandbox unix seconds) and count of PayU's current rate-limit window.
    pub(crate) payu_window: Option<(u64, u32)>,
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig, base_url: String) -> Self {
        let mut jwt_key = [0u8; 32];
        rand::fill(&mut jwt_key);
        let azupay = config
            .azupay
            .into_iter()
            .map(|c: AzupayClient| AzupayAccount {
                oauth2_client_id: c.oauth2_client_id.unwrap_or_else(|| random_alnum(26)),
                oauth2_client_secret: c.oauth2_client_secret.unwrap_or_else(|| random_hex(28)),
                client_id: c.client_id,
                api_key: c.api_key,
                allowed_scopes: c.allowed_scopes,
                enabled: c.enabled,
            })
            .collect();
        let state = State {
            azupay,
            clients: [
                Vec::new(),
                config.autopay,
                config.payu,
                config.pyng,
                config.afterpay,
            ],
            lifetimes: config.lifetimes,
            tokens: HashMap::new(),
            requests: Vec::new(),
            tokens_issued: HashMap::new(),
            enable_calls: HashMap::new(),
            faults: Default::default(),
            clock_offset: Duration::ZERO,
            payu_rate_limit: config.payu_rate_limit,
            payu_window: None,
        };
        Shared {
            base_url,
            jwt_key,
            state: Mutex::new(state),
        }
    }

    /// The state; a panic in another handler does not make it unusable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Base URL of a provider's prefix, e.g. `http://127.0.0.1:1234/payu`.
    pub(crate) fn prefix_url(&self, provider: Provider) -> String {
        format!("{}/{}", self.base_url, provider.as_str())
    }
}

impl State {
    /// Now, in unix seconds, on the sandbox clock (real time plus the offset of `advance`).
    pub(crate) fn now(&self) -> u64 {
        let now = SystemTime::now() + self.clock_offset;
        now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    pub(crate) fn lifetime(&self, provider: Provider) -> u64 {
        self.lifetimes[provider.index()].as_secs()
    }

    pub(crate) fn client(&self, provider: Provider, id: &str) -> Option<&Client> {
        self.clients[provider.index()].iter().find(|c| c.id == id)
    }

    /// Store a token and count it for its client.
    pub(crate) fn issue(&mut self, token: String, issued: IssuedToken) {
        *self
            .tokens_issued
            .entry((issued.provider, issued.client_id.clone()))
            .or_default() += 1;
        self.tokens.insert(token, issued);
    }
}

/// `len` random characters from `[a-z0-9]` (Cognito-style client ids).
pub(crate) fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// `bytes` random bytes as lower-case hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Run `handler` under the next scripted fault of `point`, if any.
pub(crate) async fn faulted<F>(
    shared: Arc<Shared>,
    point: FaultPoint,
    handler: F,
) -> axum::response::Response
where
    F: std::future::Future<Output = axum::response::Response>,
{
    let fault = shared.lock().faults[point.index()].pop_front();
    control::under(fault, handler).await
}
