// A recipient's webhook deliveries (an agent's endpoint or a client's
// callbacks): filters by status, event type and creation time kept in the
// URL, keyset pages, each delivery's attempts, resend, and recover since a
// time.

import { call, path } from '../lib/api.js';
import { action, field, fill, h, onSubmit, when } from '../lib/dom.js';
import { go } from '../lib/router.js';

const STATUSES = ['', 'pending', 'dispatched', 'delivered', 'dead'];
const EVENTS = ['', 'job.created', 'job.accepted', 'job.completed', 'job.failed', 'job.cancelled', 'job.rated', 'job.expired'];

/** `datetime-local` value → RFC 3339 (UTC), or undefined. */
function instant(local) {
  return local ? new Date(local).toISOString() : undefined;
}

function attemptsTable(delivery) {
  if (!delivery.attempts.length) return h('p', {}, 'No attempt yet.');
  return h(
    'table',
    {},
    h('caption', {}, `Attempts (${delivery.attempt_count} in all, newest first)`),
    h('thead', {}, h('tr', {}, ['Generation.attempt', 'Started', 'Outcome', 'Status', 'Latency', 'Answer or error'].map((name) => h('th', { scope: 'col' }, name)))),
    h(
      'tbody',
      {},
      delivery.attempts.map((attempt) =>
        h(
          'tr',
          {},
          h('td', {}, `${attempt.generation}.${attempt.attempt}`),
          h('td', {}, when(attempt.started_at)),
          h('td', {}, attempt.outcome),
          h('td', {}, attempt.response_status ?? '—'),
          h('td', {}, `${attempt.latency_ms} ms`),
          h('td', { class: 'excerpt' }, (attempt.error || attempt.response_body || '').slice(0, 300)),
        ),
      ),
    ),
  );
}

/**
 * The section for `owner` (`/v1/agents/agt_…` or `/v1/clients/cli_…`),
 * signed by `signer`; `route` is the page's path, `query` its filters.
 */
export function deliveries(owner, signer, route, query) {
  const filters = Object.fromEntries(['status', 'event_type', 'since', 'until'].map((name) => [name, query.get(name) || '']));
  const list = h('div', { id: 'delivery-list', 'aria-live': 'polite' }, h('p', {}, 'Loading…'));
  const filterForm = onSubmit(
    h(
      'form',
      { id: 'delivery-filters', class: 'filters', role: 'search', 'aria-label': 'Filter deliveries' },
      field('Status', 'status', { options: STATUSES.map((s) => [s, s || 'any']), value: filters.status }),
      field('Event type', 'event_type', { options: EVENTS.map((e) => [e, e || 'any']), value: filters.event_type }),
      field('Created since', 'since', { type: 'datetime-local', value: filters.since }),
      field('Created before', 'until', { type: 'datetime-local', value: filters.until }),
      h('button', { type: 'submit' }, 'Filter'),
    ),
    async (values) => go(route, { ...Object.fromEntries(query), status: '', event_type: '', since: '', until: '', cursor: '', ...values }),
  );
  const load = async () => {
    const target = path(`${owner}/deliveries`, {
      status: filters.status,
      event_type: filters.event_type,
      since: instant(filters.since),
      until: instant(filters.until),
      cursor: query.get('cursor'),
      limit: 20,
    });
    try {
      const page = await call('GET', target, { signer });
      fill(
        list,
        page.deliveries.length ? null : h('p', {}, 'No deliveries match.'),
        h(
          'ul',
          { class: 'cards' },
          page.deliveries.map((delivery) =>
            h(
              'li',
              { class: 'card delivery', 'data-id': delivery.id, 'data-status': delivery.status },
              h('h3', {}, `${delivery.event_type} · `, h('span', { class: `status status-${delivery.status}` }, delivery.status)),
              h('p', {}, h('code', {}, delivery.id), ' job ', h('code', {}, delivery.job_id || '—')),
              h('p', {}, `Created ${when(delivery.created_at)} · to ${delivery.target_url} · generation ${delivery.generation}, ${delivery.resends} resent`),
              delivery.next_attempt_at ? h('p', {}, `Next attempt ${when(delivery.next_attempt_at)}`) : null,
              delivery.last_error ? h('p', { class: 'excerpt' }, delivery.last_error) : null,
              attemptsTable(delivery),
              ['delivered', 'dead'].includes(delivery.status)
                ? action('Resend', async () => {
                    await call('POST', `/v1/deliveries/${delivery.id}/resend`, { signer });
                    await load();
                  }, { 'aria-label': `Resend ${delivery.id}`, class: 'resend' })
                : null,
            ),
          ),
        ),
        page.next_cursor
          ? h('p', {}, h('a', { href: `#${route}?${new URLSearchParams({ ...Object.fromEntries(query), cursor: page.next_cursor })}`, id: 'deliveries-next' }, 'Older deliveries →'))
          : null,
      );
    } catch (error) {
      fill(list, h('p', { class: 'problem', role: 'alert' }, error.message));
    }
  };
  const recoverResult = h('p', { role: 'status' });
  const recover = onSubmit(
    h(
      'form',
      { id: 'recover', 'aria-labelledby': 'recover-title' },
      h('h3', { id: 'recover-title' }, 'Recover dead deliveries'),
      field('Died since', 'since', { type: 'datetime-local', required: true }),
      h('button', { type: 'submit' }, 'Recover'),
      recoverResult,
    ),
    async (values) => {
      const answer = await call('POST', `${owner}/deliveries/recover`, { body: { since: instant(values.since) }, signer });
      recoverResult.textContent = `Queued ${answer.queued}${answer.more ? ' (more left: call again in a minute)' : ''}; at the cap ${answer.at_cap}; refused ${answer.refused}.`;
      await load();
    },
  );
  load();
  return h('section', { 'aria-labelledby': 'deliveries-title' }, h('h2', { id: 'deliveries-title' }, 'Webhook deliveries'), filterForm, list, recover);
}
