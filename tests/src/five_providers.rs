//! One OAuthClient per seed provider, against the sandbox: the credentials Secrets (the Azupay API
//! key, and `client_id`/`client_secret` for the other four) and the OAuthClients, each writing
//! one token Secret named `<provider>-token`. Used by the cluster tests and the cluster demo.

use clientcreds_sandbox::{PAYU_SCOPES, PYNG_SCOPES, Sandbox};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

use crate::Error;

/// One provider's OAuthClient as [`apply`] creates it.
#[derive(Clone, Debug)]
pub struct ProviderClient {
    /// The OAuthClient's name (the provider's name).
    pub name: &'static str,
    /// The token Secret it writes.
    pub token_secret: String,
    /// A protected endpoint of the sandbox that accepts its tokens.
    pub resource_url: String,
    /// The client secret or API key it is given (for "never leaked" checks).
    pub secret: String,
}

/// The OAuthClient kind, for a dynamic API (so this works without the operator crate).
pub fn oauthclient_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("clientcreds.dev", "v1alpha1", "OAuthClient"),
        "oauthclients",
    )
}

async fn apply_json(api: &Api<DynamicObject>, name: &str, value: Value) -> Result<(), Error> {
    api.patch(
        name,
        &PatchParams::apply("clientcreds-e2e").force(),
        &Patch::Apply(&value),
    )
    .await?;
    Ok(())
}

/// Creates (server-side apply, as `client`) the five providers' credentials Secrets and
/// OAuthClients in `namespace`.
///
/// # Errors
///
/// [`Error::Kube`] when the API server refuses one.
pub async fn apply(
    client: &Client,
    namespace: &str,
    sandbox: &Sandbox,
) -> Result<Vec<ProviderClient>, Error> {
    let secret_ar = ApiResource::erase::<Secret>(&());
    let secrets_dyn: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &secret_ar);
    let oacs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &oauthclient_resource());

    let az = sandbox.azupay();
    apply_json(
        &secrets_dyn,
        "azupay-api-key",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "azupay-api-key"},
               "stringData": {"apiKey": az.api_key}}),
    )
    .await?;
    let others = [
        ("autopay", sandbox.autopay(), json!([])),
        ("payu", sandbox.payu(), json!([PAYU_SCOPES[0]])),
        (
            "pyng",
            sandbox.pyng(),
            json!([PYNG_SCOPES[0], PYNG_SCOPES[1]]),
        ),
        ("afterpay", sandbox.afterpay(), json!([])),
    ];
    let mut out = vec![ProviderClient {
        name: "azupay",
        token_secret: "azupay-token".into(),
        resource_url: az.resource_url.clone(),
        secret: az.api_key.clone(),
    }];
    for (name, p, _) in &others {
        let secret_name = format!("{name}-credentials");
        apply_json(
            &secrets_dyn,
            &secret_name,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret_name},
                   "stringData": {"client_id": p.client_id, "client_secret": p.client_secret}}),
        )
        .await?;
        out.push(ProviderClient {
            name,
            token_secret: format!("{name}-token"),
            resource_url: p.resource_url.clone(),
            secret: p.client_secret.clone(),
        });
    }

    let oac = |name: &str, spec: Value| {
        json!({"apiVersion": "clientcreds.dev/v1alpha1", "kind": "OAuthClient",
               "metadata": {"name": name}, "spec": spec})
    };
    apply_json(
        &oacs,
        "azupay",
        oac(
            "azupay",
            json!({
                "provider": "azupay",
                "azupay": {"endpoint": az.endpoint, "clientId": az.client_id,
                           "apiKeySecretRef": {"name": "azupay-api-key", "key": "apiKey"}},
                "credentials": {"secretName": "azupay-oauth2-credentials"},
                "tokens": [{"secretName": "azupay-token", "scopes": ["RestAPI/GET:balance"]}]
            }),
        ),
    )
    .await?;
    for (name, p, scopes) in others {
        apply_json(
            &oacs,
            name,
            oac(
                name,
                json!({
                    "provider": name,
                    "credentialsSecretRef": {"name": format!("{name}-credentials")},
                    "tokenUrl": p.token_url,
                    "tokens": [{"secretName": format!("{name}-token"), "scopes": scopes}]
                }),
            ),
        )
        .await?;
    }
    Ok(out)
}
