// The atlassian-connect-express app `make bench` compares realmhook with: the
// same routed tenant GET realmhook serves, written as a partner writes it with
// ACE — addon.authenticate() in front (which reads the tenant's clientInfo
// from ACE's store, on PostgreSQL through its sequelize adapter, on every
// request), the value answered from memory.
//
// Run from a directory holding atlassian-connect.json and config.json (ACE
// reads both from the working directory; routedbench writes them):
//
//   NODE_ENV=production PORT=3000 WORKERS=1 node /path/to/bench/ace/app.js
//
// WORKERS=N > 1 runs N worker processes under Node's cluster module sharing
// the port, as partners scale an ACE app over the cores of one machine. The
// process prints "listening 127.0.0.1:PORT" once every worker listens.
"use strict";

const cluster = require("node:cluster");

const workers = Number(process.env.WORKERS || "1");
const port = Number(process.env.PORT || "3000");
// The realm's base path: the descriptor's baseUrl ends with it, so ACE checks
// qsh against the path below it, as realmhook does.
const basePath = process.env.BASE_PATH || "/realms/eu";

// The value every tenant's key "k" holds, as in routedbench's other servers.
const values = { k: { greeting: "hello", n: 1 } };

function serve(onListening) {
  const express = require("express");
  const ace = require("atlassian-connect-express");
  const app = express();
  app.set("env", "production");
  const addon = ace(app);
  app.use(express.json());
  app.get(`${basePath}/api/v1/properties/:key`, addon.authenticate(), (req, res) => {
    const v = values[req.params.key];
    if (v === undefined) {
      res.status(404).json({ error: "not_found" });
      return;
    }
    res.json({ key: req.params.key, value: v });
  });
  // Ready only once the store's tables exist: the bench seeds them next.
  addon.settings.connectionPromise.then(
    () => {
      const srv = app.listen(port, "127.0.0.1", () => onListening(srv));
    },
    err => {
      console.error("ace store:", err);
      process.exit(1);
    }
  );
}

if (workers > 1 && cluster.isPrimary) {
  let up = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on("message", m => {
      if (m === "listening" && ++up === workers) {
        console.log(`listening 127.0.0.1:${port}`);
      }
    });
  }
  cluster.on("exit", (w, code) => {
    console.error(`ace worker ${w.process.pid} exited with ${code}`);
    process.exit(1);
  });
  const stop = () => {
    cluster.removeAllListeners("exit");
    for (const id in cluster.workers) cluster.workers[id].kill();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} else {
  serve(srv => {
    if (cluster.isWorker) {
      process.send("listening");
    } else {
      console.log(`listening ${srv.address().address}:${srv.address().port}`);
    }
  });
  const stop = () => process.exit(0);
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
