// The app's routes. realmhook forwards every request under a realm's base
// URL here with the path relative to that base URL, so the app's routes are
// the same in every realm: /page is {EU base URL}/page in the EU instance and
// {US base URL}/page in the US one.
const path = require('node:path');
const express = require('express');
const { requireIdentity, egressToken } = require('./identity');
const notes = require('./notes');

// maxNoteChars bounds a note's body.
const maxNoteChars = 1000;
// maxEventsPerTenant bounds the lifecycle events one instance remembers.
const maxEventsPerTenant = 100;

// createApp wires the routes. opts: pool (pg.Pool of this realm's database),
// identitySecret (gateway.identitySecret), egressUrl (http://{gateway.egressListen}),
// eventsPath (gateway.eventsPath).
function createApp({ pool, identitySecret, egressUrl, eventsPath }) {
  const app = express();
  app.disable('x-powered-by');
  // realmhook is the only client; X-Forwarded-* are its own.
  app.set('trust proxy', 'loopback');
  app.use(express.json({ limit: '64kb' }));

  // Public (gateway.public: ["/static/**"]): the page's stylesheet loads
  // without a token, so realmhook sends no identity with it.
  app.use('/static', express.static(path.join(__dirname, 'static')));

  const identity = requireIdentity(identitySecret);
  // Lifecycle events, as remembered by this instance: events[clientKey] is a
  // list in delivery order. A real app would act on them (e.g. warm a cache
  // on migration.committed); this one keeps them to show what arrived.
  const events = new Map();

  // The page module (descriptor: generalPages, url /page). The host loads it
  // in an iframe with a JWT for this URL; realmhook verifies it.
  app.get('/page', identity, async (req, res, next) => {
    try {
      const list = await notes.listNotes(pool, req.identity.sub);
      res.type('html').send(page(req.identity, list));
    } catch (err) {
      next(err);
    }
  });

  // The page's script calls these with AP.context.getToken() (context-qsh).
  app.get('/api/notes', identity, async (req, res, next) => {
    try {
      const { sub, realm, frozen } = req.identity;
      res.json({ clientKey: sub, realm, frozen, notes: await notes.listNotes(pool, sub) });
    } catch (err) {
      next(err);
    }
  });

  // While a migration copies the tenant, realmhook answers writes 409 itself:
  // this route never sees a write to a frozen tenant.
  app.post('/api/notes', identity, async (req, res, next) => {
    const body = req.body && req.body.body;
    if (typeof body !== 'string' || body.length === 0 || body.length > maxNoteChars) {
      res.status(400).json({ error: 'invalid_note', message: `want {"body": "<text>"}, 1 to ${maxNoteChars} characters` });
      return;
    }
    try {
      res.status(201).json(await notes.addNote(pool, req.identity.sub, body));
    } catch (err) {
      next(err);
    }
  });

  // What realmhook told the app about this request: the verified claims and
  // which X-Realmhook-* headers reached it (only the identity token does).
  app.get('/api/whoami', identity, (req, res) => {
    const headers = Object.keys(req.headers).filter((h) => h.startsWith('x-realmhook-'));
    res.json({ identity: req.identity, realmhookHeaders: headers });
  });

  // The product's REST API, through realmhook's egress listener: the app
  // signs a short token with the identity secret; realmhook signs the call
  // with the tenant's shared secret.
  app.get('/api/myself', identity, async (req, res, next) => {
    const clientKey = req.identity.sub;
    let answer;
    try {
      answer = await fetch(`${egressUrl}/host/${encodeURIComponent(clientKey)}/rest/api/3/myself`, {
        headers: { Authorization: `Bearer ${egressToken(identitySecret, clientKey)}`, Accept: 'application/json' },
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      console.error(`egress: ${err.message}`);
      res.status(502).json({ error: 'egress_unavailable', message: 'realmhook\'s egress did not answer' });
      return;
    }
    if (!answer.ok) {
      res.status(502).json({ error: 'product_call_failed', message: `the product answered ${answer.status}`, productStatus: answer.status });
      return;
    }
    try {
      res.json({ realm: req.identity.realm, myself: await answer.json() });
    } catch (err) {
      next(err);
    }
  });

  // Lifecycle events from realmhook's outbox: at least once, in order per
  // tenant, so an event seen before (same id) is acknowledged again and not
  // recorded twice. Answering non-2xx makes realmhook retry.
  app.post(eventsPath, identity, (req, res) => {
    const ev = req.body || {};
    if (typeof ev.id !== 'string' || typeof ev.type !== 'string' || ev.clientKey !== req.identity.sub) {
      res.status(400).json({ error: 'invalid_event', message: 'want an event with id and type about the identity token\'s tenant' });
      return;
    }
    const list = events.get(ev.clientKey) || [];
    if (!list.some((e) => e.id === ev.id)) {
      list.push(ev);
      if (list.length > maxEventsPerTenant) list.shift();
      events.set(ev.clientKey, list);
      console.log(`event ${ev.type} for ${ev.clientKey} in realm ${ev.realm}`);
    }
    res.status(204).end();
  });

  app.get('/api/events', identity, (req, res) => {
    res.json({ events: events.get(req.identity.sub) || [] });
  });

  app.use((req, res) => {
    res.status(404).json({ error: 'not_found', message: `no route for ${req.method} ${req.path}` });
  });
  // A database that does not answer is the app's trouble, not the caller's:
  // 503 with no detail (the detail is logged).
  app.use((err, req, res, next) => {
    if (err.type === 'entity.parse.failed' || err.type === 'entity.too.large') {
      res.status(err.status).json({ error: 'invalid_body', message: 'want a JSON body of at most 64 KiB' });
      return;
    }
    console.error(`${req.method} ${req.path}: ${err.message}`);
    res.status(503).json({ error: 'unavailable', message: 'the app cannot answer right now' });
  });
  return app;
}

function page(identity, list) {
  const items = list.map((n) => `<li>${escapeHTML(n.body)}</li>`).join('');
  const frozen = identity.frozen ? '<p class="frozen">Moving to another realm: read-only for now.</p>' : '';
  return `<!DOCTYPE html>
<html><head><title>Notes</title>
<link rel="stylesheet" href="static/page.css">
<script src="https://connect-cdn.atl-paas.net/all.js"></script></head>
<body><h1>Notes</h1><p>Kept in realm ${escapeHTML(identity.realm)}.</p>${frozen}
<ul id="notes">${items}</ul>
<form id="add"><input name="body" maxlength="${maxNoteChars}" required> <button>Add</button></form>
<script>
document.getElementById('add').addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = await AP.context.getToken();
  const body = new FormData(e.target).get('body');
  const r = await fetch('api/notes', { method: 'POST', headers: { Authorization: 'JWT ' + token, 'Content-Type': 'application/json' }, body: JSON.stringify({ body }) });
  if (!r.ok) { alert('not saved: ' + r.status); return; }
  e.target.reset();
  const list = await fetch('api/notes', { headers: { Authorization: 'JWT ' + (await AP.context.getToken()) } });
  document.getElementById('notes').replaceChildren(...(await list.json()).notes.map((n) => {
    const li = document.createElement('li');
    li.textContent = n.body;
    return li;
  }));
});
</script></body></html>
`;
}

function escapeHTML(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

module.exports = { createApp };
