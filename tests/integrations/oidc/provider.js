// A real OpenID provider for tests/integrations/test_oidc.py: oidc-provider issuing JWT
// access tokens (RFC 9068, resource indicators) signed RS256 with the key OIDC_SIGNING_KID
// of the private JWKS in the file OIDC_KEYS, for the clients of OIDC_CLIENTS (the client
// credentials grant: a token's `sub` is its client id). Prints "ready" once it listens.
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const keys = JSON.parse(readFileSync(process.env.OIDC_KEYS, 'utf8'));
const clients = JSON.parse(process.env.OIDC_CLIENTS);
const audience = process.env.OIDC_AUDIENCE;
const signingKid = process.env.OIDC_SIGNING_KID;

const provider = new Provider(issuer, {
  jwks: { keys },
  clients: clients.map(({ id, secret }) => ({
    client_id: id,
    client_secret: secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_post',
  })),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      getResourceServerInfo: () => ({
        scope: 'chat',
        audience,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256', kid: signingKid } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => ({ name: `client ${token.clientId}` }),
});

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
