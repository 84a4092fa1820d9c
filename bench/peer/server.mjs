// The peer of bench/token_endpoint_bench.py: panva's oidc-provider (OpenID Certified) with its
// default in-memory adapter, issuing JWT access tokens (RS256) that carry the same
// 5-entitlement org_billing-like claim claimflow issues.
//
//   node server.mjs PORT CHAINS   -> prints one JSON line {"refresh_tokens": [...]} when ready
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const chains = Number(process.argv[3] ?? 8);
const issuer = `http://127.0.0.1:${port}`;
const resource = 'https://api.bench';
export const CLIENT = { id: 'bench', secret: 'bench-peer-secret-0123456789abcdef0123456789' };

const orgBilling = {
  customer_id: 'customer_bench',
  entitlements: Array.from({ length: 5 }, (_, i) => ({
    id: `entitlement_${i}`,
    fixed_charge: 10,
    price_name: `Pro ${i}`,
    feature_code: `feat_${i}`,
    feature_name: `Feature ${i}`,
    entitlement_limit_max: i,
  })),
  agreements: [{ id: 'agreement_1', plan_code: 'pro', billing_group_id: 'sbg_1', entitlements: [] }],
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT.id,
    client_secret: CLIENT.secret,
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    redirect_uris: ['http://127.0.0.1:9/callback'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'openid offline_access read',
  }],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'read',
        audience: resource,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  scopes: ['openid', 'offline_access', 'read'],
  rotateRefreshToken: true,
  extraTokenClaims: () => ({ org_code: 'org_bench', org_billing: orgBilling }),
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'bench' }] },
  ttl: { AccessToken: 3600, IdToken: 3600, ClientCredentials: 3600, Grant: 1209600, RefreshToken: 1209600 },
});

const client = await provider.Client.find(CLIENT.id);
const refreshTokens = [];
for (let i = 0; i < chains; i += 1) {
  const accountId = `user_${i}`;
  const grant = new provider.Grant({ accountId, clientId: CLIENT.id });
  grant.addOIDCScope('openid offline_access');
  grant.addResourceScope(resource, 'read');
  const grantId = await grant.save();
  const token = new provider.RefreshToken({
    accountId,
    client,
    grantId,
    gty: 'authorization_code',
    scope: 'openid offline_access read',
    resource,
    authTime: Math.floor(Date.now() / 1000),
    expiresWithSession: false,
  });
  refreshTokens.push(await token.save());
}
provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ refresh_tokens: refreshTokens, client: CLIENT })}\n`);
});
