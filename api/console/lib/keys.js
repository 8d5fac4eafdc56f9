// The key store: one Ed25519 identity per role ("agent", "client") in this
// origin's IndexedDB. Private keys are WebCrypto CryptoKeys stored as such,
// non-extractable: no script (ours included) can read their bytes, and
// clearing the site's data deletes them. A new key may be exported once,
// when it is made (generated extractable, exported as PKCS#8, re-imported
// non-extractable; only the re-imported one is kept).

import { base64, fromBase64url } from './sign.js';

const DB = 'agent-registry-console';
const STORE = 'identities';
const ED25519 = { name: 'Ed25519' };

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transact(mode, act) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = act(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** The identity kept for `role`: {role, id, name, publicKey, privateKey}, or undefined. */
export function load(role) {
  return transact('readonly', (store) => store.get(role));
}

export function save(identity) {
  return transact('readwrite', (store) => store.put(identity, identity.role));
}

export function forget(role) {
  return transact('readwrite', (store) => store.delete(role));
}

/**
 * A new key pair: {privateKey (non-extractable), publicKey (base64 of the
 * 32 raw bytes), pem (the PKCS#8 PEM when `exportOnce`, else null)}.
 */
export async function generate(exportOnce) {
  const pair = await crypto.subtle.generateKey(ED25519, exportOnce, ['sign', 'verify']);
  const publicKey = base64(await crypto.subtle.exportKey('raw', pair.publicKey));
  if (!exportOnce) return { privateKey: pair.privateKey, publicKey, pem: null };
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', pair.privateKey);
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, ED25519, false, ['sign']);
  return { privateKey, publicKey, pem: toPem(pkcs8) };
}

/** An existing PKCS#8 PEM (as `openssl genpkey -algorithm ed25519` writes). */
export async function importPem(pem) {
  const match = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(pem);
  if (!match) throw new Error('not a PKCS#8 PEM: expected "-----BEGIN PRIVATE KEY-----"');
  let der;
  try {
    der = Uint8Array.from(atob(match[1].replace(/\s+/g, '')), (c) => c.charCodeAt(0));
  } catch {
    throw new Error('the PEM body is not base64');
  }
  let extractable;
  try {
    extractable = await crypto.subtle.importKey('pkcs8', der, ED25519, true, ['sign']);
  } catch {
    throw new Error('not an Ed25519 private key');
  }
  // The public half comes from the JWK form (its `x`), then only a
  // non-extractable copy is kept.
  const jwk = await crypto.subtle.exportKey('jwk', extractable);
  const privateKey = await crypto.subtle.importKey('pkcs8', der, ED25519, false, ['sign']);
  return { privateKey, publicKey: base64(fromBase64url(jwk.x)) };
}

function toPem(pkcs8) {
  const body = base64(pkcs8).replace(/(.{64})/g, '$1\n').trim();
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}
