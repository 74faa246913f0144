package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
)

// load is one closed-loop run: Concurrency workers, each sending its next
// request as soon as the previous answer is read, until Duration has passed
// or the pre-signed requests run out, whichever comes first.
type load struct {
	Concurrency int
	Duration    time.Duration
	Requests    int // how many distinct pre-signed requests a run may send
	Warmup      time.Duration
}

// request is one pre-signed call: a token that is never reused. Its path is
// below a realm's base URL: the qsh covers the path below the base path only,
// so one token is valid on every server that serves the realm at that path,
// and every server of a comparison gets the very same tokens.
type request struct {
	method, path, auth string
	body               []byte
}

// runResult is what one run measured.
type runResult struct {
	Requests int
	Elapsed  time.Duration
	P50, P99 time.Duration
}

func (r runResult) perSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// target is a server under test and how to call it.
type target struct {
	Name    string
	BaseURL string // the EU realm's base URL
	Tenants []benchTenant
}

// signBase is the base URL tokens are signed for: only its path counts.
const signBase = "http://bench.invalid" + euPath

// signRequests pre-signs n distinct requests to tenants chosen at random, so
// no two requests share a token and every tenant is as likely as any other.
func signRequests(tenants []benchTenant, method string, n int, rnd *rand.Rand) ([]request, error) {
	out := make([]request, n)
	signer := connectjwt.Signer{TTL: 30 * time.Minute}
	for i := range out {
		ten := tenants[rnd.IntN(len(tenants))]
		path := "/api/v1/properties/" + readKey
		var body []byte
		if method == http.MethodPut {
			path = "/api/v1/properties/" + writeKey
			body = fmt.Appendf(nil, `{"n":%d}`, i)
		}
		tok, err := signer.HS256(ten.Secret, ten.ClientKey, method, signBase+path, signBase)
		if err != nil {
			return nil, err
		}
		out[i] = request{method: method, path: path, auth: "JWT " + tok, body: body}
	}
	return out, nil
}

// newClient keeps one connection per worker open for the whole run, so the
// run measures requests, not TCP handshakes.
func newClient(concurrency int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        concurrency * 2,
		MaxIdleConnsPerHost: concurrency * 2,
		MaxConnsPerHost:     concurrency * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// drive sends reqs with l.Concurrency workers for at most d and returns the
// latencies of the answers, in no order. Any answer but 2xx fails the run:
// a rate of refusals measures nothing.
func drive(ctx context.Context, client *http.Client, base string, l load, reqs []request, d time.Duration, record bool) (runResult, error) {
	var next atomic.Int64
	deadline := time.Now().Add(d)
	lat := make([][]time.Duration, l.Concurrency)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < l.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if record {
				lat[w] = make([]time.Duration, 0, len(reqs)/l.Concurrency+1)
			}
			for ctx.Err() == nil && failed.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) || time.Now().After(deadline) {
					return
				}
				rq := reqs[i]
				var body io.Reader
				if rq.body != nil {
					body = bytes.NewReader(rq.body)
				}
				hr, err := http.NewRequestWithContext(ctx, rq.method, base+rq.path, body)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				hr.Header.Set("Authorization", rq.auth)
				if rq.body != nil {
					hr.Header.Set("Content-Type", "application/json")
				}
				t0 := time.Now()
				resp, err := client.Do(hr)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					err := fmt.Errorf("%s %s: status %d: %.200s", rq.method, rq.path, resp.StatusCode, b)
					failed.CompareAndSwap(nil, &err)
					return
				}
				if record {
					lat[w] = append(lat[w], time.Since(t0))
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if p := failed.Load(); p != nil {
		return runResult{}, *p
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	res := runResult{Requests: len(all), Elapsed: elapsed}
	if len(all) > 0 {
		res.P50 = all[len(all)*50/100]
		res.P99 = all[len(all)*99/100]
	}
	return res, nil
}

// measure warms the target up, then runs the measured load on fresh tokens.
func measure(ctx context.Context, tg target, method string, l load, rnd *rand.Rand) (runResult, error) {
	warm, err := signRequests(tg.Tenants, method, max(l.Concurrency*4, l.Requests/10), rnd)
	if err != nil {
		return runResult{}, err
	}
	reqs, err := signRequests(tg.Tenants, method, l.Requests, rnd)
	if err != nil {
		return runResult{}, err
	}
	return measureWith(ctx, tg, l, warm, reqs)
}

// measureWith warms the target up with warm, then runs the measured load on
// reqs: the same slices may go to several targets.
func measureWith(ctx context.Context, tg target, l load, warm, reqs []request) (runResult, error) {
	client := newClient(l.Concurrency)
	defer client.CloseIdleConnections()
	if _, err := drive(ctx, client, tg.BaseURL, l, warm, l.Warmup, false); err != nil {
		return runResult{}, fmt.Errorf("%s warm-up: %w", tg.Name, err)
	}
	res, err := drive(ctx, client, tg.BaseURL, l, reqs, l.Duration, true)
	if err != nil {
		return runResult{}, fmt.Errorf("%s: %w", tg.Name, err)
	}
	return res, nil
}

// drain reads and closes a response body, so its connection is reused.
func drain(resp *http.Response) (int64, error) {
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return n, err
}
