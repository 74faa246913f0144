#!/usr/bin/env node
// Differential-test oracle for connectjwt's canonical request: the reference
// npm library atlassian-jwt (pinned to 2.0.3, the version PROTOCOL.md's
// vectors come from) computes the canonical request and qsh of generated
// hostile requests.
//
//   node refjs.js generate [--seed N] [--count N]   vectors as JSON on stdout
//
// `make qsh-vectors` regenerates ../qsh_vectors.json (committed, checked by
// TestCanonicalRequest_ReferenceVectors); TestCanonicalRequest_ReferenceLive
// runs this script with a fresh seed when node_modules is installed.
//
// The generator leaves out the inputs where realmhook deliberately differs
// from the reference; canonical.go lists them and canonical_test.go pins
// realmhook's answer for each.
'use strict';

const jwt = require('atlassian-jwt');
const url = require('url');

// mulberry32: a small seeded PRNG, so a seed names one corpus.
function prng(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const METHODS = ['GET', 'get', 'Post', 'PUT', 'DELETE', 'patch'];
const BASE_URLS = [
  'http://h', 'http://h/', 'http://h/ctx', 'http://h/ctx/', 'http://h/realms/eu',
  'http://h/realms/eu/', 'http://h/ctx//', 'https://app.example.com/a%20b',
];
// Path pieces: plain segments, separators, characters Go would re-escape,
// valid escapes in both cases, malformed escapes, the canonical separator, and
// non-ASCII text (BMP, astral, and a character above the surrogates).
const PATH_PIECES = [
  'a', 'api', 'v1', 'properties', 'ts', '/', '//', '&', '%26', '=', '+', ';', ',', ':', '@', '!', '$',
  "'", '(', ')', '*', '~', '.', '..', '|', '"', '^', '{', '}', '`', '<', '>', '[', ']',
  '%41', '%7e', '%7E', '%2F', '%2f', '%25', '%C3%A9', '%c3%a9', '%FF', '%E2%82', '%', '%z', '%zz', '%4',
  'é', '😀', '｡', '\u0001',
];
// Query pieces for names and values.
const QUERY_PIECES = [
  'a', 'A', 'b', 'B', 'z', 'jwt', 'JWT', '%6Awt', '__proto__', 'constructor', 'x y', '+', '%2B', '%20',
  '', '~', '*', '!', "'", '(', ')', '%41', '%7e', '-', '.', '_', '/', '?', ':', '@', ',', ';', '%3D', '%26',
  '%FF', '%E2%82', '%E2%82%41', '%C0%AF', '%ED%A0%80', '%F4%90%80%80', '%F0%9F%98%80', '%EF%BD%A1',
  '%EF%BF%BD', '%zz', '%', '%4', 'é', '😀', '｡', '\uFFFD', '\uE000', '%EE%80%80', '1', '10', '2', 'parameter%201',
];

function pick(rand, list) {
  return list[Math.floor(rand() * list.length)];
}

function joinPieces(rand, pieces, max) {
  let s = '';
  const n = Math.floor(rand() * max);
  for (let i = 0; i < n; i++) s += pick(rand, pieces);
  return s;
}

function basePathOf(baseUrl) {
  const m = /^[a-z]+:\/\/[^/]*(\/.*)?$/.exec(baseUrl);
  return (m && m[1]) || '';
}

// deliberateDifference names the documented case an input falls in, if any
// (see canonical.go).
function deliberateDifference(path, query, baseUrl) {
  const base = basePathOf(baseUrl);
  const trimmed = base.replace(/\/+$/, '');
  // Node's legacy url.parse, which the library hashes the path through,
  // rewrites some raw paths: "\\" becomes "/", whitespace is escaped, "#"
  // starts a fragment, and off its fast path (a path holding "@", a query
  // holding a space, …) the characters " ' < > ^ ` { | } are percent-encoded.
  // A path without a leading "/" holding "@" is read as user@host and may
  // not parse at all; an HTTP request's path always starts with "/".
  try {
    if (path === '' || url.parse(query === '' ? path : path + '?' + query).pathname !== path) {
      return 'path-rewritten-by-url-parse';
    }
  } catch (e) {
    return 'path-rewritten-by-url-parse';
  }
  if (trimmed !== '' && path.startsWith(trimmed)) {
    if (path !== trimmed && path[trimmed.length] !== '/') return 'base-not-on-segment-boundary';
    if (base.endsWith('/') && !path.startsWith(base)) return 'path-under-base-without-its-trailing-slash';
  }
  if (query.split('&').length > 1000) return 'more-than-1000-parameters';
  for (const part of query.split(/[&=]/)) {
    if (/[^\x00-\x7f]/.test(part) && /%(?![0-9A-Fa-f]{2})/.test(part)) return 'non-ascii-with-malformed-escape';
    if (/[^\x00-\x7f]/.test(part) && !isDecodable(part)) return 'non-ascii-with-malformed-escape';
  }
  return '';
}

function isDecodable(s) {
  try {
    decodeURIComponent(s.replace(/\+/g, ' '));
    return true;
  } catch (e) {
    return false;
  }
}

function genPath(rand, baseUrl) {
  const base = basePathOf(baseUrl);
  let path = joinPieces(rand, PATH_PIECES, 8);
  const r = rand();
  if (r < 0.6) {
    path = base.replace(/\/+$/, '') + '/' + path;
  } else if (r < 0.9) {
    path = '/' + path;
  }
  if (rand() < 0.3) path += '/';
  return path;
}

function genQuery(rand) {
  const n = Math.floor(rand() * 7);
  const pairs = [];
  for (let i = 0; i < n; i++) {
    const name = joinPieces(rand, QUERY_PIECES, 3);
    const r = rand();
    if (r < 0.1) {
      pairs.push(name);
    } else if (r < 0.2) {
      pairs.push('');
    } else {
      pairs.push(name + '=' + joinPieces(rand, QUERY_PIECES, 4));
    }
    // Repeat a name now and then, so value ordering is exercised.
    if (rand() < 0.25) pairs.push(name + '=' + joinPieces(rand, QUERY_PIECES, 3));
  }
  return pairs.join('&');
}

// fixedCases are PROTOCOL.md's vectors and the cases issue 9 names.
const fixedCases = [
  ['GET', '/path/to/service', 'zee_last=param&repeated=parameter%201&first=param&repeated=parameter%202', 'http://localhost:2990'],
  ['GET', '/path/to/service', 'a=1&A=2&b=3&B=4', 'http://localhost:2990'],
  ['POST', '/ctx/installed', '', 'https://app.example.com/ctx'],
  ['GET', '/', '', 'https://app.example.com'],
  ['PUT', '/api/v1/properties/é', '', 'http://h'],
  ['PUT', '/realms/eu/api/v1/properties/a|b"c^d{e}', '', 'http://h/realms/eu'],
  ['GET', '/realms/eu/api/v1/properties', 'prefix=%FF&limit=10', 'http://h/realms/eu'],
  ['GET', '/p', 'a=%EF%BD%A1&a=%F0%9F%98%80&a=%EE%80%80&a=%C3%A9', 'http://h'],
  ['GET', '/p', '%F0%9F%98%80=1&%EF%BD%A1=2', 'http://h'],
  ['POST', '/ctx/installed', '', 'https://app.example.com/ctx/'],
  ['POST', '/ctx//installed', '', 'https://app.example.com/ctx//'],
  ['POST', '//installed', '', 'https://app.example.com//'],
  ['GET', '/p/ts/', '', 'http://h/p'],
  ['GET', '/p', '__proto__=1&a=2', 'http://h'],
];

function canonical(method, path, query, baseUrl) {
  const req = jwt.fromMethodAndUrl(method, query === '' ? path : path + '?' + query);
  return jwt.createCanonicalRequest(req, false, baseUrl);
}

function vector(method, path, query, baseUrl) {
  const c = canonical(method, path, query, baseUrl);
  return { method, path, query, baseUrl, canonical: c, qsh: require('crypto').createHash('sha256').update(c).digest('hex') };
}

function generate(seed, count) {
  const rand = prng(seed);
  const out = fixedCases.map((c) => vector(...c));
  while (out.length < count) {
    const baseUrl = pick(rand, BASE_URLS);
    const method = pick(rand, METHODS);
    const path = genPath(rand, baseUrl);
    const query = genQuery(rand);
    if (deliberateDifference(path, query, baseUrl) !== '') continue;
    let v;
    try {
      v = vector(method, path, query, baseUrl);
    } catch (e) {
      continue; // the reference cannot canonicalize it, so no host signs it
    }
    out.push(v);
  }
  return out;
}

function main(argv) {
  const args = { seed: 1, count: 1500 };
  for (let i = 1; i < argv.length; i += 2) {
    if (argv[i] === '--seed') args.seed = Number(argv[i + 1]);
    else if (argv[i] === '--count') args.count = Number(argv[i + 1]);
    else throw new Error('unknown flag ' + argv[i]);
  }
  if (argv[0] !== 'generate') {
    process.stderr.write('usage: node refjs.js generate [--seed N] [--count N]\n');
    process.exit(2);
  }
  const vectors = generate(args.seed, args.count);
  // One vector a line, so a regenerated file diffs readably.
  process.stdout.write('{"library": ' + JSON.stringify('atlassian-jwt ' + jwt.version) + ', "seed": ' + args.seed +
    ', "vectors": [\n' + vectors.map((v) => JSON.stringify(v)).join(',\n') + '\n]}\n');
}

main(process.argv.slice(2));
