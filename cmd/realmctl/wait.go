package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runWait blocks until URL answers 200, so a script can start realmhook in
// the background and go on only once it serves (GET /readyz answers 200 when
// every served realm's database is reachable). The first start of `make run`
// compiles the program, hence the generous default.
func runWait(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("realmctl wait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after `duration`")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n  realmctl wait [--timeout 2m] URL\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("wait takes exactly one URL, got %d arguments", fs.NArg())
	}
	url := fs.Arg(0)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	delay := 50 * time.Millisecond
	var last string
	for {
		last = probe(ctx, client, url)
		if last == "" {
			_, err := fmt.Fprintln(stdout, url, "ready")
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %s", url, *timeout, last)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// probe is "" when url answers 200, else why not.
func probe(ctx context.Context, client *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return ""
}
