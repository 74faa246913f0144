package postgres_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/realmhook/realmhook/integration/pgtest"
	"github.com/realmhook/realmhook/store/postgres"
)

// lockedBuffer collects log output written from Open's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr is an address on which nothing listens (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestOpen_WaitsForTheDatabase: a database that does not accept connections
// yet is waited for, with "cannot connect" in the log (never "connection
// lost": nothing was connected), and Open succeeds once it comes up.
func TestOpen_WaitsForTheDatabase(t *testing.T) {
	real, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	late := *real
	late.Host = addr

	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	type result struct {
		s   *postgres.Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := postgres.Open(t.Context(), late.String(), postgres.Options{Logger: logger, ConnectTimeout: time.Minute})
		done <- result{s, err}
	}()

	// Once Open has been refused, the database "starts": a proxy to the real
	// server begins to listen on the address Open dials.
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(logs.String(), "cannot connect; retrying") {
		if time.Now().After(deadline) {
			t.Fatalf("no retry logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mustProxy(t, addr, real.Host)

	r := <-done
	if r.err != nil {
		t.Fatalf("Open: %v\n%s", r.err, logs.String())
	}
	defer r.s.Close()
	if err := r.s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); strings.Contains(out, "connection lost") || !strings.Contains(out, "postgres: connected") {
		t.Fatalf("log should say cannot connect, then connected, never connection lost:\n%s", out)
	}
}

// TestOpen_GivesUpAfterConnectTimeout: with nothing to connect to, Open says
// so, naming the wait, once ConnectTimeout has passed.
func TestOpen_GivesUpAfterConnectTimeout(t *testing.T) {
	logs := &lockedBuffer{}
	_, err := postgres.Open(t.Context(), "postgres://u@"+freeAddr(t)+"/db?sslmode=disable",
		postgres.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), ConnectTimeout: 400 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "cannot connect (waited") {
		t.Fatalf("Open = %v, want cannot connect", err)
	}
	if strings.Contains(logs.String(), "connection lost") {
		t.Fatalf("log says connection lost:\n%s", logs.String())
	}
}

// TestOpen_WrongPasswordFailsAtOnce: a server that refuses the login is not
// waited for; waiting would not change its answer.
func TestOpen_WrongPasswordFailsAtOnce(t *testing.T) {
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("no_such_role_for_realmhook", "x")
	logs := &lockedBuffer{}
	_, err = postgres.Open(t.Context(), u.String(), postgres.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), ConnectTimeout: time.Hour})
	if err == nil {
		t.Fatal("Open with an unknown role succeeded")
	}
	if strings.Contains(logs.String(), "retrying") {
		t.Fatalf("a refused login was retried:\n%s", logs.String())
	}
}

// mustProxy forwards connections from addr to target until the test ends.
func mustProxy(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var d net.Dialer
			up, err := d.DialContext(ctx, "tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
			go func() { <-ctx.Done(); c.Close(); up.Close() }()
		}
	}()
}
