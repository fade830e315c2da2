//! `clientcreds token`: fetch one access token with the client-credentials grant and print it.
//!
//! The client secret never comes from a command-line argument (which `ps` shows to every user
//! and the shell keeps in its history): it is read from an environment variable
//! (`--client-secret-env`), a file (`--client-secret-file`) or standard input. Keys and
//! certificates come from files only: `--private-key-file` (private_key_jwt, RFC 7523) and
//! `--client-cert-file` with `--client-key-file` (tls_client_auth, RFC 8705); with either, no
//! secret is read.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;

use clap::ValueEnum;
use clientcreds::redact::scrub;
use clientcreds::{
    ClientAuth, ClientCredentials, ClientCredentialsBuilder, ClientIdentity, Env, HttpClient,
    JwsAlgorithm, Provider, SigningKey,
};
use secrecy::{ExposeSecret, SecretString};

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Auth {
    /// `Authorization: Basic` with the id and secret (client_secret_basic).
    Basic,
    /// `client_id` and `client_secret` in the form body (client_secret_post).
    Post,
    /// A JSON body with `client_id`, `client_secret` and the other parameters.
    Json,
    /// A JWT signed with --private-key-file (private_key_jwt, RFC 7523).
    PrivateKeyJwt,
    /// The client certificate of --client-cert-file (tls_client_auth, RFC 8705).
    #[value(name = "tls-client-auth")]
    TlsClient,
}

impl From<Auth> for ClientAuth {
    fn from(auth: Auth) -> ClientAuth {
        match auth {
            Auth::Basic => ClientAuth::Basic,
            Auth::Post => ClientAuth::Post,
            Auth::Json => ClientAuth::Json,
            Auth::PrivateKeyJwt => ClientAuth::PrivateKeyJwt,
            Auth::TlsClient => ClientAuth::TlsClientAuth,
        }
    }
}

/// What to print on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Output {
    /// One JSON object: access_token, token_type, expires_in, expires_at, scope.
    #[default]
    Json,
    /// The header line `Authorization: Bearer <token>`.
    Header,
    /// The bare access token.
    Token,
}

/// Options of `clientcreds token`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The client secret is read from --client-secret-env VAR, --client-secret-file PATH or, when \
neither is given, standard input (one line; a trailing newline is dropped). It is never a \
command-line argument.

Examples:
  export PAYU_SECRET=...
  clientcreds token --provider payu --client-id my-client --client-secret-env PAYU_SECRET \\
      --scope read_payment_links                     # PayU test; add --environment production

  clientcreds token --token-url https://auth.example.com/oauth2/token --client-id app \\
      --auth post --client-secret-file /run/secrets/app --output header
  clientcreds token --token-url https://auth.example.com/oauth2/token --client-id app \\
      --private-key-file /run/secrets/app-key.pem --key-id 2026-01
  clientcreds token --token-url https://mtls.auth.example.com/oauth2/token --client-id app \\
      --client-cert-file app.pem --client-key-file /run/secrets/app-key.pem")]
