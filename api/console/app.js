// The console's entry module: the routes and the navigation. Plain ES
// modules served by the API itself (api/src/features/console): no build
// step, no framework, no third-party code — the pages are a few forms and
// lists, and every byte here is ours to review.

import { h } from './lib/dom.js';
import { route, start } from './lib/router.js';
import { agentPage } from './pages/agent.js';
import { discover } from './pages/discover.js';
import { myAgent } from './pages/my-agent.js';
import { myClient } from './pages/my-client.js';

route('/discover', discover);
route('/agents/:id', agentPage);
route('/me/agent', myAgent);
route('/me/client', myClient);

const main = document.getElementById('main');
if (!crypto.subtle || !window.indexedDB) {
  main.append(h('p', { class: 'problem' }, 'This browser lacks WebCrypto or IndexedDB: the console needs both (and Ed25519: Chromium 137+, Firefox 129+, Safari 17+).'));
} else {
  start(main, (page) => page.append(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/discover' }, 'Discover agents'))));
}
