// A party's jobs (`GET /v1/jobs?role=…`), polled so new jobs and moves
// appear without a reload. Rows are keyed by job id and replaced only when
// the job changed, so a form being filled in is left alone. `actions(job,
// refresh)` gives a row's controls.

import { call, path } from '../lib/api.js';
import { fill, h, when } from '../lib/dom.js';
import { go } from '../lib/router.js';

/** How often the list asks for news. */
const POLL_MS = 3000;
const STATUSES = ['', 'pending', 'accepted', 'completed', 'failed', 'cancelled', 'expired'];

function summary(job) {
  return [
    h('h3', {}, h('code', {}, job.id), ' · ', h('span', { class: `status status-${job.status}` }, job.status)),
    h('p', {}, `Agent `, h('a', { href: `#/agents/${job.agent_id}` }, job.agent_id), ` · client ${job.client_id}`),
    h('p', {}, `Price ${job.price} (fee ${job.fee}) · created ${when(job.created_at)}`),
    job.accept_by && job.status === 'pending' ? h('p', {}, `Accept by ${when(job.accept_by)}`) : null,
    job.deadline ? h('p', {}, `Deadline ${when(job.deadline)}`) : null,
    h('details', {}, h('summary', {}, 'Input'), h('pre', {}, JSON.stringify(job.input, null, 2))),
    job.result !== null && job.result !== undefined ? h('details', {}, h('summary', {}, 'Result'), h('pre', {}, JSON.stringify(job.result, null, 2))) : null,
    job.failure_reason ? h('p', {}, `Failed: ${job.failure_reason}`) : null,
    job.expired_because ? h('p', {}, `Expired: ${job.expired_because}`) : null,
  ];
}

/** The jobs section; returns [element, stop]. */
export function jobs(role, signer, route, query, actions) {
  const status = query.get('job_status') || '';
  const rows = new Map();
  const seen = new Map();
  const list = h('ul', { class: 'cards', id: 'job-list', 'aria-live': 'polite' });
  const note = h('p', { role: 'status' });
  const more = h('p');
  const filter = h(
    'select',
    { id: 'job-status', 'aria-label': 'Job status' },
    STATUSES.map((s) => h('option', { value: s, selected: s === status }, s || 'any status')),
  );
  filter.addEventListener('change', () => go(route, { ...Object.fromEntries(query), job_status: filter.value, job_cursor: '' }));
  let timer = null;
  const refresh = async () => {
    try {
      const page = await call('GET', path('/v1/jobs', { role, status, cursor: query.get('job_cursor'), limit: 20 }), { signer });
      note.textContent = page.jobs.length ? '' : 'No jobs yet.';
      page.jobs.forEach((job, index) => {
        const text = JSON.stringify(job);
        if (seen.get(job.id) !== text) {
          const row = h('li', { class: 'card job', 'data-id': job.id, 'data-status': job.status }, summary(job), actions(job, refresh));
          if (rows.has(job.id)) rows.get(job.id).replaceWith(row);
          rows.set(job.id, row);
          seen.set(job.id, text);
        }
        const row = rows.get(job.id);
        if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
      });
      // A job that left this page (another status now, or pushed to the
      // next page) goes, so no stale row offers an action.
      const listed = new Set(page.jobs.map((job) => job.id));
      for (const [id, row] of rows) {
        if (listed.has(id)) continue;
        row.remove();
        rows.delete(id);
        seen.delete(id);
      }
      fill(
        more,
        page.next_cursor
          ? h('a', { href: `#${route}?${new URLSearchParams({ ...Object.fromEntries(query), job_cursor: page.next_cursor })}` }, 'Older jobs →')
          : null,
      );
    } catch (error) {
      note.textContent = error.message;
    }
  };
  const poll = async () => {
    await refresh();
    if (timer !== 'stopped') timer = setTimeout(poll, POLL_MS);
  };
  poll();
  const stop = () => {
    clearTimeout(timer);
    timer = 'stopped';
  };
  const section = h(
    'section',
    { 'aria-labelledby': 'jobs-title' },
    h('h2', { id: 'jobs-title' }, 'Jobs'),
    h('p', {}, filter, ' New jobs appear here by themselves.'),
    note,
    list,
    more,
  );
  return [section, stop];
}