pub(crate) struct Args {
    /// A preset for a seed provider: it supplies the token URL (Autopay; PayU per
    /// --environment), client authentication and audience. Azupay, Pyng and Afterpay have
    /// per-client hosts, so they also need --token-url.
    #[arg(long, value_name = "NAME", value_parser = parse_provider)]
    provider: Option<Provider>,
    /// The preset's environment, for providers with a token host per environment (PayU):
    /// test (the default) or production.
    #[arg(long, value_name = "ENV", value_parser = parse_env, requires = "provider")]
    environment: Option<Env>,
    /// The token endpoint, e.g. https://auth.example.com/oauth2/token (overrides the preset's).
    /// http:// is accepted only for loopback hosts unless --allow-insecure-http is given.
    #[arg(long, value_name = "URL")]
    token_url: Option<String>,
    /// The client id the provider issued.
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// Read the client secret from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "client_secret_file")]
    client_secret_env: Option<String>,
    /// Read the client secret from this file (a trailing newline is dropped).
    #[arg(long, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,
    /// Not supported: a secret on the command line leaks through `ps` and shell history.
    #[arg(long, hide = true, num_args = 0..=1, allow_hyphen_values = true, value_name = "SECRET")]
    client_secret: Option<Option<String>>,
    /// Client authentication: basic (Authorization header), post (form body), json (JSON
    /// body), private-key-jwt or tls-client-auth. Default: private-key-jwt with
    /// --private-key-file, tls-client-auth with --client-cert-file, else the preset's, else
    /// basic.
    #[arg(long, value_enum, value_name = "METHOD")]
    auth: Option<Auth>,
    /// private_key_jwt: sign a new client assertion for the request with the PEM private key in
    /// this file (PKCS#8 RSA, P-256 or Ed25519; PKCS#1 RSA). No client secret is read.
    #[arg(long, value_name = "PEM")]
    private_key_file: Option<PathBuf>,
    /// The assertion's algorithm: RS256 or PS256 for an RSA key (default RS256); ES256 and
    /// EdDSA follow from the key.
    #[arg(long, value_name = "ALG", requires = "private_key_file", value_parser = parse_alg)]
    jwt_alg: Option<JwsAlgorithm>,
    /// The `kid` header of the assertion.
    #[arg(long, value_name = "KID", requires = "private_key_file")]
    key_id: Option<String>,
    /// The `aud` claim of the assertion (default: the token URL).
    #[arg(long, value_name = "AUD", requires = "private_key_file")]
    assertion_audience: Option<String>,
    /// Present this PEM certificate (chain, the client's first) on the TLS connection;
    /// tls_client_auth unless --auth or --private-key-file says otherwise.
    #[arg(long, value_name = "PEM", requires = "client_key_file")]
    client_cert_file: Option<PathBuf>,
    /// The PEM private key of --client-cert-file.
    #[arg(long, value_name = "PEM", requires = "client_cert_file")]
    client_key_file: Option<PathBuf>,
    /// Trust the PEM CA certificates in this file as well as Mozilla's roots (a token endpoint
    /// with a private CA).
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// A scope to request; repeat the flag (or separate with spaces) for several.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// The `audience` parameter (Autopay's preset sets https://api.autopay.io).
    #[arg(long, value_name = "AUDIENCE")]
    audience: Option<String>,
    /// The `resource` parameter (RFC 8707).
    #[arg(long, value_name = "URI")]
    resource: Option<String>,
    /// An extra token request parameter as NAME=VALUE; repeat for several.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Allow an http:// token URL on a host that is not loopback (sends the secret in clear
    /// text; only for a trusted test network).
    #[arg(long)]
    allow_insecure_http: bool,
    /// What to print: json (an object with access_token, token_type, expires_in, expires_at,
    /// scope), header (`Authorization: Bearer …`) or token (the bare token).
    #[arg(long, value_enum, default_value_t = Output::Json, value_name = "FORMAT")]
    output: Output,
}

fn parse_alg(s: &str) -> Result<JwsAlgorithm, String> {
    s.parse::<JwsAlgorithm>().map_err(|e| match e {
        clientcreds::Error::Config { message, .. } => message,
        other => other.to_string(),
    })
}

fn parse_provider(s: &str) -> Result<Provider, String> {
    s.parse::<Provider>().map_err(|e| e.to_string())
}

fn parse_env(s: &str) -> Result<Env, String> {
    s.parse::<Env>().map_err(|e| e.to_string())
}

/// Parses `--param NAME=VALUE`.
fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.to_owned(), value.to_owned())),
        Some(_) => Err("the parameter name before '=' is empty; use NAME=VALUE".to_owned()),
        None => Err(format!(
            "expected NAME=VALUE (e.g. --param tenant=acme), got {s:?} without '='"
        )),
    }
}

/// Fetch one token and print it.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    if args.client_secret.is_some() {
        anyhow::bail!(
            "--client-secret is not supported: a secret on the command line is visible in `ps` \
             and shell history; use --client-secret-env VAR, --client-secret-file PATH or pipe \
             it on standard input"
        );
    }
    let auth = auth_of(&args);
    let secret = if matches!(auth, Some(Auth::PrivateKeyJwt | Auth::TlsClient)) {
        if args.client_secret_env.is_some() || args.client_secret_file.is_some() {
            anyhow::bail!(
                "a client secret was given, but {} authenticates without one; drop \
                 --client-secret-env/--client-secret-file or choose a secret method with --auth",
                if auth == Some(Auth::PrivateKeyJwt) {
                    "private_key_jwt"
                } else {
                    "tls_client_auth"
                }
            );
        }
        SecretString::from("")
    } else {
        read_secret(&args)?
    };
    let credentials = build(&args, auth, secret.clone())?;
    let http = http_client(&args)?;
    let token = credentials
        .request_token(&http)
        .await
        .map_err(|e| anyhow::anyhow!(scrub(&e.to_string(), &[secret.expose_secret()])))?;
    let text = match args.output {
        Output::Json => json(&token)?,
        Output::Header => format!(
            "Authorization: {} {}",
            token.token_type(),
            token.secret().expose_secret()
        ),
        Output::Token => token.secret().expose_secret().to_owned(),
    };
    println!("{text}");
    Ok(())
}

