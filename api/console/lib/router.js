// The hash router: `#/path?query`, so every view (filters and cursor
// included) is a URL that can be shared and reloaded. Routes are patterns
// like `/agents/:id`; a view gets the params and the query.

const routes = [];
let render = null;
let notes = [];

/** Renders the current route again, showing `shown` (one-time notes) on top. */
export function reload(shown = []) {
  notes = shown;
  return render();
}

/** The notes a reload asked to show, once. */
export function takeNotes() {
  const taken = notes;
  notes = [];
  return taken;
}

export function route(pattern, render) {
  const names = [];
  const regex = new RegExp(
    `^${pattern.replace(/:([a-z]+)/g, (_, name) => {
      names.push(name);
      return '([^/]+)';
    })}$`,
  );
  routes.push({ regex, names, render });
}

/** The current route's path and query. */
export function current() {
  const hash = location.hash.startsWith('#/') ? location.hash.slice(1) : '/discover';
  const [path, query = ''] = hash.split('?');
  return { path, query: new URLSearchParams(query) };
}

/** Goes to `path` with the non-empty entries of `query`. */
export function go(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(name, value);
  }
  const text = params.toString();
  location.hash = text ? `${path}?${text}` : path;
}

/** Renders the matching route into `outlet`, now and on every hash change. */
export function start(outlet, notFound) {
  let stop = null;
  render = async () => {
    if (stop) stop();
    stop = null;
    const { path, query } = current();
    const match = routes.map((r) => [r, r.regex.exec(path)]).find(([, m]) => m);
    const params = {};
    if (match) match[0].names.forEach((name, i) => (params[name] = decodeURIComponent(match[1][i + 1])));
    const view = match ? match[0].render : notFound;
    // Each render fills a fresh element, so a slow view that finishes after
    // the next navigation writes into a detached one.
    const page = document.createElement('div');
    outlet.replaceChildren(page);
    // A view may return a function that stops what it started (polling).
    const stopper = (await view(page, params, query)) || null;
    if (page.isConnected) stop = stopper;
    else if (stopper) stopper();
    const heading = page.querySelector('h1');
    if (heading) {
      document.title = `${heading.textContent} · agent-registry console`;
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
    }
    for (const link of document.querySelectorAll('nav a')) {
      if (link.getAttribute('href') === `#${path}`) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  };
  // `#main` and the like are in-page anchors (the skip link), not routes.
  addEventListener('hashchange', () => location.hash.startsWith('#/') && render());
  return render();
}
