// My client: for the client whose key this browser keeps — its jobs (cancel
// one, rate a finished one, read and verify its receipt), its callbacks'
// deliveries, signing-key rotation. Without one: create a client, or take
// up an existing one. Hiring starts on an agent's page.

import { call, signerOf } from '../lib/api.js';
import { action, field, fill, h, onSubmit } from '../lib/dom.js';
import { verify } from '../lib/jws.js';
import { reload, takeNotes } from '../lib/router.js';
import { deliveries } from '../parts/deliveries.js';
import { forgetButton, loadSettled, rotation, setup } from '../parts/identity.js';
import { jobs } from '../parts/jobs.js';

function receiptView(job, signer) {
  const output = h('div', { class: 'receipt-view' });
  return [
    action('Show the receipt', async () => {
      const answer = await call('GET', `/v1/jobs/${job.id}/receipt`, { signer });
      const [full, shared] = await Promise.all([verify(answer.receipt, { job_id: job.id, agent_id: job.agent_id }), verify(answer.public_receipt, { job_id: job.id, agent_id: job.agent_id })]);
      fill(
        output,
        h('p', { class: `verdict ${full.ok ? 'ok' : 'bad'}`, role: 'status' }, full.ok ? '✓ full receipt signed by the platform' : `✗ full receipt: ${full.reason}`),
        h('p', { class: `verdict ${shared.ok ? 'ok' : 'bad'}` }, shared.ok ? '✓ public receipt signed by the platform' : `✗ public receipt: ${shared.reason}`),
        full.ok ? h('details', {}, h('summary', {}, 'Claims'), h('pre', {}, JSON.stringify(full.claims, null, 2))) : null,
      );
    }, { class: 'show-receipt', 'aria-label': `Show the receipt of ${job.id}` }),
    output,
  ];
}

function jobActions(signer) {
  return (job, refresh) => {
    if (['pending', 'accepted'].includes(job.status)) {
      return h('p', {}, action('Cancel', async () => {
        await call('POST', `/v1/jobs/${job.id}/cancel`, { signer });
        await refresh();
      }, { class: 'cancel', 'aria-label': `Cancel ${job.id}` }));
    }
    if (!['completed', 'failed'].includes(job.status)) return null;
    const rated = h('p', { role: 'status' });
    const rate = onSubmit(
      h(
        'form',
        { class: 'rate', 'aria-label': `Rate ${job.id}` },
        field('Score', 'score', { options: [['5', '5 stars'], ['4', '4 stars'], ['3', '3 stars'], ['2', '2 stars'], ['1', '1 star']] }),
        field('Comment (optional)', 'comment', { tag: 'textarea', rows: 2 }),
        h('button', { type: 'submit' }, 'Rate'),
        rated,
      ),
      async (values) => {
        const body = { score: Number(values.score) };
        if (values.comment) body.comment = values.comment;
        const answer = await call('POST', `/v1/jobs/${job.id}/rating`, { body, signer });
        rated.textContent = answer.counted ? `Rated ${answer.score}: it counts.` : `Rated ${answer.score}: it does not count (${answer.uncounted_reason}).`;
      },
    );
    return [rate, ...receiptView(job, signer)];
  };
}

export async function myClient(page, _params, query) {
  const identity = await loadSettled('client');
  page.append(h('h1', {}, 'My client'), ...takeNotes());
  if (!identity) {
    page.append(
      h('p', {}, 'No client key in this browser yet.'),
      ...setup('client', [field('Name', 'name', { required: true })], (values, publicKey, signer) =>
        call('POST', '/v1/clients', { body: { name: values.name, public_key: publicKey }, signer }),
      (notes) => reload(notes)),
    );
    return null;
  }
  const signer = signerOf(identity);
  const [jobSection, stopJobs] = jobs('client', signer, '/me/client', query, jobActions(signer));
  page.append(
    h('p', {}, 'Client id ', h('code', { id: 'client-id' }, identity.id), '. Hire from an agent\'s page (', h('a', { href: '#/discover' }, 'Discover'), ').'),
    query.get('hired') ? h('p', { role: 'status', class: 'notice' }, `Hired: job ${query.get('hired')}.`) : null,
    jobSection,
    deliveries(`/v1/clients/${identity.id}`, signer, '/me/client', query),
    rotation(identity, 'clients', (notes) => reload(notes)),
    h('p', {}, forgetButton(identity, () => reload())),
  );
  return stopJobs;
}
