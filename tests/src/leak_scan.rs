//! The R5 leak scan of RELIABILITY.md: every secret the e2e suite used, looked for in every form
//! it could leak in, over everything the suite captured (operator logs in text and JSON,
//! events, OAuthClients, Secret metadata, `/metrics` scrapes, panic messages, the logs of the
//! operator processes).
//!
//! The operator tests write their captures under `<target>/leak-scan/` and the secrets to look
//! for under `<target>/leak-scan-secrets/` (outside the scanned directory, so the list itself is
//! never a hit); `clientcreds-e2e leak-scan`, run by `scripts/test` after the tests, scans. A
//! hit names the file, the byte offset, the form and which secret (by its label) — never the
//! secret itself.
//!
//! ```
//! use clientcreds_e2e::leak_scan::{SecretList, scan_dir};
//!
//! let dir = tempfile::tempdir().unwrap();
//! // a provider echoed the HTTP Basic header of client `payu` into a log line
//! std::fs::write(dir.path().join("operator.log"), "error: Basic cGF5dTpzM2NyK3QvMQ==\n").unwrap();
//! let mut list = SecretList::default();
//! list.client_ids.push("payu".into());
//! list.add("payu client_secret", "s3cr+t/1");
//! let report = scan_dir(dir.path(), &list).unwrap();
//! let basic = report.hits.iter().find(|h| h.form.contains("HTTP Basic")).unwrap();
//! let shown = basic.to_string();
//! assert!(shown.contains("operator.log") && shown.contains("payu client_secret"), "{shown}");
//! assert!(!report.to_string().contains("s3cr+t/1") && !shown.contains("s3cr+t/1"));
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Secrets shorter than this are not looked for: too short to tell from ordinary text.
pub const MIN_SECRET_LEN: usize = 6;

/// The name of the directory (in the target directory) that holds the captures.
pub const CAPTURE_DIR: &str = "leak-scan";
/// The name of the directory (in the target directory) that holds the secret lists.
pub const SECRETS_DIR: &str = "leak-scan-secrets";

/// What `application/x-www-form-urlencoded` leaves as is (WHATWG URL): `*-._` and alphanumerics.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');
/// RFC 3986's unreserved characters: `-._~` and alphanumerics.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The target directory this program runs from: the nearest ancestor of the executable that
/// holds cargo's `CACHEDIR.TAG` (test binaries are in `<target>/debug/deps`, binaries in
/// `<target>/debug`).
pub fn target_dir() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "{} is not inside a cargo target directory (no CACHEDIR.TAG above it)",
                exe.display()
            ))
        })
}

/// The secrets to look for, with the client ids they may be paired with (`id:secret`).
#[derive(Clone, Default)]
pub struct SecretList {
    /// Client ids: each secret is also looked for as the base64 of `id:secret`.
    pub client_ids: Vec<String>,
    /// `(label, secret)`: the label names the secret in a hit (e.g. `payu client_secret`).
    pub secrets: Vec<(String, String)>,
}

impl fmt::Debug for SecretList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretList")
            .field("client_ids", &self.client_ids)
            .field(
                "secrets",
                &self.secrets.iter().map(|(l, _)| l).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SecretList {
    /// Adds a secret under `label`.
    pub fn add(&mut self, label: impl Into<String>, secret: impl Into<String>) {
        self.secrets.push((label.into(), secret.into()));
    }

    /// Adds everything of `other`.
    pub fn extend(&mut self, other: SecretList) {
        self.client_ids.extend(other.client_ids);
        self.secrets.extend(other.secrets);
    }

    /// The list as JSON (`{"client_ids": [...], "secrets": [{"label", "secret"}]}`).
    pub fn to_json(&self) -> String {
        let secrets: Vec<_> = self
            .secrets
            .iter()
            .map(|(label, secret)| serde_json::json!({"label": label, "secret": secret}))
            .collect();
        serde_json::json!({"client_ids": self.client_ids, "secrets": secrets}).to_string()
    }

    /// Reads what [`SecretList::to_json`] wrote.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let strings = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let client_ids = value["client_ids"]
            .as_array()
            .ok_or("no `client_ids` array")?
            .iter()
            .filter_map(strings)
            .collect();
        let secrets = value["secrets"]
            .as_array()
            .ok_or("no `secrets` array")?
            .iter()
            .map(|s| {
                Some((
                    s["label"].as_str()?.to_owned(),
                    s["secret"].as_str()?.to_owned(),
                ))
            })
            .collect::<Option<_>>()
            .ok_or("a `secrets` entry without a string `label` and `secret`")?;
        Ok(Self {
            client_ids,
            secrets,
        })
    }

    /// The union of every `*.json` list under `dir` (recursively).
    pub fn read_dir(dir: &Path) -> std::io::Result<Self> {
        let mut list = Self::default();
        for file in files_under(dir)? {
            if file.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&file)?;
                let one = Self::from_json(&text).map_err(|e| {
                    std::io::Error::other(format!("{}: not a secret list: {e}", file.display()))
                })?;
                list.extend(one);
            }
        }
        Ok(list)
    }
}

