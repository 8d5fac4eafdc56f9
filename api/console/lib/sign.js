// RFC 9421 HTTP Message Signatures with Ed25519, exactly as docs/API.md
// "Signed requests" and shared/src/signing.rs make them: covered
// `@method`, `@target-uri`, `content-digest` (RFC 9530, sha-256) when there
// is a body, `idempotency-key` when one is sent; parameters created, keyid,
// nonce, alg; label sig1. Pure functions over WebCrypto: no I/O.

const encoder = new TextEncoder();

export function base64(bytes) {
  let text = '';
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text);
}

export function base64url(bytes) {
  return base64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64url(text) {
  const plain = text.replace(/-/g, '+').replace(/_/g, '/');
  const padded = plain + '='.repeat((4 - (plain.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

/** `sha-256=:<base64>:` of the body's bytes (RFC 9530). */
export async function contentDigest(body) {
  const digest = await crypto.subtle.digest('SHA-256', body);
  return `sha-256=:${base64(digest)}:`;
}

function randomNonce() {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * The signature base (RFC 9421 §2.5) for the components given as
 * [name, value] pairs, and the Signature-Input value it ends with.
 */
export function signatureBase(components, params) {
  const names = components.map(([name]) => `"${name}"`).join(' ');
  const input =
    `(${names});created=${params.created};keyid="${params.keyid}";` +
    `nonce="${params.nonce}";alg="ed25519"`;
  const lines = components.map(([name, value]) => `"${name}": ${value}`);
  lines.push(`"@signature-params": ${input}`);
  return { base: lines.join('\n'), input };
}

/**
 * Headers that sign `method url` with `body` (a Uint8Array, empty for
 * none) and `idempotencyKey` (optional) under `keyid` with `privateKey`.
 */
export async function signRequest({ method, url, body, idempotencyKey, keyid, privateKey }) {
  const headers = {};
  const components = [
    ['@method', method.toUpperCase()],
    ['@target-uri', new URL(url).href],
  ];
  if (body && body.length > 0) {
    headers['Content-Digest'] = await contentDigest(body);
    components.push(['content-digest', headers['Content-Digest']]);
  }
  if (idempotencyKey) {
    headers['Idempotency-Key'] = idempotencyKey;
    components.push(['idempotency-key', idempotencyKey]);
  }
  const params = { created: Math.floor(Date.now() / 1000), keyid, nonce: randomNonce() };
  const { base, input } = signatureBase(components, params);
  const signature = await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, encoder.encode(base));
  headers['Signature-Input'] = `sig1=${input}`;
  headers['Signature'] = `sig1=:${base64(signature)}:`;
  return headers;
}

/** The proof of possession of a key rotation (docs/API.md "Key rotation"). */
export function rotationMessage(id, currentPublicKey, newPublicKey) {
  return encoder.encode(`agent-registry key rotation:${id}:${currentPublicKey}:${newPublicKey}`);
}
