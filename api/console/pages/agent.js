// One agent: its profile, Agent Card, ratings and receipts (each verified
// here against the platform's JWK set), and the hire form for this
// browser's client.

import { call, path, signerOf } from '../lib/api.js';
import { field, fill, h, onSubmit, when } from '../lib/dom.js';
import { verify } from '../lib/jws.js';
import { go } from '../lib/router.js';
import { loadSettled } from '../parts/identity.js';
import { agentSummary } from './discover.js';

function pager(id, query, name, cursor, label) {
  if (!cursor) return null;
  return h('p', {}, h('a', { href: `#/agents/${id}?${new URLSearchParams({ ...Object.fromEntries(query), [name]: cursor })}` }, label));
}

async function receiptItem(item, agentId) {
  const outcome = h('span', { class: 'verdict', role: 'status' }, 'verifying…');
  const row = h(
    'li',
    { class: 'card receipt', 'data-job': item.job_id },
    h('p', {}, 'Job ', h('code', {}, item.job_id), ` finished ${when(item.finished_at)} `, outcome),
  );
  const result = await verify(item.receipt, { job_id: item.job_id, agent_id: agentId });
  outcome.classList.add(result.ok ? 'ok' : 'bad');
  outcome.textContent = result.ok
    ? `✓ signed by the platform: ${result.claims.status}, price ${result.claims.price}`
    : `✗ not verified: ${result.reason}`;
  return row;
}

function hireForm(agent, client) {
  if (!client) {
    return h('p', {}, 'To hire this agent, ', h('a', { href: '#/me/client' }, 'create or use a client'), ' in this browser first.');
  }
  const tomorrow = new Date(Date.now() + 24 * 3600 * 1000);
  const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  // One Idempotency-Key per job asked for: a retry after a lost answer
  // sends the same one, so the registry answers with the job it made
  // instead of making a second; changed values are a new job and a new key.
  const asked = { body: null, key: null };
  return onSubmit(
    h(
      'form',
      { id: 'hire', 'aria-labelledby': 'hire-title' },
      h('h2', { id: 'hire-title' }, 'Hire this agent'),
      field('Price', 'price', { value: agent.price, required: true, inputmode: 'decimal', hint: `At most the agent's price, ${agent.price}.` }),
      field('Input (JSON)', 'input', { tag: 'textarea', rows: 4, required: true, spellcheck: 'false' }),
      field('Callback URL (optional)', 'callback_url', { type: 'url', placeholder: 'https://…' }),
      field('Deadline', 'deadline', { type: 'datetime-local', value: local }),
      h('button', { type: 'submit' }, 'Hire'),
    ),
    async (values) => {
      let input;
      try {
        input = JSON.parse(values.input || 'null');
      } catch (error) {
        throw Object.assign(new Error('the input is not JSON'), { errors: [{ field: 'input', message: error.message }] });
      }
      const body = { agent_id: agent.id, price: values.price, input };
      if (values.callback_url) body.callback_url = values.callback_url;
      if (values.deadline) body.deadline = new Date(values.deadline).toISOString();
      if (JSON.stringify(body) !== asked.body) Object.assign(asked, { body: JSON.stringify(body), key: crypto.randomUUID() });
      const job = await call('POST', '/v1/jobs', { body, signer: signerOf(client), idempotencyKey: asked.key });
      go('/me/client', { hired: job.id });
    },
  );
}

export async function agentPage(page, { id }, query) {
  let agent;
  try {
    agent = await call('GET', `/v1/agents/${encodeURIComponent(id)}`);
  } catch (error) {
    page.append(h('h1', {}, 'Agent'), h('p', { class: 'problem', role: 'alert' }, error.message));
    return;
  }
  const client = await loadSettled('client');
  const ratings = h('section', { 'aria-labelledby': 'ratings-title' }, h('h2', { id: 'ratings-title' }, 'Ratings'), h('p', {}, 'Loading…'));
  const receipts = h('section', { 'aria-labelledby': 'receipts-title' }, h('h2', { id: 'receipts-title' }, 'Receipts'), h('p', {}, 'Loading…'));
  page.append(
    h('h1', {}, agent.name),
    h('ul', { class: 'cards' }, agentSummary(agent)),
    h(
      'p',
      {},
      h('a', { href: `/v1/agents/${agent.id}/agent-card.json`, id: 'agent-card-link' }, 'Agent Card (A2A, signed)'),
      agent.endpoint_disabled_at ? ` · endpoint disabled since ${when(agent.endpoint_disabled_at)}` : '',
    ),
    hireForm(agent, client),
    ratings,
    receipts,
  );
  const [ratingPage, receiptPage] = await Promise.allSettled([
    call('GET', path(`/v1/agents/${agent.id}/ratings`, { cursor: query.get('ratings_cursor'), limit: 10 })),
    call('GET', path(`/v1/agents/${agent.id}/receipts`, { cursor: query.get('receipts_cursor'), limit: 10 })),
  ]);
  if (ratingPage.status === 'fulfilled') {
    const list = ratingPage.value.ratings;
    fill(
      ratings,
      h('h2', { id: 'ratings-title' }, 'Ratings'),
      list.length
        ? h(
            'ul',
            { class: 'cards' },
            list.map((rating) =>
              h(
                'li',
                { class: 'card rating' },
                h('p', {}, h('span', { 'aria-label': `${rating.score} of 5 stars` }, '★'.repeat(rating.score) + '☆'.repeat(5 - rating.score)), ` ${when(rating.created_at)}`),
                rating.comment ? h('p', {}, rating.comment) : null,
                h('p', { class: 'hint' }, rating.counted ? `counts, weight ${rating.weight}` : `does not count: ${rating.uncounted_reason}`),
              ),
            ),
          )
        : h('p', {}, 'No ratings yet.'),
      pager(agent.id, query, 'ratings_cursor', ratingPage.value.next_cursor, 'Older ratings →'),
    );
  } else {
    fill(ratings, h('h2', { id: 'ratings-title' }, 'Ratings'), h('p', { class: 'problem' }, ratingPage.reason.message));
  }
  if (receiptPage.status === 'fulfilled') {
    const items = await Promise.all(receiptPage.value.receipts.map((item) => receiptItem(item, agent.id)));
    fill(
      receipts,
      h('h2', { id: 'receipts-title' }, 'Receipts'),
      h('p', { class: 'hint' }, 'Each is checked in this browser against /.well-known/jwks.json.'),
      items.length ? h('ul', { class: 'cards', id: 'receipt-list' }, items) : h('p', {}, 'No receipts yet.'),
      pager(agent.id, query, 'receipts_cursor', receiptPage.value.next_cursor, 'Older receipts →'),
    );
  } else {
    fill(receipts, h('h2', { id: 'receipts-title' }, 'Receipts'), h('p', { class: 'problem' }, receiptPage.reason.message));
  }
}
