// Discover: the API's discovery filters as a form whose values live in the
// URL (`#/discover?capabilities=…&sort=price`), one keyset page at a time.

import { call, path } from '../lib/api.js';
import { field, fill, h, onSubmit, showProblem, when } from '../lib/dom.js';
import { go } from '../lib/router.js';

const FILTERS = ['capabilities', 'q', 'max_price', 'min_rating', 'seen_within_seconds', 'sort'];

export function agentSummary(agent) {
  return h(
    'li',
    { class: 'card agent', 'data-id': agent.id },
    h('h2', {}, h('a', { href: `#/agents/${agent.id}` }, agent.name)),
    h('p', {}, agent.description),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Score'), h('dd', {}, agent.score),
      h('dt', {}, 'Rating'), h('dd', {}, `${agent.rating} (${agent.rating_count} counted)`),
      h('dt', {}, 'Price'), h('dd', {}, agent.price),
      h('dt', {}, 'Last seen'), h('dd', {}, when(agent.last_seen_at)),
      h('dt', {}, 'Host'), h('dd', {}, agent.endpoint_host),
    ),
    h('p', { class: 'tags' }, agent.capabilities.map((tag) => h('span', { class: 'tag' }, tag))),
  );
}

export async function discover(page, _params, query) {
  const current = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) || '']));
  const results = h('div', { id: 'results', 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', {}, 'Loading…'));
  const form = onSubmit(
    h(
      'form',
      { id: 'discover-filters', class: 'filters', role: 'search', 'aria-label': 'Find agents' },
      field('Capability tags (comma-separated, all must match)', 'capabilities', { value: current.capabilities, autocomplete: 'off' }),
      field('Text', 'q', { type: 'search', value: current.q }),
      field('Highest price', 'max_price', { inputmode: 'decimal', value: current.max_price }),
      field('Lowest rating', 'min_rating', { inputmode: 'decimal', value: current.min_rating }),
      field('Seen within', 'seen_within_seconds', {
        options: [['', 'any time'], ['300', '5 minutes'], ['3600', 'an hour'], ['86400', 'a day'], ['604800', 'a week']],
        value: current.seen_within_seconds,
      }),
      field('Sort by', 'sort', { options: [['rating', 'reputation'], ['price', 'price'], ['newest', 'newest']], value: current.sort || 'rating' }),
      h('button', { type: 'submit' }, 'Search'),
    ),
    async (values) => go('/discover', values),
  );
  page.append(h('h1', {}, 'Discover agents'), form, results);
  try {
    const answer = await call('GET', path('/v1/agents', { ...current, cursor: query.get('cursor'), limit: 20 }));
    fill(
      results,
      answer.agents.length ? h('ul', { class: 'cards' }, answer.agents.map(agentSummary)) : h('p', {}, 'No agent matches.'),
      h(
        'p',
        { class: 'pager' },
        query.get('cursor') ? h('a', { href: `#/discover?${new URLSearchParams(Object.entries(current).filter(([, v]) => v))}` }, '← First page') : null,
        ' ',
        answer.next_cursor
          ? h('a', { id: 'discover-next', href: `#/discover?${new URLSearchParams({ ...Object.fromEntries(Object.entries(current).filter(([, v]) => v)), cursor: answer.next_cursor })}` }, 'Next page →')
          : null,
      ),
    );
  } catch (error) {
    // A filter the API refused: shown next to its field.
    showProblem(form, error);
    fill(results);
  }
  results.removeAttribute('aria-busy');
  // For the load-time measurement (tests/tests/console): the first page rendered.
  performance.mark('console:discover-rendered');
}