/// One way a secret can be written: a name for reports and the text to look for.
#[derive(Clone, PartialEq, Eq)]
pub struct Form {
    /// How the secret was encoded, e.g. `base64 of id:secret (HTTP Basic, id payu)`.
    pub name: String,
    /// The encoded text.
    pub text: String,
}

impl fmt::Debug for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Form")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The part of the base64 of `secret` that does not depend on what surrounds it, when the
/// secret starts `offset` bytes (0, 1 or 2) into a base64-encoded blob. With offset 0 it is
/// the encoding of the secret alone, without its last partial character and padding.
fn base64_core(engine: &base64::engine::GeneralPurpose, secret: &[u8], offset: usize) -> String {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(secret);
    let encoded = engine.encode(&padded);
    // character i holds bits 6i..6i+6; the secret holds bits 8·offset..8·(offset+len)
    let start = (8 * offset).div_ceil(6);
    let end = (8 * (offset + secret.len())) / 6;
    encoded.get(start..end).unwrap_or_default().to_owned()
}

/// Every form `secret` is looked for in: raw; escaped as in JSON and `Debug`; percent-encoded
/// (form-urlencoded, RFC 3986, every non-alphanumeric byte; upper- and lower-case hex);
/// base64 and base64url, alone and at each offset inside a larger blob; and for each of
/// `client_ids`, the base64 of `id:secret` (HTTP Basic), also with both form-urlencoded first
/// (RFC 6749 §2.3.1). Forms equal to an earlier one are left out.
pub fn forms(secret: &str, client_ids: &[String]) -> Vec<Form> {
    let mut out: Vec<Form> = Vec::new();
    let mut push = |name: String, text: String| {
        if text.len() >= MIN_SECRET_LEN.min(secret.len()) && !out.iter().any(|f| f.text == text) {
            out.push(Form { name, text });
        }
    };
    push("raw".into(), secret.to_owned());
    let escaped = serde_json::to_string(secret).unwrap_or_default();
    push(
        "escaped (JSON, Debug)".into(),
        escaped.trim_matches('"').to_owned(),
    );
    let form = utf8_percent_encode(secret, FORM)
        .to_string()
        .replace("%20", "+");
    let rfc3986 = utf8_percent_encode(secret, RFC3986).to_string();
    let all = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
    for (name, text) in [
        ("percent-encoded (form-urlencoded)", form),
        ("percent-encoded (RFC 3986)", rfc3986),
        ("percent-encoded (every non-alphanumeric byte)", all),
    ] {
        push(name.into(), text.clone());
        push(format!("{name}, lower-case hex"), lower_hex(&text));
    }
    for (engine, alphabet) in [(&STANDARD, "base64"), (&URL_SAFE, "base64url")] {
        push(alphabet.into(), base64_core(engine, secret.as_bytes(), 0));
        for offset in 1..3 {
            push(
                format!("{alphabet} inside a larger blob (offset {offset})"),
                base64_core(engine, secret.as_bytes(), offset),
            );
        }
    }
    let form_encoded = |s: &str| utf8_percent_encode(s, FORM).to_string().replace("%20", "+");
    for id in client_ids {
        push(
            format!("base64 of id:secret (HTTP Basic, id {id})"),
            base64_core(&STANDARD, format!("{id}:{secret}").as_bytes(), 0),
        );
        push(
            format!("base64 of form-urlencoded id:secret (RFC 6749 2.3.1, id {id})"),
            base64_core(
                &STANDARD,
                format!("{}:{}", form_encoded(id), form_encoded(secret)).as_bytes(),
                0,
            ),
        );
    }
    out
}

/// `text` with the hex digits of its percent escapes in lower case.
fn lower_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for c in text.chars() {
        if c == '%' {
            rest = 2;
            out.push(c);
        } else if rest > 0 {
            rest -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A secret found: where, in which form, and which secret (by label). Shows no secret.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The file it is in.
    pub file: PathBuf,
    /// The byte offset of its first occurrence in that file.
    pub offset: usize,
    /// How many times this form of this secret occurs in that file.
    pub count: usize,
    /// The form ([`Form::name`]).
    pub form: String,
    /// The secret's label.
    pub label: String,
}

impl fmt::Display for Hit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (byte {}, {} time(s)): {} — {}",
            self.file.display(),
            self.offset,
            self.count,
            self.label,
            self.form
        )
    }
}

