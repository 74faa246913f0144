// One instance of the app serves one realm: it is pointed at that realm's
// database, and realmhook's realms.<KEY>.upstream points at it.
//
//   DATABASE_URL=postgres://…/eu REALMHOOK_IDENTITY_SECRET=… PORT=3000 node server.js
//
// Environment:
//   DATABASE_URL               the realm's PostgreSQL (the same database as realms.<KEY>.database)
//   REALMHOOK_IDENTITY_SECRET  gateway.identitySecret (at least 32 bytes)
//   REALMHOOK_EGRESS_URL       http://{gateway.egressListen} (default http://127.0.0.1:8082)
//   REALMHOOK_EVENTS_PATH      gateway.eventsPath (default /realmhook/events)
//   HOST, PORT                 where to listen (default 127.0.0.1:3000; PORT=0 picks a free port)
const { Pool } = require('pg');
const { createApp } = require('./app');
const notes = require('./notes');

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`node-app: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

async function main() {
  const pool = new Pool({ connectionString: required('DATABASE_URL'), max: 5 });
  const identitySecret = required('REALMHOOK_IDENTITY_SECRET');
  if (Buffer.byteLength(identitySecret) < 32) {
    console.error('node-app: REALMHOOK_IDENTITY_SECRET must be at least 32 bytes');
    process.exit(2);
  }
  await notes.createTable(pool);
  const app = createApp({
    pool,
    identitySecret,
    egressUrl: process.env.REALMHOOK_EGRESS_URL || 'http://127.0.0.1:8082',
    eventsPath: process.env.REALMHOOK_EVENTS_PATH || '/realmhook/events',
  });
  const server = app.listen(Number(process.env.PORT || 3000), process.env.HOST || '127.0.0.1', () => {
    const { address, port } = server.address();
    console.log(`node-app listening on http://${address}:${port}`);
  });
  const stop = () => server.close(() => pool.end().then(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(`node-app: ${err.message}`);
  process.exit(1);
});
