// The realmhook admin page: it calls the admin API (Connect's JSON protocol)
// with the token kept in this tab's session storage, and draws what it reads.
"use strict";

const TOKEN_KEY = "realmhook-admin-token";
const ACTIVE = ["scheduled", "copying", "verifying", "ready-to-commit", "committing", "rolling-back"];
const REFRESH_MS = 1000;
const samples = new Map(); // migration key -> [{t, rows}], for the rows-over-time picture

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

class RPCError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

async function rpc(method, body) {
  const res = await fetch("/realmhook.admin.v1.AdminService/" + method, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "Connect-Protocol-Version": "1",
      "Authorization": "Bearer " + sessionStorage.getItem(TOKEN_KEY),
    },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await res.json(); } catch (_) { /* an empty or non-JSON answer */ }
  if (!res.ok) throw new RPCError(data.code || String(res.status), data.message || res.statusText);
  return data;
}

const num = (v) => Number(v || 0);
const when = (ts) => ts ? new Date(ts).toLocaleString() : "–";
function dur(seconds) {
  if (!isFinite(seconds) || seconds < 0) return "–";
  const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}
const protoSeconds = (d) => d ? parseFloat(d) : 0; // JSON Durations read "5.2s"

// --- signing in ---------------------------------------------------------

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    await rpc("ListRealms");
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    const msg = e.code === "unauthenticated" ? "That token was refused: no data is shown. Check admin.token." : "The admin API did not answer: " + e.message;
    showSignIn(msg);
    return;
  }
  $("signin").hidden = true;
  $("signin-error").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  refresh();
}

function showSignIn(error) {
  $("app").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  for (const id of ["realms", "tenant", "running", "recent", "events", "tenants-chart"]) {
    const n = $(id);
    if (n.tagName === "TABLE") n.tBodies[0].replaceChildren(); else n.replaceChildren();
  }
  const err = $("signin-error");
  err.hidden = !error;
  err.textContent = error || "";
  if (error) $("token").focus();
}

// --- realms -------------------------------------------------------------

function renderRealms(realms) {
  const rows = realms.map((r) => {
    const h = r.health || {};
    const failed = (h.checks || []).filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join("; ");
    const health = h.healthy ? el("span", { class: "ok" }, "healthy") : el("span", { class: "bad" }, "UNHEALTHY" + (failed ? " – " + failed : ""));
    const counts = r.served ? Object.entries(r.tenantCounts || {}).sort().map(([s, n]) => `${s} ${n}`).join(", ") || "none" : "not served here";
    return el("tr", {}, el("th", { scope: "row" }, r.key), el("td", {}, health), el("td", {}, when(h.probedAt)),
      el("td", {}, counts), el("td", {}, num(r.misroutedRequests)), el("td", {}, r.baseUrl));
  });
  $("realms").tBodies[0].replaceChildren(...rows);
  renderTenantsChart(realms.filter((r) => r.served));
}

