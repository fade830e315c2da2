// panva's oidc-provider as an independent authorization server for middleware/tests/oidc_provider.rs
// and cli/tests. Usage: OIDC_PROVIDER_DIR=<install dir> node server.mjs <config.json>
//
// config.json: {
//   "tls": { "cert": PEM, "key": PEM, "clientCa": PEM },   // server certificate; CA of client certs
//   "clients": [ { "client_id", "token_endpoint_auth_method",
//                  "client_secret"?,                       // client_secret_basic / _post
//                  "public_keys"?: [PEM, ...],             // private_key_jwt: SPKI public keys
//                  "tls_client_auth_subject_dn"? } ]       // tls_client_auth
// }
//
// Listens on 127.0.0.1 on an ephemeral port (HTTPS, asking for a client certificate without
// requiring one) and prints one line: `listening <port>`. Every token request's outcome is
// printed as a JSON line (`{"event":"grant.success"|"grant.error", ...}`) for the tests.
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.OIDC_PROVIDER_DIR;
if (!dir) {
  console.error('OIDC_PROVIDER_DIR must name the directory scripts/install-oidc-provider printed');
  process.exit(2);
}
const { default: Provider } = await import(
  pathToFileURL(join(dir, 'node_modules', 'oidc-provider', 'lib', 'index.js')).href
);

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const clients = config.clients.map(({ public_keys: publicKeys, ...client }) => {
  const metadata = {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api:read api:write',
    ...client,
  };
  if (publicKeys) {
    metadata.jwks = {
      keys: publicKeys.map((pem, i) => ({
        ...createPublicKey(pem).export({ format: 'jwk' }),
        kid: `key-${i}`,
        use: 'sig',
      })),
    };
  }
  return metadata;
});

const peer = (ctx) => ctx.req.socket.getPeerX509Certificate?.();

const server = createServer({
  cert: config.tls.cert,
  key: config.tls.key,
  ca: config.tls.clientCa,
  requestCert: true,
  rejectUnauthorized: false, // oidc-provider decides, per client (certificateAuthorized)
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`https://127.0.0.1:${port}`, {
    clients,
    cookies: { keys: ['clientcreds-test-only'] },
    ttl: { ClientCredentials: 600 },
    scopes: ['api:read', 'api:write'],
    clientAuthMethods: [
      'client_secret_basic',
      'client_secret_post',
      'private_key_jwt',
      'tls_client_auth',
    ],
    enabledJWA: { clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'] },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      mTLS: {
        enabled: true,
        tlsClientAuth: true,
        certificateBoundAccessTokens: false,
        // The PEM of the certificate the client presented on this connection.
        getCertificate(ctx) {
          return peer(ctx)?.toString();
        },
        // Node verified it against config.tls.clientCa.
        certificateAuthorized(ctx) {
          return ctx.req.socket.authorized === true;
        },
        certificateSubjectMatches(ctx, property, expected) {
          const cert = peer(ctx);
          switch (property) {
            case 'tls_client_auth_subject_dn':
              return cert?.subject.split('\n').join(',') === expected;
            default:
              return false;
          }
        },
      },
    },
  });
  const report = (event) => (ctx, err) => {
    console.log(JSON.stringify({
      event,
      client_id: ctx.oidc?.client?.clientId,
      auth_method: ctx.oidc?.client?.clientAuthMethod,
      error: err?.error,
      error_description: err?.error_description,
    }));
  };
  provider.on('grant.success', report('grant.success'));
  provider.on('grant.error', report('grant.error'));
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(`listening ${port}`);
});
