// Verifying the platform's compact JWS receipts in the browser against
// /.well-known/jwks.json (EdDSA, Ed25519 OKP keys picked by `kid`). Gives
// the claims, or says why not.

import { fromBase64url } from './sign.js';

const decoder = new TextDecoder();
let keySet = null;

async function keys(refresh) {
  if (!keySet || refresh) {
    const response = await fetch('/.well-known/jwks.json', { credentials: 'omit' });
    if (!response.ok) throw new Error(`the key set could not be read (HTTP ${response.status})`);
    keySet = (await response.json()).keys || [];
  }
  return keySet;
}

/**
 * {ok: true, claims} or {ok: false, reason}: signed by a platform key and
 * carrying each of the `expected` claims.
 */
export async function verify(compact, expected = {}) {
  const parts = compact.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'not a compact JWS' };
  let header, claims;
  try {
    header = JSON.parse(decoder.decode(fromBase64url(parts[0])));
    claims = JSON.parse(decoder.decode(fromBase64url(parts[1])));
  } catch {
    return { ok: false, reason: 'header or payload is not base64url JSON' };
  }
  if (header.alg !== 'EdDSA') return { ok: false, reason: `algorithm ${header.alg} is not EdDSA` };
  let jwk;
  try {
    // An unknown kid may be a key published since the set was read.
    jwk = (await keys(false)).find((key) => key.kid === header.kid) || (await keys(true)).find((key) => key.kid === header.kid);
  } catch (error) {
    return { ok: false, reason: error.message };
  }
  if (!jwk) return { ok: false, reason: `no key ${header.kid} in the platform's key set` };
  const key = await crypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, { name: 'Ed25519' }, false, ['verify']);
  const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
  const good = await crypto.subtle.verify({ name: 'Ed25519' }, key, fromBase64url(parts[2]), signed);
  if (!good) return { ok: false, reason: 'the signature does not verify: the receipt was changed' };
  // A genuine receipt of another job proves nothing about this one.
  for (const [name, value] of Object.entries(expected)) {
    if (claims[name] !== value) return { ok: false, reason: `it is signed for ${name} ${claims[name]}, not ${value}` };
  }
  return { ok: true, claims };
}