// A bar per realm, its length the realm's tenants, split by state.
function renderTenantsChart(realms) {
  const colors = { active: "#0a4fb3", moved: "#6b7480", incoming: "#b35c00", uninstalled: "#a40e26", purging: "#4a525c" };
  const max = Math.max(1, ...realms.map((r) => Object.values(r.tenantCounts || {}).reduce((a, b) => a + num(b), 0)));
  const rowH = 28, labelW = 70, width = 480;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${rowH * realms.length + 10}`, width: "100%", role: "img",
    "aria-label": "Tenants per realm: " + realms.map((r) => `${r.key} ${Object.entries(r.tenantCounts || {}).map(([s, n]) => `${n} ${s}`).join(", ") || "none"}`).join("; ") });
  realms.forEach((r, i) => {
    const y = i * rowH + 5;
    chart.append(svg("text", { x: 0, y: y + 16 }, r.key));
    let x = labelW;
    for (const [state, n] of Object.entries(r.tenantCounts || {}).sort()) {
      const w = (num(n) / max) * (width - labelW - 60);
      chart.append(svg("rect", { x, y, width: Math.max(w, 1), height: rowH - 8, fill: colors[state] || "#333" }, svg("title", {}, `${r.key}: ${n} ${state}`)));
      x += w;
    }
    const total = Object.values(r.tenantCounts || {}).reduce((a, b) => a + num(b), 0);
    chart.append(svg("text", { x: x + 6, y: y + 16 }, total));
  });
  $("tenants-chart").replaceChildren(chart);
}

// --- migrations ---------------------------------------------------------

function progressBlock(m, withChart) {
  const p = m.progress || {};
  const copied = num(p.rowsCopied), total = num(p.rowsTotal), pct = num(p.percent);
  const rate = num(p.rowsPerSecond);
  const eta = p.eta ? new Date(p.eta) : null;
  const bar = el("progress", { max: Math.max(total, 1), value: copied, "aria-label": `${m.id}: ${copied} of ${total} rows copied` });
  const facts = el("dl", {},
    el("dt", {}, "Rows"), el("dd", { class: "rows" }, `${copied} of ${total} (${pct.toFixed(1)} %)`),
    el("dt", {}, "Rate"), el("dd", {}, rate ? `${Math.round(rate)} rows/s` : "–"),
    el("dt", {}, "ETA"), el("dd", {}, eta ? `${eta.toLocaleTimeString()} (in ${dur((eta - Date.now()) / 1000)})` : "–"),
    el("dt", {}, "Window ends"), el("dd", {}, when(m.endTime)),
    el("dt", {}, "Fits the window"), el("dd", {}, eta ? (p.fitsWindow ? el("span", { class: "ok" }, "yes") : el("span", { class: "bad" }, "no, past its end")) : "–"));
  const box = el("div", {}, bar, facts);
  if (withChart) box.append(rowsChart(m));
  return box;
}

// The rows a running copy has copied, as sampled by this page.
function rowsChart(m) {
  const key = m.clientKey + "/" + m.id;
  const s = samples.get(key) || [];
  const total = Math.max(1, num(m.progress && m.progress.rowsTotal));
  const w = 480, h = 120;
  const t0 = s.length ? s[0].t : Date.now(), t1 = s.length > 1 ? s[s.length - 1].t : t0 + 1;
  const pts = s.map((p) => `${((p.t - t0) / (t1 - t0)) * (w - 10) + 5},${h - 5 - (p.rows / total) * (h - 10)}`).join(" ");
  return el("figure", {},
    svg("svg", { viewBox: `0 0 ${w} ${h}`, width: "100%", role: "img", class: "rows-chart",
      "aria-label": `Rows copied over time for ${m.id}: ${s.length ? s[s.length - 1].rows : 0} of ${total}` },
      svg("rect", { x: 0, y: 0, width: w, height: h, fill: "#f4f6f8" }),
      svg("polyline", { points: pts, fill: "none", stroke: "#0a4fb3", "stroke-width": 2 })),
    el("figcaption", {}, "Rows copied over time, since this page opened"));
}

function renderRunning(ms) {
  const now = Date.now();
  for (const m of ms) {
    const key = m.clientKey + "/" + m.id;
    const s = samples.get(key) || [];
    const rows = num(m.progress && m.progress.rowsCopied);
    if (!s.length || s[s.length - 1].rows !== rows || now - s[s.length - 1].t > 5000) s.push({ t: now, rows });
    samples.set(key, s.slice(-300));
  }
  const blocks = ms.map((m) => el("article", { class: "migration", "data-migration": m.id },
    el("h3", {}, `${m.id}: ${m.clientKey} ${m.sourceRealm} → ${m.targetRealm}, ${m.state}`),
    progressBlock(m, true)));
  $("running").replaceChildren(...(blocks.length ? blocks : [el("p", {}, "No migration is running.")]));
}

function migrationsTable(ms) {
  if (!ms.length) return el("p", {}, "No migrations.");
  return el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, ...["Migration", "Tenant", "From → to", "Outcome", "Error", "Rows", "Updated", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...ms.map((m) => el("tr", {},
      el("th", { scope: "row" }, m.id), el("td", {}, m.clientKey), el("td", {}, `${m.sourceRealm} → ${m.targetRealm}`),
      el("td", {}, m.state), el("td", {}, [m.errorResponseCode, m.message].filter(Boolean).join(" ") || "–"),
      el("td", {}, `${num(m.progress && m.progress.rowsCopied)}/${num(m.progress && m.progress.rowsTotal)}`),
      el("td", {}, when(m.updatedAt)),
      el("td", {}, el("button", { type: "button", class: "secondary", onclick: () => showEvents(m) }, "Events")))))));
}

async function showEvents(m) {
  try {
    const r = await rpc("GetMigration", { id: m.id, clientKey: m.clientKey });
    $("events").replaceChildren(el("h3", { tabindex: "-1", id: "events-h" }, `Events of ${m.id}`), el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, ...["When", "From", "To", "What happened"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...(r.events || []).map((e) => el("tr", {}, el("td", {}, when(e.at)), el("td", {}, e.from || "–"), el("td", {}, e.to), el("td", {}, e.detail || "")))))));
    $("events-h").focus();
  } catch (e) { fail(e); }
}

// --- tenants and rehearsals ----------------------------------------------

let realmKeys = [];

async function findTenant(value, by) {
  const out = $("tenant");
  try {
    const r = await rpc("GetTenant", { [by]: value });
    const clientKey = ((r.records || [])[0] || {}).clientKey || value;
    const records = el("div", { class: "scroll" }, el("table", {},
      el("caption", {}, `Tenant ${clientKey} in every realm served here`),
      el("thead", {}, el("tr", {}, ...["Realm", "State", "Frozen", "Installed", "Updated", "Site"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...(r.records || []).map((t) => el("tr", { class: "tenant-record" },
        el("th", { scope: "row" }, t.realm), el("td", {}, t.state + (t.movedTo ? ` to ${t.movedTo}` : "")),
        el("td", {}, t.frozen ? `yes (${t.migrationId})` : "no"), el("td", {}, when(t.installedAt)), el("td", {}, when(t.updatedAt)),
        el("td", {}, t.baseUrl || ""))))));
    const active = (r.records || []).find((t) => t.state === "active");
    const parts = [records, el("h3", {}, "Its migrations"), migrationsTable(r.migrations || [])];
    if (active) parts.push(rehearsalForm(clientKey, active.realm));
    out.replaceChildren(...parts);
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", role: "alert" }, e.code === "not_found" ? `No realm served here holds ${value}.` : e.message));
    if (e.code === "unauthenticated") showSignIn("The token was refused.");
  }
}

function rehearsalForm(clientKey, source) {
  const targets = realmKeys.filter((k) => k !== source);
  const select = el("select", { id: "rehearse-to", name: "to" }, ...targets.map((k) => el("option", { value: k }, k)));
  const hours = el("input", { id: "rehearse-window", name: "window", type: "number", min: "0.5", max: "24", step: "0.5", value: "1.5" });
  const result = el("div", { id: "rehearsal", "aria-live": "polite" });
  const form = el("form", { id: "rehearse-form" },
    el("label", { for: "rehearse-to" }, "Rehearse its move to"), select,
    el("label", { for: "rehearse-window" }, "within a window of (hours)"), hours,
    el("button", { type: "submit" }, "Rehearse"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    result.replaceChildren(el("p", {}, "Starting the rehearsal…"));
    try {
      const seconds = Math.round(parseFloat(hours.value) * 3600);
      let r = (await rpc("StartRehearsal", { clientKey, targetRealm: select.value, window: seconds + "s" })).rehearsal;
      while (r.state === "running") {
        result.replaceChildren(el("p", {}, `Rehearsing ${clientKey} ${r.sourceRealm} → ${r.targetRealm}…`), progressBlock(r, false));
        await new Promise((res) => setTimeout(res, REFRESH_MS / 2));
        r = (await rpc("GetRehearsal", { id: r.id })).rehearsal;
      }
      const seconds2 = protoSeconds(r.duration);
      result.replaceChildren(el("p", { class: r.state === "passed" ? "ok" : "bad", "data-state": r.state },
        `Rehearsal ${r.state}: ${num(r.progress && r.progress.rowsCopied)} rows in ${dur(seconds2)}; ` +
        (r.verified ? "verified equal; " : "not verified; ") +
        (r.fitsWindow ? `fits the ${hours.value}-hour window.` : `does not fit the ${hours.value}-hour window.`)),
        el("p", {}, r.detail || ""));
    } catch (e) {
      result.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
    }
  });
  return el("section", { "aria-label": "Rehearsal" }, el("h3", {}, "Will it fit?"), form, result);
}

// --- refresh loop ------------------------------------------------------

function fail(e) {
  if (e.code === "unauthenticated") { sessionStorage.removeItem(TOKEN_KEY); showSignIn("The token was refused."); return; }
  $("status").textContent = "Could not refresh: " + e.message;
}

let timer = null;
async function refresh() {
  clearTimeout(timer);
  if (!sessionStorage.getItem(TOKEN_KEY)) return;
  try {
    const [realms, running, recent] = await Promise.all([
      rpc("ListRealms"), rpc("ListMigrations", { states: ACTIVE, limit: 100 }), rpc("ListMigrations", { limit: 20 })]);
    realmKeys = (realms.realms || []).map((r) => r.key);
    renderRealms(realms.realms || []);
    renderRunning(running.migrations || []);
    $("recent").replaceChildren(migrationsTable((recent.migrations || []).filter((m) => !ACTIVE.includes(m.state))));
    $("status").textContent = "Updated " + new Date().toLocaleTimeString();
  } catch (e) {
    fail(e);
    if (e.code === "unauthenticated") return;
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("token").value.trim()); });
  $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); findTenant($("client-key").value.trim(), $("search-by").value); });
  $("signout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); clearTimeout(timer); showSignIn(""); });
  if (sessionStorage.getItem(TOKEN_KEY)) signIn(sessionStorage.getItem(TOKEN_KEY)); else showSignIn("");
});
