//! The mounted token source against a directory laid out as kubelet lays out a Secret volume:
//! timestamped data directories, a `..data` symlink swapped atomically, and file symlinks
//! through `..data`.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use clientcreds::Error;
use clientcreds::source::{MountedToken, TokenSource};

/// Moves the paused clock forward and lets the tasks woken by it run (the cache's timers).
async fn advance(by: Duration) {
    tokio::time::advance(by).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn in_an_hour() -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600)).to_string()
}

/// Writes a new version `name` holding `files`, then swaps `..data` to it the way kubelet does
/// (a new symlink renamed over the old one).
fn publish(root: &Path, name: &str, files: &[(&str, &str)]) {
    let version = root.join(name);
    std::fs::create_dir(&version).unwrap();
    for (file, content) in files {
        std::fs::write(version.join(file), content).unwrap();
    }
    let tmp = root.join("..data_tmp");
    symlink(name, &tmp).unwrap();
    std::fs::rename(&tmp, root.join("..data")).unwrap();
    for file in ["access_token", "token_type", "expires_at", "scope"] {
        let link = root.join(file);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{file}"), &link).unwrap();
        }
    }
}

fn version(root: &Path, name: &str, token: &str) {
    publish(
        root,
        name,
        &[
            ("access_token", &format!("{token}\n")),
            ("token_type", "Bearer\n"),
            ("expires_at", &in_an_hour()),
            ("scope", "RestAPI/GET:balance"),
        ],
    );
}

async fn wait_for(source: &MountedToken, expected: &str) {
    for _ in 0..1000 {
        let token = source.cached().expect("a valid token is always served");
        if token.authorization() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the mounted token never became {expected}");
}

#[tokio::test(start_paused = true)]
async fn reloads_after_an_atomic_data_swap() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    version(root, "..2026_11_22_02_00_00.1", "mounted-secret-1");
    let source = MountedToken::new(root)
        .unwrap()
        .check_interval(Duration::from_secs(5))
        .unwrap();
    let token = source.token().await.unwrap();
    assert_eq!(token.authorization(), "Bearer mounted-secret-1");
    assert_eq!(token.scope(), Some("RestAPI/GET:balance"));

    version(root, "..2026_11_22_02_30_00.2", "mounted-secret-2");
    // Within the check interval the current token is served without looking at the disk.
    assert_eq!(
        source.cached().unwrap().authorization(),
        "Bearer mounted-secret-1"
    );
    // After the interval the directory is re-read in the background (reads meanwhile get the
    // current token, never none).
    advance(Duration::from_secs(6)).await;
    wait_for(&source, "Bearer mounted-secret-2").await;
}

#[tokio::test(start_paused = true)]
async fn a_half_written_version_keeps_the_previous_token() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    version(root, "..v1", "mounted-secret-1");
    let source = MountedToken::new(root)
        .unwrap()
        .check_interval(Duration::from_secs(5))
        .unwrap();
    source.token().await.unwrap();

    // A version without `expires_at`.
    publish(root, "..v2", &[("access_token", "mounted-secret-2")]);
    advance(Duration::from_secs(6)).await;
    source.cached();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let error = source
        .last_error()
        .expect("the half-written version was read and refused");
    assert!(
        error.to_string().contains("`expires_at` is missing"),
        "{error}"
    );
    assert_eq!(
        source.cached().unwrap().authorization(),
        "Bearer mounted-secret-1"
    );
    let token = source.token().await.unwrap();
    assert_eq!(token.authorization(), "Bearer mounted-secret-1");

    // Once complete, the new version is picked up after the backoff.
    version(root, "..v3", "mounted-secret-3");
    advance(Duration::from_secs(6)).await;
    source.cached();
    wait_for(&source, "Bearer mounted-secret-3").await;
}

#[tokio::test(start_paused = true)]
async fn errors_name_the_file_and_never_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    publish(
        root,
        "..v1",
        &[
            ("access_token", "mounted-secret-x"),
            ("expires_at", "2020-01-01T00:00:00Z"),
        ],
    );
    let source = MountedToken::new(root).unwrap();
    let err = source.token().await.unwrap_err();
    let text = format!("{err} {err:?} {source:?}");
    assert!(matches!(err, Error::Mounted { .. }), "{text}");
    assert!(text.contains("expired at 2020-01-01T00:00:00Z"), "{text}");
    assert!(!text.contains("mounted-secret-x"), "{text}");

    let empty = tempfile::tempdir().unwrap();
    let err = MountedToken::new(empty.path())
        .unwrap()
        .token()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("`access_token` is missing"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn invalidate_rereads_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    version(root, "..v1", "mounted-secret-1");
    let source = MountedToken::new(root)
        .unwrap()
        .check_interval(Duration::from_secs(300))
        .unwrap();
    let first = source.token().await.unwrap();
    version(root, "..v2", "mounted-secret-2");
    source.invalidate(&first);
    let second = source.token().await.unwrap();
    assert_eq!(second.authorization(), "Bearer mounted-secret-2");
}
