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
