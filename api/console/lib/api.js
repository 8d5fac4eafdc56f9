// The API client: same-origin fetches, writes and signed reads signed by
// the identity's key (lib/sign.js). A refusal becomes an ApiProblem with the
// RFC 9457 fields as the API words them, and a 429's Retry-After.

import { signRequest } from './sign.js';

const encoder = new TextEncoder();

export class ApiProblem extends Error {
  constructor(status, problem, retryAfter) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.type = problem.type || '';
    this.title = problem.title || '';
    this.detail = problem.detail || '';
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.retryAfter = retryAfter;
  }
}

/** `/v1/…` with the non-empty entries of `query` as its query string. */
export function path(base, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(name, value);
  }
  const text = params.toString();
  return text ? `${base}?${text}` : base;
}

/**
 * Calls the API. `signer` ({keyid, privateKey}) signs the request;
 * `body` is sent as JSON; `idempotencyKey` is sent and covered.
 */
export async function call(method, target, { body, signer, idempotencyKey } = {}) {
  const url = new URL(target, location.origin).href;
  const bytes = body === undefined ? new Uint8Array() : encoder.encode(JSON.stringify(body));
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (signer) {
    Object.assign(
      headers,
      await signRequest({ method, url, body: bytes, idempotencyKey, keyid: signer.keyid, privateKey: signer.privateKey }),
    );
  } else if (idempotencyKey) {
    headers['Idempotency-Key'] = idempotencyKey;
  }
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : bytes,
    credentials: 'omit',
    cache: 'no-store',
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!response.ok) {
    const retryAfter = Number(response.headers.get('Retry-After')) || null;
    throw new ApiProblem(response.status, data || {}, retryAfter);
  }
  return data;
}

/** The signer of an identity (keyid: its id once registered). */
export function signerOf(identity) {
  return { keyid: identity.id || identity.publicKey, privateKey: identity.privateKey };
}
