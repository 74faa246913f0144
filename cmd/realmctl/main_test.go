package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/realmhook/realmhook"
)

// result is what one in-process run of realmctl produced.
type result struct {
	code           int
	stdout, stderr string
}

func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestMain_Dispatch(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring; "" means stdout must be empty
		stderr string // substring; "" means stderr must be empty
	}{
		{"NoArgs", nil, exitUsage, "", "Usage:\n  realmctl <command>"},
		{"Help", []string{"help"}, exitOK, "Commands:\n  descriptor", ""},
		{"DashHelp", []string{"--help"}, exitOK, "host ", ""},
		{"HostHelp", []string{"host", "--help"}, exitOK, "realmctl host install", ""},
		{"LintHelp", []string{"descriptor", "lint", "--help"}, exitOK, "", "lint"},
		{"Version", []string{"version"}, exitOK, "realmctl " + realmhook.Version() + "\n", ""},
		{"DashVersion", []string{"--version"}, exitOK, "realmctl " + realmhook.Version() + "\n", ""},
		{"UnknownCommand", []string{"frobnicate"}, exitUsage, "", `realmctl: unknown command "frobnicate"`},
		{"HostUnknown", []string{"host", "run"}, exitUsage, "", `unknown host command "run"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			checkOutput(t, "stdout", r.stdout, tt.stdout)
			checkOutput(t, "stderr", r.stderr, tt.stderr)
		})
	}
}

func checkOutput(t *testing.T, name, got, want string) {
	t.Helper()
	if want == "" {
		if got != "" {
			t.Errorf("%s = %q, want it empty", name, got)
		}
		return
	}
	if !strings.Contains(got, want) {
		t.Errorf("%s = %q, want it to contain %q", name, got, want)
	}
}
