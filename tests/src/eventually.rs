//! Waiting for what the server does asynchronously, without sleeping for a guessed time.

use std::time::Duration;

/// Polls `check` every 100 ms until it returns `Some`, and returns that value; panics (failing
/// the test) with `what` in the message after `timeout`.
///
/// For things a server or controller does in its own time (RBAC grants reaching the
/// authorizer's cache, garbage collection, an operator reconciling): the bound is generous, the
/// wait is only as long as needed.
///
/// ```no_run
/// # async fn demo(secrets: kube::Api<k8s_openapi::api::core::v1::Secret>) {
/// use std::time::Duration;
/// clientcreds_e2e::eventually("the Secret to be collected", Duration::from_secs(60), || async {
///     secrets.get_opt("owned").await.ok().flatten().is_none().then_some(())
/// })
/// .await;
/// # }
/// ```
///
/// # Panics
///
/// When `check` has not returned `Some` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let poll = async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    match tokio::time::timeout(timeout, poll).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn returns_the_first_some() {
        let mut calls = 0;
        let value = eventually("the third call", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out after 1s waiting for nothing")]
    async fn panics_after_the_timeout() {
        eventually("nothing", Duration::from_secs(1), || async { None::<()> }).await;
    }
}