/// What a scan looked at and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Files scanned.
    pub files: usize,
    /// Bytes scanned.
    pub bytes: u64,
    /// Distinct secrets looked for (at least [`MIN_SECRET_LEN`] bytes).
    pub secrets: usize,
    /// Distinct secrets left out as shorter than [`MIN_SECRET_LEN`].
    pub too_short: usize,
    /// Client ids each secret was paired with.
    pub client_ids: usize,
    /// Distinct texts looked for (every form of every secret).
    pub patterns: usize,
    /// What was found.
    pub hits: Vec<Hit>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "leak scan: {} files, {} bytes; {} secrets (× their forms, {} client ids for id:secret: \
             {} patterns; {} secrets under {MIN_SECRET_LEN} bytes left out); {} hit(s)",
            self.files,
            self.bytes,
            self.secrets,
            self.client_ids,
            self.patterns,
            self.too_short,
            self.hits.len()
        )
    }
}

/// Every regular file under `dir`, sorted.
fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Looks for every form of every secret of `list` in every file under `dir`.
pub fn scan_dir(dir: &Path, list: &SecretList) -> std::io::Result<Report> {
    let ids: Vec<String> = list
        .client_ids
        .iter()
        .filter(|id| !id.is_empty())
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let secrets: BTreeSet<(&str, &str)> = list
        .secrets
        .iter()
        .map(|(label, secret)| (secret.as_str(), label.as_str()))
        .collect();
    let mut report = Report {
        client_ids: ids.len(),
        ..Report::default()
    };
    // one pattern per distinct text; the first secret and form that give it name it
    let mut patterns: Vec<String> = Vec::new();
    let mut names: Vec<(String, String)> = Vec::new();
    let mut seen_texts = std::collections::HashSet::new();
    let mut seen_secrets = BTreeSet::new();
    for (secret, label) in secrets {
        if !seen_secrets.insert(secret) {
            continue;
        }
        if secret.len() < MIN_SECRET_LEN {
            report.too_short += 1;
            continue;
        }
        report.secrets += 1;
        for form in forms(secret, &ids) {
            if seen_texts.insert(form.text.clone()) {
                patterns.push(form.text);
                names.push((label.to_owned(), form.name));
            }
        }
    }
    report.patterns = patterns.len();
    let matcher = AhoCorasick::new(&patterns).map_err(std::io::Error::other)?;
    for file in files_under(dir)? {
        let bytes = std::fs::read(&file)?;
        report.files += 1;
        report.bytes += bytes.len() as u64;
        let mut found: std::collections::BTreeMap<usize, (usize, usize)> = Default::default();
        for m in matcher.find_overlapping_iter(&bytes) {
            let entry = found
                .entry(m.pattern().as_usize())
                .or_insert((m.start(), 0));
            entry.1 += 1;
        }
        for (pattern, (offset, count)) in found {
            let (label, form) = &names[pattern];
            report.hits.push(Hit {
                file: file.clone(),
                offset,
                count,
                form: form.clone(),
                label: label.clone(),
            });
        }
    }
    Ok(report)
}

