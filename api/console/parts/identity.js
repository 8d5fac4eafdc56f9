// Who this browser acts as, per role: make a new identity (a key generated
// here or imported from a PEM, then registered), take up an existing one
// (its id and PEM), rotate its signing key, or forget it.

import { ApiProblem, call, path, signerOf } from '../lib/api.js';
import { action, field, h, onSubmit } from '../lib/dom.js';
import * as keys from '../lib/keys.js';
import { base64, rotationMessage } from '../lib/sign.js';

const WARNING =
  'This is the only time the private key is shown. Anyone holding it acts as you; ' +
  'keep it somewhere safe. The browser keeps its own non-extractable copy.';

function keySourceFields() {
  return [
    h(
      'fieldset',
      {},
      h('legend', {}, 'Signing key'),
      h('label', {}, h('input', { type: 'radio', name: 'key_source', value: 'generate', checked: true }), ' Generate a new key here'),
      h('label', {}, h('input', { type: 'radio', name: 'key_source', value: 'import' }), ' Import a PKCS#8 PEM'),
      field('Private key (PEM), when importing', 'pem', { tag: 'textarea', rows: 4, spellcheck: 'false' }),
      h('label', {}, h('input', { type: 'checkbox', name: 'export_once', value: 'yes' }), ' Show the new key once, to save a copy'),
    ),
  ];
}

/** The key the form asks for: {privateKey, publicKey, pem}. */
async function keyFrom(values) {
  if (values.key_source === 'import') {
    if (!values.pem) throw Object.assign(new Error('paste the PEM to import'), { errors: [{ field: 'pem', message: 'required to import' }] });
    try {
      return { ...(await keys.importPem(values.pem)), pem: null };
    } catch (error) {
      throw Object.assign(error, { errors: [{ field: 'pem', message: error.message }] });
    }
  }
  return keys.generate(values.export_once === 'yes');
}

/** Shows a PEM (or secret) once, with its warning, in a textarea with id `id`. */
export function showOnce(id, title, text, warning = WARNING) {
  return h(
    'div',
    { class: 'once', role: 'status' },
    h('h3', {}, title),
    h('p', { class: 'warning' }, warning),
    h('textarea', { readonly: true, rows: Math.min(8, text.split('\n').length + 1), 'aria-label': title, id }, text),
  );
}

/**
 * The forms of a role without an identity. `register(values, key)` sends
 * the registration (signed by the new key) and answers {id, secret}.
 */
export function setup(role, registrationFields, register, done) {
  const create = onSubmit(
    h(
      'form',
      { id: `create-${role}`, 'aria-labelledby': `create-${role}-title` },
      h('h2', { id: `create-${role}-title` }, `Create ${role === 'agent' ? 'an agent' : 'a client'}`),
      registrationFields,
      keySourceFields(),
      h('button', { type: 'submit' }, 'Create'),
    ),
    async (values) => {
      const key = await keyFrom(values);
      const signer = { keyid: key.publicKey, privateKey: key.privateKey };
      const registered = await register(values, key.publicKey, signer);
      await keys.save({ role, id: registered.id, name: registered.name, publicKey: key.publicKey, privateKey: key.privateKey });
      const notes = [showOnce('webhook-secret-once', 'Webhook secret', registered.webhook_secret, 'Shown only this once: your receiver verifies webhooks with it.')];
      if (key.pem) notes.push(showOnce('private-key-once', 'Your new private key', key.pem));
      done(notes);
    },
  );
  const existing = onSubmit(
    h(
      'form',
      { id: `use-${role}`, 'aria-labelledby': `use-${role}-title` },
      h('h2', { id: `use-${role}-title` }, `Use an existing ${role}`),
      field(`${role === 'agent' ? 'Agent' : 'Client'} id`, 'id', { required: true, placeholder: role === 'agent' ? 'agt_…' : 'cli_…', autocomplete: 'off' }),
      field('Private key (PEM)', 'pem', { tag: 'textarea', rows: 4, required: true, spellcheck: 'false' }),
      h('button', { type: 'submit' }, 'Use this key'),
    ),
    async (values) => {
      const key = await keyFrom({ ...values, key_source: 'import' });
      await keys.save({ role, id: values.id, name: values.id, publicKey: key.publicKey, privateKey: key.privateKey });
      done([]);
    },
  );
  return [create, existing];
}

/**
 * Signing-key rotation (`POST /v1/{agents|clients}/{id}/keys`): a new key
 * made here, its proof of possession, then the browser keeps only it.
 * `onRotated(notes)` shows the outcome (and the new key, when exported) once.
 */
export function rotation(identity, collection, onRotated) {
  return onSubmit(
    h(
      'form',
      { id: 'rotate-key', 'aria-labelledby': 'rotate-key-title' },
      h('h2', { id: 'rotate-key-title' }, 'Signing key'),
      h('p', {}, 'Public key: ', h('code', { id: 'public-key' }, identity.publicKey)),
      h('label', {}, h('input', { type: 'checkbox', name: 'export_once', value: 'yes' }), ' Show the new key once, to save a copy'),
      h('button', { type: 'submit' }, 'Rotate the signing key'),
    ),
    async (values) => {
      const next = await keys.generate(values.export_once === 'yes');
      const proof = await crypto.subtle.sign({ name: 'Ed25519' }, next.privateKey, rotationMessage(identity.id, identity.publicKey, next.publicKey));
      // Kept before asking: if the answer is lost after the registry took
      // the new key, the old one no longer signs and the new one would be
      // gone with it. `loadSettled` decides later which key the registry holds.
      await keys.save({ ...identity, pending: { publicKey: next.publicKey, privateKey: next.privateKey } });
      try {
        await call('POST', `/v1/${collection}/${identity.id}/keys`, {
          body: { public_key: next.publicKey, proof: base64(proof) },
          signer: signerOf(identity),
        });
      } catch (error) {
        // An answer from the registry means it kept the old key.
        if (error instanceof ApiProblem) await keys.save(identity);
        throw error;
      }
      await keys.save({ ...identity, publicKey: next.publicKey, privateKey: next.privateKey });
      const notes = [h('p', { role: 'status' }, 'Signing key rotated: the old key no longer signs.')];
      if (next.pem) notes.push(showOnce('private-key-once', 'Your new private key', next.pem));
      onRotated(notes);
    },
  );
}

/** Removes the identity from this browser (after a confirmation). */
export function forgetButton(identity, onForgotten) {
  return action(
    'Forget this key in this browser',
    async () => {
      // eslint-disable-next-line no-alert
      if (!confirm(`The key of ${identity.id} is deleted from this browser. Without an exported copy it is gone. Continue?`)) return;
      await keys.forget(identity.role);
      onForgotten();
    },
    { class: 'danger', id: 'forget-key' },
  );
}

/**
 * The identity kept for `role` (`agent` or `client`), once a key rotation
 * whose answer was lost is settled: a signed owner read with the pending key
 * tells whether the registry holds it (kept) or refuses it (dropped). While
 * the registry cannot be asked, the identity stays as it is.
 */
export async function loadSettled(role) {
  const identity = await keys.load(role);
  if (!identity?.pending) return identity;
  const { pending, ...current } = identity;
  const rotated = { ...current, publicKey: pending.publicKey, privateKey: pending.privateKey };
  try {
    await call('GET', path('/v1/jobs', { role, limit: 1 }), { signer: signerOf(rotated) });
  } catch (error) {
    if (!(error instanceof ApiProblem) || error.status !== 401) return current;
    await keys.save(current);
    return current;
  }
  await keys.save(rotated);
  return rotated;
}
