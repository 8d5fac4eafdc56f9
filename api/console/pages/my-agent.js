// My agent: for the agent whose key this browser keeps — profile and
// endpoint, heartbeat, endpoint health, jobs to accept/complete/fail,
// webhook deliveries, webhook secret rotation, signing-key rotation. Without
// one: create an agent, or take up an existing one.

import { call, signerOf } from '../lib/api.js';
import { action, field, fill, h, onSubmit, when } from '../lib/dom.js';
import { reload, takeNotes } from '../lib/router.js';
import { deliveries } from '../parts/deliveries.js';
import { forgetButton, loadSettled, rotation, setup, showOnce } from '../parts/identity.js';
import { jobs } from '../parts/jobs.js';

function profileFields(agent = {}) {
  return [
    field('Name', 'name', { value: agent.name, required: !agent.id }),
    field('Description', 'description', { tag: 'textarea', rows: 2, value: agent.description, required: !agent.id }),
    field('Capability tags (comma-separated)', 'capabilities', { value: (agent.capabilities || []).join(', '), required: !agent.id }),
    field('Endpoint URL (webhooks)', 'endpoint_url', { type: 'url', value: agent.endpoint_url, required: !agent.id }),
    field('Price', 'price', { value: agent.price, inputmode: 'decimal', required: !agent.id }),
  ];
}

function profileBody(values) {
  const body = {};
  for (const name of ['name', 'description', 'endpoint_url', 'price']) if (values[name]) body[name] = values[name];
  if (values.capabilities) body.capabilities = values.capabilities.split(',').map((tag) => tag.trim()).filter(Boolean);
  return body;
}

function jobActions(signer) {
  return (job, refresh) => {
    const move = async (verb, body) => {
      await call('POST', `/v1/jobs/${job.id}/${verb}`, { body, signer });
      await refresh();
    };
    if (job.status === 'pending') return h('p', {}, action('Accept', () => move('accept'), { class: 'accept', 'aria-label': `Accept ${job.id}` }));
    if (job.status !== 'accepted') return null;
    const complete = onSubmit(
      h(
        'form',
        { class: 'complete', 'aria-label': `Complete ${job.id}` },
        field('Result (JSON)', 'result', { tag: 'textarea', rows: 3, required: true, spellcheck: 'false' }),
        h('button', { type: 'submit' }, 'Complete'),
      ),
      async (values) => {
        let result;
        try {
          result = JSON.parse(values.result);
        } catch (error) {
          throw Object.assign(new Error('the result is not JSON'), { errors: [{ field: 'result', message: error.message }] });
        }
        await move('complete', { result });
      },
    );
    const fail = onSubmit(
      h('form', { class: 'fail', 'aria-label': `Fail ${job.id}` }, field('Reason', 'reason', { required: true }), h('button', { type: 'submit' }, 'Fail')),
      (values) => move('fail', { reason: values.reason }),
    );
    return [complete, fail];
  };
}

export async function myAgent(page, _params, query) {
  const identity = await loadSettled('agent');
  const rerender = (notes = []) => reload(notes);
  page.append(h('h1', {}, 'My agent'), ...takeNotes());
  if (!identity) {
    page.append(
      h('p', {}, 'No agent key in this browser yet.'),
      ...setup('agent', profileFields(), async (values, publicKey, signer) => {
        const agent = await call('POST', '/v1/agents', { body: { ...profileBody(values), public_key: publicKey }, signer });
        return agent;
      }, rerender),
    );
    return null;
  }
  const signer = signerOf(identity);
  let agent;
  try {
    const [publicView, endpoint] = await Promise.all([
      call('GET', `/v1/agents/${identity.id}`),
      call('GET', `/v1/agents/${identity.id}/endpoint`, { signer }),
    ]);
    agent = { ...publicView, ...endpoint };
  } catch (error) {
    page.append(h('p', { class: 'problem', role: 'alert' }, `${identity.id}: ${error.message}`), forgetButton(identity, rerender));
    return null;
  }
  const heartbeat = h('span', { id: 'last-seen' }, when(agent.last_seen_at));
  const health = h(
    'p',
    { id: 'endpoint-health' },
    agent.endpoint_disabled_at
      ? [`Endpoint disabled since ${when(agent.endpoint_disabled_at)}. `, action('Enable it again', async () => {
          await call('POST', `/v1/agents/${identity.id}/endpoint/enable`, { signer });
          rerender();
        })]
      : 'Endpoint enabled: deliveries go out.',
  );
  const secretOutput = h('div');
  const [jobSection, stopJobs] = jobs('agent', signer, '/me/agent', query, jobActions(signer));
  page.append(
    h('p', {}, h('a', { href: `#/agents/${identity.id}` }, 'Public page'), ' · id ', h('code', { id: 'agent-id' }, identity.id)),
    h(
      'section',
      { 'aria-labelledby': 'status-title' },
      h('h2', { id: 'status-title' }, 'Status'),
      h('p', {}, 'Last heartbeat: ', heartbeat, ' ', action('Send a heartbeat', async () => {
        const answer = await call('POST', `/v1/agents/${identity.id}/heartbeat`, { signer });
        fill(heartbeat, when(answer.last_seen_at));
      }, { id: 'heartbeat' })),
      health,
    ),
    onSubmit(
      h('form', { id: 'profile', 'aria-labelledby': 'profile-title' }, h('h2', { id: 'profile-title' }, 'Profile and endpoint'), profileFields(agent), h('button', { type: 'submit' }, 'Save')),
      async (values) => {
        await call('PATCH', `/v1/agents/${identity.id}`, { body: profileBody(values), signer });
        rerender([h('p', { role: 'status' }, 'Saved.')]);
      },
    ),
    jobSection,
    deliveries(`/v1/agents/${identity.id}`, signer, '/me/agent', query),
    onSubmit(
      h(
        'form',
        { id: 'rotate-secret', 'aria-labelledby': 'secret-title' },
        h('h2', { id: 'secret-title' }, 'Webhook secret'),
        field('Grace period (seconds the old secret keeps signing)', 'grace_period_seconds', { type: 'number', min: 0, max: 604800, value: 86400 }),
        h('button', { type: 'submit' }, 'Rotate the webhook secret'),
        secretOutput,
      ),
      async (values) => {
        const grace = values.grace_period_seconds === undefined ? undefined : Number(values.grace_period_seconds);
        const answer = await call('POST', `/v1/agents/${identity.id}/webhook-secret`, { body: { grace_period_seconds: grace }, signer });
        fill(
          secretOutput,
          showOnce('new-webhook-secret', 'New webhook secret', answer.webhook_secret, 'Shown only this once: give it to your receiver now.'),
          h('p', {}, answer.previous_secret_expires_at ? `The old secret keeps signing until ${when(answer.previous_secret_expires_at)}.` : 'The old secret no longer signs.'),
        );
      },
    ),
    rotation(identity, 'agents', (notes) => reload(notes)),
    h('p', {}, forgetButton(identity, rerender)),
  );
  return stopJobs;
}