/// The JSON object printed by `--output json`.
fn json(token: &clientcreds::Token) -> anyhow::Result<String> {
    let expires_at = jiff::Timestamp::try_from(token.expires_at())?;
    let expires_at = jiff::Timestamp::from_second(expires_at.as_second())?;
    let value = serde_json::json!({
        "access_token": token.secret().expose_secret(),
        "token_type": token.token_type(),
        "expires_in": token.lifetime().as_secs(),
        "expires_at": expires_at.to_string(),
        "scope": token.scope(),
    });
    Ok(serde_json::to_string(&value)?)
}

/// The client secret from the environment, a file or standard input.
fn read_secret(args: &Args) -> anyhow::Result<SecretString> {
    let raw = if let Some(var) = &args.client_secret_env {
        match std::env::var(var) {
            Ok(value) => value,
            Err(std::env::VarError::NotPresent) => anyhow::bail!(
                "--client-secret-env: the environment variable {var} is not set; export it or \
                 use --client-secret-file PATH"
            ),
            Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!(
                "--client-secret-env: the environment variable {var} is not valid UTF-8"
            ),
        }
    } else if let Some(path) = &args.client_secret_file {
        std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "--client-secret-file: cannot read {}: {e}; give a readable file that holds only \
                 the secret",
                path.display()
            )
        })?
    } else {
        let mut stdin = std::io::stdin();
        if stdin.is_terminal() {
            anyhow::bail!(
                "no client secret: pass --client-secret-env VAR or --client-secret-file PATH, \
                 or pipe the secret on standard input"
            );
        }
        let mut input = String::new();
        stdin.read_to_string(&mut input).map_err(|e| {
            anyhow::anyhow!("cannot read the client secret from standard input: {e}")
        })?;
        input
    };
    let secret = raw.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        let from = match (&args.client_secret_env, &args.client_secret_file) {
            (Some(var), _) => format!("--client-secret-env {var}"),
            (None, Some(path)) => format!("--client-secret-file {}", path.display()),
            (None, None) => "standard input".to_owned(),
        };
        anyhow::bail!("the client secret from {from} is empty");
    }
    if secret.contains(['\r', '\n']) {
        anyhow::bail!(
            "the client secret spans several lines; the file, variable or input must hold only \
             the secret"
        );
    }
    Ok(SecretString::from(secret.to_owned()))
}

/// The client authentication the flags ask for: --auth, else what the key or certificate
/// files imply, else the preset's (`None`).
fn auth_of(args: &Args) -> Option<Auth> {
    args.auth.or(if args.private_key_file.is_some() {
        Some(Auth::PrivateKeyJwt)
    } else if args.client_cert_file.is_some() {
        Some(Auth::TlsClient)
    } else {
        None
    })
}

