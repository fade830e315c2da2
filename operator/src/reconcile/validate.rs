//! Phase 2, validate: what the CRD's CEL rules cannot check, and whether a token can be
//! requested for a token Secret with the credentials found. Pure functions.
//!
//! ```
//! use clientcreds_operator::reconcile::validate::scopes_outside;
//!
//! let allowed = ["RestAPI/GET:balance".to_owned()];
//! let requested = ["RestAPI/GET:balance".to_owned(), "RestAPI/POST:payment".to_owned()];
//! assert_eq!(scopes_outside(&allowed, &requested), ["RestAPI/POST:payment"]);
//! ```

use clientcreds::ClientCredentials;

use crate::Reason;
use crate::crd::{OAuthClientSpec, ProviderKind, TokenSecretSpec};
use crate::credentials::{Resolved, credentials_for};
use crate::egress::EgressPolicy;

/// Checks that can fail on an object the API server accepted. Each message names the field and
/// the fix. `namespace` is the OAuthClient's namespace.
pub fn validate(namespace: &str, spec: &OAuthClientSpec) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut same_namespace = |field: &str, ns: Option<&str>| {
        if let Some(ns) = ns
            && ns != namespace
        {
            problems.push(format!(
                "{field} is {ns:?} but references must stay in the OAuthClient's namespace \
                 {namespace:?}: remove {field} or create the Secret in {namespace:?}"
            ));
        }
    };
    if let Some(azupay) = &spec.azupay {
        same_namespace(
            "spec.azupay.apiKeySecretRef.namespace",
            azupay.api_key_secret_ref.namespace.as_deref(),
        );
    }
    if let Some(creds) = &spec.credentials_secret_ref {
        same_namespace(
            "spec.credentialsSecretRef.namespace",
            creds.namespace.as_deref(),
        );
    }
    // The CEL rules say the same; repeated here for API servers without CEL validation.
    match spec.provider {
        ProviderKind::Azupay => {
            if spec.azupay.is_none() {
                problems.push("spec.azupay is required when provider is azupay: add endpoint, clientId and apiKeySecretRef".into());
            }
            if spec.credentials.is_none() {
                problems.push("spec.credentials is required when provider is azupay: name the Secret for the one-time client secret".into());
            }
        }
        ProviderKind::Pyng | ProviderKind::Afterpay | ProviderKind::Generic => {
            if spec.token_url.is_none() {
                problems.push(format!(
                    "spec.tokenUrl is required for provider {}: set the provider's token endpoint",
                    spec.provider.as_str()
                ));
            }
        }
        ProviderKind::Autopay | ProviderKind::Payu => {}
    }
    if spec.provider != ProviderKind::Azupay && spec.credentials_secret_ref.is_none() {
        problems.push(format!(
            "spec.credentialsSecretRef is required for provider {}: name the Secret with client_id and client_secret",
            spec.provider.as_str()
        ));
    }
    if spec.tokens.is_empty() {
        problems.push("spec.tokens must list at least one token Secret".into());
    }
    // The preset's scope rules (the middleware's data; checked again when a token is built).
    if let Some(preset) = spec.provider.provider().map(|p| p.preset()) {
        for (i, t) in spec.tokens.iter().enumerate() {
            if preset.requires_scope && t.scopes.is_empty() {
                problems.push(format!(
                    "spec.tokens[{i}].scopes must not be empty for provider {}: {} requires a scope",
                    spec.provider.as_str(),
                    preset.display_name
                ));
            }
            if let Some(max) = preset.max_scopes.filter(|max| t.scopes.len() > *max) {
                problems.push(format!(
                    "spec.tokens[{i}].scopes has {} scopes but {} accepts at most {max}: split it into several token Secrets",
                    t.scopes.len(),
                    preset.display_name
                ));
            }
        }
    }
    if spec.environment.is_some()
        && !spec
            .provider
            .provider()
            .is_some_and(|p| p.preset().has_environments())
    {
        problems.push(format!(
            "spec.environment is not allowed for provider {}: it has no per-environment token host; remove it (set spec.tokenUrl instead)",
            spec.provider.as_str()
        ));
    }
    let fraction = spec.lifetime_fraction();
    if !(fraction > 0.0 && fraction < 1.0) {
        problems
            .push("spec.refresh.atLifetimeFraction must be greater than 0 and less than 1".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The requested scopes that are not in `allowed` (Azupay's `oauth2AllowedScopes`), in order.
pub fn scopes_outside(allowed: &[String], requested: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|s| !allowed.iter().any(|a| a == *s))
        .cloned()
        .collect()
}

/// The token request for one token Secret, or why there can be none until something changes
/// (scopes outside Azupay's `oauth2AllowedScopes`, a spec the preset refuses, a token URL the
/// egress policy refuses — whoever chose it: the spec, the preset or Azupay's details).
pub fn token_request(
    spec: &OAuthClientSpec,
    resolved: &Resolved,
    token: &TokenSecretSpec,
    egress: &EgressPolicy,
) -> Result<ClientCredentials, (Reason, String)> {
    if let Some(details) = &resolved.details {
        let outside = scopes_outside(&details.oauth2_allowed_scopes, &token.scopes);
        if !outside.is_empty() {
            return Err((
                Reason::ScopesNotAllowed,
                format!(
                    "scopes {} are not in Azupay's oauth2AllowedScopes for this client: remove them or ask Azupay to allow them",
                    outside.join(", ")
                ),
            ));
        }
    }
    let credentials =
        credentials_for(spec, resolved, token).map_err(|m| (Reason::TokenConfigInvalid, m))?;
    let what = if spec.provider == ProviderKind::Azupay {
        "the token URL of Azupay's connection details (oauth2TokenUrl)".to_owned()
    } else if spec.token_url.is_some() {
        "spec.tokenUrl".to_owned()
    } else {
        format!("the {} preset's token URL", spec.provider.as_str())
    };
    egress
        .check(&what, credentials.token_url().as_str())
        .map_err(|m| (Reason::EgressDenied, m))?;
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{
        AzupaySpec, CredentialsSecretRef, CredentialsStore, SecretKeyRef, TokenSecretSpec,
    };

    fn spec(provider: ProviderKind) -> OAuthClientSpec {
        OAuthClientSpec {
            provider,
            azupay: None,
            credentials_secret_ref: Some(CredentialsSecretRef {
                name: "creds".into(),
                client_id_key: None,
                client_secret_key: None,
                namespace: None,
            }),
            environment: None,
            token_url: Some("https://example.test/token".into()),
            audience: None,
            credentials: None,
            tokens: vec![TokenSecretSpec {
                secret_name: "tok".into(),
                scopes: vec!["a".into()],
            }],
            refresh: None,
        }
    }

    #[test]
    fn a_plain_spec_is_valid() {
        assert_eq!(validate("ns", &spec(ProviderKind::Payu)), Ok(()));
    }

    #[test]
    fn cross_namespace_references_are_refused_with_the_field_named() {
        let mut s = spec(ProviderKind::Payu);
        s.credentials_secret_ref.as_mut().unwrap().namespace = Some("other".into());
        let err = validate("ns", &s).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0].contains("spec.credentialsSecretRef.namespace"),
            "{err:?}"
        );
        // the own namespace spelled out is fine
        s.credentials_secret_ref.as_mut().unwrap().namespace = Some("ns".into());
        assert_eq!(validate("ns", &s), Ok(()));

        let mut s = spec(ProviderKind::Azupay);
        s.credentials_secret_ref = None;
        s.token_url = None;
        s.credentials = Some(CredentialsStore {
            secret_name: "c".into(),
            deletion_policy: Default::default(),
        });
        s.azupay = Some(AzupaySpec {
            endpoint: "https://azupay.test/v1".into(),
            client_id: "BIZ".into(),
            api_key_secret_ref: SecretKeyRef {
                name: "k".into(),
                key: "apiKey".into(),
                namespace: Some("kube-system".into()),
            },
        });
        let err = validate("ns", &s).unwrap_err();
        assert!(
            err[0].contains("spec.azupay.apiKeySecretRef.namespace"),
            "{err:?}"
        );
    }

    #[test]
    fn provider_specific_requirements() {
        let mut s = spec(ProviderKind::Pyng);
        s.tokens[0].scopes.clear();
        s.token_url = None;
        let err = validate("ns", &s).unwrap_err();
        assert!(err.iter().any(|e| e.contains("spec.tokenUrl")), "{err:?}");
        assert!(
            err.iter().any(|e| e.contains("spec.tokens[0].scopes")),
            "{err:?}"
        );

        let mut s = spec(ProviderKind::Payu);
        s.tokens[0].scopes = vec!["a".into(), "b".into(), "c".into(), "d".into()];
        assert!(validate("ns", &s).unwrap_err()[0].contains("at most 3"));

        let mut s = spec(ProviderKind::Payu);
        s.environment = Some(crate::crd::Environment::Production);
        assert_eq!(validate("ns", &s), Ok(()));
        let mut s = spec(ProviderKind::Autopay);
        s.environment = Some(crate::crd::Environment::Test);
        assert!(validate("ns", &s).unwrap_err()[0].contains("spec.environment"));

        let mut s = spec(ProviderKind::Azupay);
        s.credentials_secret_ref = None;
        let err = validate("ns", &s).unwrap_err();
        assert!(
            err.iter().any(|e| e.contains("spec.azupay is required")),
            "{err:?}"
        );
        assert!(
            err.iter()
                .any(|e| e.contains("spec.credentials is required")),
            "{err:?}"
        );
    }

    #[test]
    fn token_requests_are_refused_with_a_reason() {
        use secrecy::SecretString;
        let details: clientcreds::AzupayConnectionDetails = serde_json::from_str(
            r#"{"oauth2ClientId":"oid","oauth2TokenUrl":"https://auth.test/token",
                "oauth2AllowedScopes":["RestAPI/GET:balance"]}"#,
        )
        .unwrap();
        let mut resolved = Resolved {
            client_id: "oid".into(),
            client_secret: SecretString::from("s"),
            token_url: None,
            details: Some(details),
        };
        let mut az = spec(ProviderKind::Azupay);
        az.token_url = None;
        let tok = |scopes: &[&str]| TokenSecretSpec {
            secret_name: "t".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        };
        // table: provider spec, details known?, scopes → result
        type Case<'a> = (&'a OAuthClientSpec, bool, &'a [&'a str], Result<(), Reason>);
        let cases: [Case<'_>; 5] = [
            (&az, true, &["RestAPI/GET:balance"], Ok(())),
            (
                &az,
                true,
                &["RestAPI/POST:payment"],
                Err(Reason::ScopesNotAllowed),
            ),
            (
                &az,
                false,
                &["RestAPI/GET:balance"],
                Err(Reason::TokenConfigInvalid),
            ),
            (
                &spec(ProviderKind::Payu),
                false,
                &["a", "b", "c", "d"],
                Err(Reason::TokenConfigInvalid),
            ),
            (&spec(ProviderKind::Payu), false, &["a"], Ok(())),
        ];
        let known = resolved.details.clone();
        let egress = EgressPolicy::new(["auth.test", "example.test", "@presets"], false).unwrap();
        for (i, (s, with_details, scopes, expected)) in cases.into_iter().enumerate() {
            resolved.details = if with_details { known.clone() } else { None };
            let got = token_request(s, &resolved, &tok(scopes), &egress)
                .map(|_| ())
                .map_err(|(r, _)| r);
            assert_eq!(got, expected, "case {i}");
        }
        // the egress policy applies to every token URL, whoever chose it
        let strict = EgressPolicy::default();
        resolved.details = known.clone();
        let (reason, message) =
            token_request(&az, &resolved, &tok(&["RestAPI/GET:balance"]), &strict).unwrap_err();
        assert_eq!(reason, Reason::EgressDenied);
        assert!(
            message.contains("oauth2TokenUrl") && message.contains("auth.test"),
            "{message}"
        );
        resolved.details = None;
        let (reason, message) =
            token_request(&spec(ProviderKind::Payu), &resolved, &tok(&["a"]), &strict).unwrap_err();
        assert_eq!(reason, Reason::EgressDenied);
        assert!(message.contains("spec.tokenUrl"), "{message}");
        let mut preset = spec(ProviderKind::Payu);
        preset.token_url = None;
        assert!(token_request(&preset, &resolved, &tok(&["a"]), &strict).is_ok());
        let mut plain = spec(ProviderKind::Generic);
        // plain http to loopback (which the middleware accepts) only with the operator's opt-in
        plain.token_url = Some("http://127.0.0.1:8080/token".into());
        let loopback = EgressPolicy::new(["127.0.0.1"], false).unwrap();
        let (reason, message) =
            token_request(&plain, &resolved, &tok(&["a"]), &loopback).unwrap_err();
        assert_eq!(reason, Reason::EgressDenied);
        assert!(
            message.contains("--egress-allow-http-loopback"),
            "{message}"
        );
        let loopback = EgressPolicy::new(["127.0.0.1"], true).unwrap();
        assert!(token_request(&plain, &resolved, &tok(&["a"]), &loopback).is_ok());
    }

    #[test]
    fn scopes_outside_the_allowed_set() {
        let allowed = vec![
            "RestAPI/GET:balance".to_owned(),
            "RestAPI/GET:payment".to_owned(),
        ];
        assert!(scopes_outside(&allowed, &["RestAPI/GET:balance".into()]).is_empty());
        assert!(scopes_outside(&allowed, &[]).is_empty());
        assert_eq!(
            scopes_outside(
                &allowed,
                &["RestAPI/GET:balance".into(), "RestAPI/POST:x".into()]
            ),
            vec!["RestAPI/POST:x".to_owned()]
        );
    }
}
