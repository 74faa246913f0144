package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestWait(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}))
		defer srv.Close()
		r := mustRun(t, "wait", srv.URL+"/readyz")
		if r.code != exitOK || r.stdout != srv.URL+"/readyz ready\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if calls.Load() != 3 {
			t.Fatalf("%d requests, want 3 (two 503s, then 200)", calls.Load())
		}
	})
	t.Run("ErrNeverReady", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		r := mustRun(t, "wait", "--timeout", "300ms", srv.URL)
		if r.code != exitFailure {
			t.Fatalf("exit %d, want %d", r.code, exitFailure)
		}
		checkOutput(t, "stderr", r.stderr, "not ready after 300ms: 503 Service Unavailable")
	})
	t.Run("ErrUsage", func(t *testing.T) {
		if r := mustRun(t, "wait"); r.code != exitUsage {
			t.Fatalf("exit %d, want %d", r.code, exitUsage)
		}
	})
}

func TestWait_EveryURL(t *testing.T) {
	var a, b atomic.Int32
	srvA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.Add(1) }))
	defer srvA.Close()
	srvB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.Add(1) }))
	defer srvB.Close()
	r := mustRun(t, "wait", srvA.URL, srvB.URL)
	if r.code != exitOK || a.Load() != 1 || b.Load() != 1 {
		t.Fatalf("exit %d, requests %d and %d, want one each; stdout %q", r.code, a.Load(), b.Load(), r.stdout)
	}
}
