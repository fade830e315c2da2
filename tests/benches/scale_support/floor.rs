//! The floor: what bringing N OAuthClients up costs with no operator at all. A plain client
//! watches the OAuthClients of its namespace and, for each new one, makes the same sandbox token
//! request and the same API writes as the operator (one server-side apply of the token Secret,
//! one of the status), at the operator's concurrency, as the operator's service account. The
//! operator's create→Ready time is reported as a ratio of this.

use std::sync::Arc;

use clientcreds::HttpClient;
use clientcreds_operator::crd::OAuthClient;
use clientcreds_operator::credentials::{CredentialsState, Resolved};
use clientcreds_operator::egress::EgressPolicy;
use clientcreds_operator::reconcile::status::{StatusInput, TokenOutcome, build_status};
use clientcreds_operator::reconcile::{plan, validate};
use clientcreds_operator::refresh;
use clientcreds_operator::secrets::{self, IssuedToken};
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// The field manager of the floor's writes.
const FLOOR_MANAGER: &str = "clientcreds-scale-floor";

/// The floor's client, running until dropped.
pub(crate) struct Floor {
    task: JoinHandle<()>,
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the floor on namespace `ns`: `credentials` gives the client id and secret of a
/// provider name (the harness knows them; the operator reads them from a Secret).
pub(crate) fn start(
    client: Client,
    ns: &str,
    concurrency: usize,
    credentials: impl Fn(&str) -> (String, String) + Send + Sync + 'static,
) -> Floor {
    let oacs: Api<OAuthClient> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client, ns);
    let credentials = Arc::new(credentials);
    let http = HttpClient::new();
    let task = tokio::spawn(async move {
        let limit = Arc::new(Semaphore::new(concurrency));
        let mut seen = std::collections::HashSet::new();
        let mut objects = watcher::watcher(oacs.clone(), watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(oac) = objects.next().await {
            let Ok(oac) = oac else { continue };
            // one pass per object, as the operator brings each up once
            if !seen.insert(oac.name_any()) {
                continue;
            }
            let permit = limit.clone().acquire_owned().await.unwrap();
            let (oacs, secrets, http, credentials) = (
                oacs.clone(),
                secrets.clone(),
                http.clone(),
                credentials.clone(),
            );
            tokio::spawn(async move {
                bring_up(&oac, &oacs, &secrets, &http, &*credentials).await;
                drop(permit);
            });
        }
    });
    Floor { task }
}

async fn bring_up(
    oac: &OAuthClient,
    oacs: &Api<OAuthClient>,
    secrets: &Api<Secret>,
    http: &HttpClient,
    credentials: &(dyn Fn(&str) -> (String, String) + Send + Sync),
) {
    let (client_id, client_secret) = credentials(oac.spec.provider.as_str());
    let resolved = Resolved {
        client_id: client_id.clone(),
        client_secret: SecretString::from(client_secret),
        token_url: None,
        details: None,
    };
    let spec = &oac.spec.tokens[0];
    // the operator's egress policy as the harness starts it: the sandbox on http://127.0.0.1
    let egress = EgressPolicy::new(["127.0.0.1"], true).unwrap();
    let request = validate::token_request(&oac.spec, &resolved, spec, &egress)
        .unwrap_or_else(|(_, message)| panic!("floor: {message}"));
    let issued_at = Timestamp::now();
    let token = request.request_token(http).await.unwrap();
    let issued = IssuedToken::new(&token, spec, issued_at).unwrap();
    let refresh_at = refresh::refresh_at(
        &refresh::policy(oac.spec.lifetime_fraction()),
        issued_at,
        issued.expires_at,
        0.5,
    );
    let hash = plan::config_hash(
        request.token_url().as_str(),
        &resolved.client_id,
        &resolved.client_secret,
        &spec.scopes,
        oac.spec.audience.as_deref(),
    );
    let desired = secrets::token_secret(oac, spec, &issued, refresh_at, &hash, None);
    secrets
        .patch(
            &spec.secret_name,
            &PatchParams::apply(FLOOR_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
        .unwrap();
    let status = build_status(
        oac.status.as_ref(),
        StatusInput {
            generation: oac.metadata.generation,
            credentials: Some(CredentialsState::Referenced),
            tokens: vec![(
                spec.clone(),
                TokenOutcome::Valid {
                    expires_at: issued.expires_at,
                    refresh_at,
                },
            )],
            oauth2_client_id: Some(client_id),
            token_url: Some(request.token_url().to_string()),
            ..StatusInput::default()
        },
        Timestamp::now(),
    );
    let patch = json!({
        "apiVersion": "clientcreds.dev/v1alpha1",
        "kind": "OAuthClient",
        "status": status,
    });
    oacs.patch_status(
        &oac.name_any(),
        &PatchParams::apply(FLOOR_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap();
}
