//! A token directory mounted from a Kubernetes Secret.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{TokenFuture, TokenSource};
use crate::cache::{CacheConfig, RefreshAt, TokenCache};
use crate::{Error, Token, token_secret};

/// The file holding the access token (required): [`token_secret::ACCESS_TOKEN`].
pub const ACCESS_TOKEN_FILE: &str = token_secret::ACCESS_TOKEN;
/// The file holding the token type (optional, `Bearer` when absent).
pub const TOKEN_TYPE_FILE: &str = token_secret::TOKEN_TYPE;
/// The file holding the expiry as an RFC 3339 timestamp (required).
pub const EXPIRES_AT_FILE: &str = token_secret::EXPIRES_AT;
/// The file holding the granted scopes (optional).
pub const SCOPE_FILE: &str = token_secret::SCOPE;
/// The symlink kubelet swaps atomically to publish a new version of a Secret volume.
const DATA_LINK: &str = "..data";

/// A token read from a directory such as a mounted Kubernetes Secret volume in the
/// [token-Secret format](crate::token_secret): files `access_token`, `token_type` (optional,
/// default `Bearer`), `expires_at` (RFC 3339, e.g. `2026-11-22T03:00:00Z`) and `scope`
/// (optional). Surrounding whitespace is ignored.
///
/// kubelet publishes a new version of a Secret by writing a new timestamped directory and
/// swapping the `..data` symlink to it in one rename; the file names in the mount are symlinks
/// through `..data`. This source resolves `..data` once per read, so all four files come from
/// the same version, and re-reads only when the `..data` target or a file's modification time
/// or size changed. It checks at most once per check interval (default 10 s) — on the request
/// path, in the background, while the current token keeps being served — and at once when the
/// cached token has expired.
///
/// A directory that is half written (a missing `access_token` or `expires_at`, an unparsable
/// expiry) or holds an expired token is an [`Error::Mounted`]: the previous token, while valid,
/// stays in service.
///
/// ```no_run
/// use std::time::Duration;
/// use clientcreds::source::{MountedToken, TokenSource};
///
/// # async fn run() -> Result<(), clientcreds::Error> {
/// let source = MountedToken::new("/var/run/secrets/clientcreds/payments")?
///     .check_interval(Duration::from_secs(5))?;
/// let token = source.token().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MountedToken {
    dir: Arc<Path>,
    cache: TokenCache,
}

/// What identifies one version of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    data_target: Option<PathBuf>,
    files: Vec<Option<(SystemTime, u64)>>,
}

/// The last version read.
struct Seen {
    fingerprint: Fingerprint,
    token: Token,
}

impl MountedToken {
    /// The default interval between checks of the directory.
    pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(10);

    /// A source reading the token directory `dir`. Nothing is read until the first call;
    /// use [`MountedToken::load`] to read eagerly and fail fast.
    pub fn new(dir: impl Into<PathBuf>) -> Result<MountedToken, Error> {
        Self::with_interval(dir.into(), Self::DEFAULT_CHECK_INTERVAL)
    }

    /// Checks the directory at most once per `interval` (while the token is valid).
    pub fn check_interval(self, interval: Duration) -> Result<MountedToken, Error> {
        Self::with_interval(self.dir.to_path_buf(), interval)
    }

    fn with_interval(dir: PathBuf, interval: Duration) -> Result<MountedToken, Error> {
        if interval.is_zero() {
            return Err(Error::Config {
                field: "check_interval",
                message: "the check interval of a mounted token must be greater than zero".into(),
            });
        }
        let dir: Arc<Path> = Arc::from(dir);
        let seen: Arc<Mutex<Option<Seen>>> = Arc::new(Mutex::new(None));
        let fetch_dir = Arc::clone(&dir);
        let fetch = move || {
            let dir = Arc::clone(&fetch_dir);
            let seen = Arc::clone(&seen);
            async move {
                let read_dir = Arc::clone(&dir);
                match tokio::task::spawn_blocking(move || read_if_changed(&read_dir, &seen)).await {
                    Ok(result) => result,
                    Err(join) => Err(Error::Mounted {
                        path: dir.to_path_buf(),
                        message: format!("reading the token directory failed: {join}"),
                        source: None,
                    }),
                }
            }
        };
        let config = CacheConfig::default()
            .refresh_at(RefreshAt::Interval(interval))
            .backoff(Duration::from_secs(1), interval.max(Duration::from_secs(1)))
            // Re-reading a file costs no provider anything: the interval may be short.
            .min_interval(interval.min(Duration::from_secs(1)))
            .name(format!("mounted:{}", dir.display()));
        Ok(MountedToken {
            dir,
            cache: TokenCache::with_config(fetch, config)?,
        })
    }

    /// Reads the directory now (or waits for the read in progress) and returns the token.
    pub async fn load(&self) -> Result<Arc<Token>, Error> {
        self.cache.token().await
    }

    /// The error of the last read while its backoff runs, e.g. a half-written directory
    /// (`None` after a successful read).
    pub fn last_error(&self) -> Option<Error> {
        self.cache.last_error()
    }

