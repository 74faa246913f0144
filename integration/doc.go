// Package integration holds realmhook's end-to-end tests: they build and run
// the real binaries, talk to them over HTTP as the host product would, and use
// real databases (SQLite files, and PostgreSQL through integration/pgtest).
package integration