/// The HTTP client: Mozilla's roots (plus --ca-file) and the --client-cert-file identity.
fn http_client(args: &Args) -> anyhow::Result<HttpClient> {
    let mut builder = HttpClient::builder();
    if let Some(path) = &args.ca_file {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("--ca-file: cannot read {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert
                .map_err(|_| anyhow::anyhow!("--ca-file: {} is not valid PEM", path.display()))?;
            roots.add(cert).map_err(|e| {
                anyhow::anyhow!(
                    "--ca-file: {}: a certificate is unusable: {e}",
                    path.display()
                )
            })?;
            added += 1;
        }
        if added == 0 {
            anyhow::bail!(
                "--ca-file: {} holds no certificate (BEGIN CERTIFICATE)",
                path.display()
            );
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        builder = builder.tls_config(config);
    }
    if let (Some(cert), Some(key)) = (&args.client_cert_file, &args.client_key_file) {
        let identity = ClientIdentity::from_pem_files(cert, key).map_err(config_failure)?;
        builder = builder.client_identity(identity);
    }
    builder.build().map_err(config_failure)
}

fn config_failure(e: clientcreds::Error) -> anyhow::Error {
    match e {
        clientcreds::Error::Config { field, message } => {
            anyhow::anyhow!(scrub(&config_error(field, &message), &[]))
        }
        other => anyhow::anyhow!(scrub(&other.to_string(), &[])),
    }
}

/// The credentials described by the flags.
fn build(
    args: &Args,
    auth: Option<Auth>,
    secret: SecretString,
) -> anyhow::Result<ClientCredentials> {
    let mut builder: ClientCredentialsBuilder = match args.provider {
        Some(provider) => {
            if args.environment.is_some() && !provider.preset().has_environments() {
                anyhow::bail!(
                    "--environment does not apply to --provider {provider}: it has one token \
                     host (or a per-client one: use --token-url); drop --environment"
                );
            }
            let env = args.environment.unwrap_or(Env::DEFAULT);
            provider.builder_in(env, args.client_id.clone(), secret)
        }
        None => {
            let Some(url) = &args.token_url else {
                anyhow::bail!(
                    "--token-url is required without --provider; give the token endpoint, e.g. \
                     --token-url https://auth.example.com/oauth2/token"
                );
            };
            ClientCredentials::builder(url, args.client_id.clone(), secret)
        }
    };
    if let Some(url) = &args.token_url {
        builder = builder.token_url(url);
    }
    if let Some(auth) = auth {
        builder = builder.auth(auth.into());
    }
    if let Some(path) = &args.private_key_file {
        let mut key = SigningKey::from_pem_file(path).map_err(config_failure)?;
        if let Some(alg) = args.jwt_alg {
            key = key.with_algorithm(alg).map_err(config_failure)?;
        }
        if let Some(kid) = &args.key_id {
            key = key.with_key_id(kid.clone());
        }
        builder = builder.signing_key(key);
    }
    if let Some(audience) = &args.assertion_audience {
        builder = builder.assertion_audience(audience.clone());
    }
    for scope in &args.scopes {
        builder = builder.scope(scope);
    }
    if let Some(audience) = &args.audience {
        builder = builder.audience(audience.clone());
    }
    if let Some(resource) = &args.resource {
        builder = builder.resource(resource.clone());
    }
    for (name, value) in &args.params {
        builder = builder.param(name.clone(), value.clone());
    }
    builder = builder.allow_insecure_http(args.allow_insecure_http);
    builder.build().map_err(config_failure)
}

/// A configuration error in terms of the command's flags.
fn config_error(field: &str, message: &str) -> String {
    let flag = match field {
        "token_url" => "--token-url",
        "client_id" => "--client-id",
        "client_secret" => "the client secret",
        "scope" => "--scope",
        "audience" => "--audience",
        "resource" => "--resource",
        "param" => "--param",
        "grant_type" => "--provider",
        "private_key" => "--private-key-file",
        "jwt_alg" => "--jwt-alg",
        "assertion_audience" => "--assertion-audience",
        "client_certificate" | "client_identity" => "--client-cert-file",
        "client_key" => "--client-key-file",
        other => other,
    };
    let message = message
        .replace("allow_insecure_http(true)", "--allow-insecure-http")
        .replace(".token_url(..)", "--token-url URL")
        .replace(".scope(..)", "--scope SCOPE")
        .replace(
            "(ClientCredentials::private_key_jwt or .signing_key(..))",
            "(--private-key-file PEM)",
        )
        .replace(
            "build it with HttpClient::builder().client_identity(..)",
            "give --client-cert-file and --client-key-file",
        )
        .replace(
            "use the builder method of the same name",
            "use the flag of the same name",
        );
    format!("invalid {flag}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_or_name_the_fix() {
        assert_eq!(
            parse_param("tenant=a=b").unwrap(),
            ("tenant".into(), "a=b".into())
        );
        assert!(parse_param("tenant").unwrap_err().contains("NAME=VALUE"));
        assert!(parse_param("=x").unwrap_err().contains("name"));
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn built(argv: &[&str]) -> anyhow::Result<ClientCredentials> {
        use clap::Parser;
        let cli = Cli::try_parse_from(
            ["token", "--client-id", "id"]
                .into_iter()
                .chain(argv.iter().copied()),
        )?;
        build(&cli.args, auth_of(&cli.args), SecretString::from("s"))
    }

    #[test]
    fn payu_environment_defaults_to_test_and_can_be_chosen() {
        let url = |argv: &[&str]| built(argv).unwrap().token_url().to_string();
        assert_eq!(
            url(&["--provider", "payu"]),
            clientcreds::provider::PAYU_TEST_TOKEN_URL
        );
        assert_eq!(
            url(&["--provider", "payu", "--environment", "test"]),
            clientcreds::provider::PAYU_TEST_TOKEN_URL
        );
        assert_eq!(
            url(&["--provider", "payu", "--environment", "production"]),
            clientcreds::provider::PAYU_PRODUCTION_TOKEN_URL
        );
        let err = built(&["--provider", "autopay", "--environment", "production"]).unwrap_err();
        assert!(err.to_string().contains("--environment"), "{err}");
        assert!(built(&["--provider", "payu", "--environment", "staging"]).is_err());
        // without a preset there is no environment to choose
        assert!(built(&["--token-url", "https://h/t", "--environment", "test"]).is_err());
    }

    #[test]
    fn config_errors_name_the_flag() {
        let text = config_error("token_url", "is not set; set it with .token_url(..)");
        assert_eq!(
            text,
            "invalid --token-url: is not set; set it with --token-url URL"
        );
    }
}