/// Removes the captures and secret lists of an earlier run from `target`.
pub fn clear(target: &Path) -> std::io::Result<()> {
    for dir in [CAPTURE_DIR, SECRETS_DIR] {
        match std::fs::remove_dir_all(target.join(dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Scans `<target>/leak-scan` for the secrets listed under `<target>/leak-scan-secrets`. An
/// error when either is missing or empty: a scan of nothing proves nothing.
pub fn scan_target(target: &Path) -> std::io::Result<Report> {
    let captures = target.join(CAPTURE_DIR);
    let lists = target.join(SECRETS_DIR);
    let nothing = |what: &Path| {
        std::io::Error::other(format!(
            "nothing captured in {}: run the operator e2e tests first (`cargo test -p \
             clientcreds-e2e --test operator_refresh`, …); they write their captures there",
            what.display()
        ))
    };
    if !captures.is_dir() {
        return Err(nothing(&captures));
    }
    if !lists.is_dir() {
        return Err(nothing(&lists));
    }
    let list = SecretList::read_dir(&lists)?;
    let report = scan_dir(&captures, &list)?;
    if report.files == 0 {
        return Err(nothing(&captures));
    }
    if report.secrets == 0 {
        return Err(nothing(&lists));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SECRET: &str = r#"s3cr+t/ä &="%~*\"#;
    const ID: &str = "client 1";

    fn list() -> SecretList {
        let mut list = SecretList::default();
        list.client_ids.push(ID.into());
        list.add("the test secret", SECRET);
        list
    }

    /// Each form alone in its own file, inside ordinary text: each file has exactly that hit
    /// (a form that contains another may add that one), and no report shows the secret.
    #[test]
    fn every_form_planted_in_a_file_is_found_and_named_without_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let all = forms(SECRET, &[ID.to_owned()]);
        let names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
        for want in [
            "raw",
            "escaped (JSON, Debug)",
            "percent-encoded (form-urlencoded)",
            "percent-encoded (form-urlencoded), lower-case hex",
            "percent-encoded (RFC 3986)",
            "percent-encoded (every non-alphanumeric byte)",
            "base64",
            "base64 inside a larger blob (offset 1)",
            "base64 inside a larger blob (offset 2)",
            "base64url",
            "base64 of id:secret (HTTP Basic, id client 1)",
            "base64 of form-urlencoded id:secret (RFC 6749 2.3.1, id client 1)",
        ] {
            assert!(names.contains(&want), "no form {want:?} in {names:?}");
        }
        for (n, form) in all.iter().enumerate() {
            std::fs::write(
                dir.path().join(format!("file-{n}.log")),
                format!(
                    "2026-12-04T18:00:00Z INFO something {{x={}}} done\n",
                    form.text
                ),
            )
            .unwrap();
        }
        let report = scan_dir(dir.path(), &list()).unwrap();
        assert_eq!(report.files, all.len());
        assert_eq!(report.secrets, 1);
        for (n, form) in all.iter().enumerate() {
            let file = dir.path().join(format!("file-{n}.log"));
            let hit = report
                .hits
                .iter()
                .find(|h| h.file == file && h.form == form.name)
                .unwrap_or_else(|| panic!("{} not found in its file", form.name));
            assert_eq!(hit.label, "the test secret");
            assert_eq!(hit.count, 1);
            assert!(hit.offset > 0);
        }
        let shown = format!("{report}\n{report:?}\n{:?}", list());
        let shown = report
            .hits
            .iter()
            .fold(shown, |s, h| format!("{s}\n{h}\n{h:?}"));
        for form in &all {
            assert!(
                !shown.contains(&form.text),
                "a report shows the secret ({})",
                form.name
            );
        }
    }

    /// The base64 of the secret inside a larger base64 blob (e.g. a whole Secret's data, or
    /// a JSON document encoded as a whole) is found at any alignment.
    #[test]
    fn base64_inside_a_larger_blob_is_found_at_any_offset() {
        let dir = tempfile::tempdir().unwrap();
        for prefix in ["", "a", "ab", "abc", "abcd"] {
            let blob = STANDARD.encode(format!("{prefix}{{\"secret\":\"{SECRET}\"}}"));
            std::fs::write(dir.path().join(format!("blob-{}.txt", prefix.len())), blob).unwrap();
        }
        let report = scan_dir(dir.path(), &list()).unwrap();
        let files: BTreeSet<_> = report.hits.iter().map(|h| h.file.clone()).collect();
        assert_eq!(files.len(), 5, "{report}");
    }

    #[test]
    fn clean_files_have_no_hits_and_short_secrets_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.log"), "nothing secret here: s3cr t\n").unwrap();
        let mut list = list();
        list.add("short", "abc");
        list.add("the same secret twice", SECRET);
        let report = scan_dir(dir.path(), &list).unwrap();
        assert!(report.hits.is_empty(), "{report}");
        assert_eq!((report.secrets, report.too_short), (1, 1));
    }

    /// The captures and the lists in their two directories; nothing captured is an error.
    #[test]
    fn a_target_directory_is_scanned_and_an_empty_one_refused() {
        let target = tempfile::tempdir().unwrap();
        assert!(scan_target(target.path()).is_err());
        let captures = target
            .path()
            .join(CAPTURE_DIR)
            .join("operator_refresh/echo");
        let lists = target.path().join(SECRETS_DIR).join("operator_refresh");
        std::fs::create_dir_all(&captures).unwrap();
        std::fs::create_dir_all(&lists).unwrap();
        std::fs::write(lists.join("echo.json"), list().to_json()).unwrap();
        assert!(scan_target(target.path()).is_err(), "no capture file");
        std::fs::write(captures.join("events.json"), "[]").unwrap();
        let report = scan_target(target.path()).unwrap();
        assert_eq!((report.files, report.hits.len()), (1, 0));
        let urlencoded = forms(SECRET, &[])
            .into_iter()
            .find(|f| f.name == "percent-encoded (form-urlencoded)")
            .unwrap();
        std::fs::write(captures.join("metrics-0.txt"), urlencoded.text).unwrap();
        let report = scan_target(target.path()).unwrap();
        assert_eq!(report.hits.len(), 1, "{report}");
        assert!(
            report.hits[0]
                .file
                .ends_with("operator_refresh/echo/metrics-0.txt")
        );
    }

    #[test]
    fn a_secret_list_round_trips_through_json() {
        let list = list();
        let back = SecretList::from_json(&list.to_json()).unwrap();
        assert_eq!(back.client_ids, list.client_ids);
        assert_eq!(back.secrets, list.secrets);
        assert!(SecretList::from_json("{}").is_err());
    }
}
