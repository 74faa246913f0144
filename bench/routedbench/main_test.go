package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestMain_ParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		wantSuites []string
		wantWindow []int
		wantErr    string
	}{
		{"Defaults", nil, []string{"routed"}, []int{10000, 100000, 1000000}, ""},
		{"Suites", []string{"-suite", "ace, status,window", "-window-rows", "10000,20000"}, []string{"ace", "status", "window"}, []int{10000, 20000}, ""},
		{"ErrSuite", []string{"-suite", "ace,nope"}, nil, nil, `"nope"`},
		{"ErrWindowRows", []string{"-window-rows", "5"}, nil, nil, "-window-rows"},
		{"ErrScaleTenants", []string{"-scale-tenants", "many"}, nil, nil, "-scale-tenants"},
		{"ErrBackend", []string{"-status-backends", "mysql"}, nil, nil, "mysql"},
		{"ErrPollers", []string{"-pollers", "0"}, nil, nil, "-pollers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMain()
			m.Stderr = io.Discard
			err := m.ParseFlags(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Suites, tc.wantSuites) || !slices.Equal(m.Migr.WindowRows, tc.wantWindow) {
				t.Fatalf("suites %v window %v, want %v and %v", m.Suites, m.Migr.WindowRows, tc.wantSuites, tc.wantWindow)
			}
		})
	}
}

func TestCountHuman(t *testing.T) {
	for n, want := range map[float64]string{950: "950", 12_300: "12k", 4_560_000: "4.6M", 2.5e9: "2.5G"} {
		if got := countHuman(n); got != want {
			t.Errorf("countHuman(%v) = %q, want %q", n, got, want)
		}
	}
}