    /// The directory this source reads.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl fmt::Debug for MountedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountedToken")
            .field("dir", &self.dir)
            .field("cache", &self.cache)
            .finish()
    }
}

impl TokenSource for MountedToken {
    fn cached(&self) -> Option<Arc<Token>> {
        self.cache.cached()
    }

    fn cached_authorization(&self) -> Option<http::HeaderValue> {
        self.cache.cached_authorization()
    }

    fn fresh_authorization(&self) -> Option<crate::cache::FreshAuthorization> {
        self.cache.fresh_authorization()
    }

    fn token(&self) -> TokenFuture {
        Box::pin(self.cache.token())
    }

    fn invalidate(&self, token: &Token) -> bool {
        // The next call re-reads the directory; if the operator has not written a new token yet
        // the same one comes back, which is the best there is.
        self.cache.invalidate(token)
    }
}

fn mounted_error(path: &Path, message: impl Into<String>, source: Option<std::io::Error>) -> Error {
    Error::Mounted {
        path: path.to_path_buf(),
        message: message.into(),
        source: source.map(|e| Arc::new(e) as crate::error::BoxError),
    }
}

fn fingerprint(dir: &Path) -> Result<(Fingerprint, PathBuf), Error> {
    let link = dir.join(DATA_LINK);
    let data_target = match std::fs::read_link(&link) {
        Ok(target) => Some(target),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        // `..data` exists but is not a symlink (a plain directory): read through it.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => None,
        Err(e) => {
            return Err(mounted_error(
                &link,
                "cannot read the ..data symlink",
                Some(e),
            ));
        }
    };
    // Resolve `..data` once so every file comes from the same version.
    let base = match &data_target {
        Some(target) => dir.join(target),
        None => dir.to_path_buf(),
    };
    let files = token_secret::KEYS
        .iter()
        .map(|name| {
            std::fs::metadata(base.join(name))
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect();
    Ok((Fingerprint { data_target, files }, base))
}

fn read_if_changed(dir: &Path, seen: &Mutex<Option<Seen>>) -> Result<Token, Error> {
    let (fingerprint, base) = fingerprint(dir)?;
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(previous) = seen.as_ref()
        && previous.fingerprint == fingerprint
        && previous.token.is_valid_at(Instant::now())
    {
        return Ok(previous.token.clone());
    }
    let token = read_token(&base)?;
    if !token.is_valid_at(Instant::now()) {
        let at = jiff::Timestamp::try_from(token.expires_at())
            .map(|t| t.to_string())
            .unwrap_or_else(|_| "an unrepresentable time".into());
        return Err(mounted_error(
            &base.join(EXPIRES_AT_FILE),
            format!(
                "the mounted token expired at {at}; the operator that writes this Secret has not \
                 renewed it (check its OAuthClient status)"
            ),
            None,
        ));
    }
    tracing::info!(dir = %dir.display(), "mounted token read");
    *seen = Some(Seen {
        fingerprint,
        token: token.clone(),
    });
    Ok(token)
}

/// Reads one file of the directory; `None` when it does not exist.
fn read_file(base: &Path, name: &str) -> Result<Option<Vec<u8>>, Error> {
    let path = base.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(mounted_error(
            &path,
            format!("cannot read `{name}`"),
            Some(e),
        )),
    }
}

fn read_token(base: &Path) -> Result<Token, Error> {
    let mut files = Vec::with_capacity(token_secret::KEYS.len());
    for key in token_secret::KEYS {
        files.push((key, read_file(base, key)?));
    }
    token_secret::decode(|key| {
        files
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.as_deref())
    })
    .map_err(|e| {
        let file = e.key().unwrap_or(ACCESS_TOKEN_FILE);
        mounted_error(&base.join(file), e.to_string(), None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, token: &str, expires_at: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(ACCESS_TOKEN_FILE), format!("{token}\n")).unwrap();
        std::fs::write(dir.join(EXPIRES_AT_FILE), expires_at).unwrap();
    }

    fn in_an_hour() -> String {
        (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600)).to_string()
    }

    #[test]
    fn reads_a_plain_directory_with_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "plain-token", &in_an_hour());
        let token = read_token(tmp.path()).unwrap();
        assert_eq!(token.authorization(), "Bearer plain-token");
        assert_eq!(token.scope(), None);
    }

    #[test]
    fn bad_expiry_names_the_file_and_format() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "tok-secret-value", "tomorrow");
        let err = read_token(tmp.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("expires_at") && text.contains("RFC 3339"),
            "{text}"
        );
        assert!(!text.contains("tok-secret-value"));
    }

    #[test]
    fn missing_access_token_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(EXPIRES_AT_FILE), in_an_hour()).unwrap();
        let err = read_token(tmp.path()).unwrap_err();
        assert!(
            err.to_string().contains("`access_token` is missing"),
            "{err}"
        );
    }

    #[test]
    fn zero_interval_is_a_config_error() {
        let err = MountedToken::new("/nonexistent")
            .unwrap()
            .check_interval(Duration::ZERO)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Config {
                field: "check_interval",
                ..
            }
        ));
    }
}
