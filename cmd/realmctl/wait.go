package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runWait blocks until each URL answers 200, in turn, so a script can start realmhook in
// the background and go on only once it serves (GET /readyz answers 200 when
// every served realm's database is reachable). The first start of `make run`
// compiles the program, hence the generous default.
func runWait(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("realmctl wait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after `duration`")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n  realmctl wait [--timeout 2m] URL...\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("wait takes one or more URLs")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	for _, url := range fs.Args() {
		if err := waitFor(ctx, client, url); err != nil {
			return fmt.Errorf("%s not ready after %s: %w", url, *timeout, err)
		}
		if _, err := fmt.Fprintln(stdout, url, "ready"); err != nil {
			return err
		}
	}
	return nil
}

// waitFor polls url, backing off to a second between tries, until it answers
// 200 or ctx ends; then it says what the last try got.
func waitFor(ctx context.Context, client *http.Client, url string) error {
	delay := 50 * time.Millisecond
	for {
		last := probe(ctx, client, url)
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New(last)
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
