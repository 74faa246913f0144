// Package outbox delivers the lifecycle events in each served realm's outbox
// to that realm's app, the gateway's upstream: at least once, in order per
// tenant, retried with backoff until the app answers 2xx.
package outbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// Defaults for zero Options values, defined once.
const (
	DefaultPoll       = 500 * time.Millisecond
	DefaultTimeout    = 30 * time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultParallel is how many tenants' events are in flight at once per
	// realm; each tenant has at most one.
	DefaultParallel = 16
	DefaultLeaseTTL = 15 * time.Second
)

// leaseName is the store lease that lets one replica at a time deliver a
// realm's outbox: two would race each other and break a tenant's order.
const leaseName = "gateway-events"

// maxAnswerBytes bounds how much of an app's answer is read (and dropped),
// so that the connection can be reused without reading an endless body.
const maxAnswerBytes = 64 << 10

// Target is one served realm's outbox and where its events go.
type Target struct {
	Realm string
	Store store.Store
	// URL is the app's events endpoint: the realm's upstream followed by
	// gateway.eventsPath.
	URL string
}

// Options wire a Deliverer.
type Options struct {
	Targets []Target
	// Identity returns the token for the identity header (IdentityHeader)
	// of a delivery of e. Required: the app trusts nothing else.
	Identity func(e realmhook.Event, now time.Time) (string, error)
	// IdentityHeader is the header carrying Identity's token.
	IdentityHeader string
	// Client sends the deliveries (default: a client of its own).
	Client *http.Client
	// Timeout bounds one delivery (gateway.timeout; default DefaultTimeout).
	Timeout time.Duration
	// Poll is how often an outbox with nothing due is read again.
	Poll time.Duration
	// MinBackoff is the wait after a first failure, doubled after each
	// further one up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	Parallel               int
	// LeaseTTL is how long this replica's claim on a realm's outbox lasts
	// unrenewed (default DefaultLeaseTTL): how long the deliveries of a
	// replica that crashed wait for another (or its restart) to take over.
	// A pass renews it every third of it.
	LeaseTTL time.Duration
	// Owner names this replica in leases (default: host, pid and a random
	// suffix).
	Owner string
	Now   func() time.Time
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Deliverer delivers every target's outbox; Run runs it.
type Deliverer struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
}

// New checks opts and registers the metrics.
func New(opts Options) (*Deliverer, error) {
	if opts.Identity == nil || opts.IdentityHeader == "" {
		return nil, errors.New("outbox: Identity and IdentityHeader are required")
	}
	for _, t := range opts.Targets {
		if t.Store == nil || t.URL == "" || t.Realm == "" {
			return nil, fmt.Errorf("outbox: target %q needs a store and a URL", t.Realm)
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		opts.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m, err := newMetrics(opts.Registerer, opts.Targets)
	if err != nil {
		return nil, err
	}
	return &Deliverer{opts: opts, log: opts.Logger.With("component", "outbox"), metrics: m}, nil
}

// Run delivers until ctx ends, then returns nil.
func (d *Deliverer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range d.opts.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.runTarget(ctx, t)
		}()
	}
	wg.Wait()
	return nil
}

func (d *Deliverer) runTarget(ctx context.Context, t Target) {
	defer func() {
		release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = t.Store.ReleaseLease(release, leaseName, d.opts.Owner)
	}()
	tick := time.NewTicker(d.opts.Poll)
	defer tick.Stop()
	for {
		more, err := d.Pass(ctx, t)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("outbox pass failed", "realm", t.Realm, "err", err.Error())
		}
		if more && ctx.Err() == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Pass delivers the events of t that are due, one per tenant, and reports
// whether more may be due at once (it delivered some, so the next of those
// tenants may be waiting). Without the realm's lease it does nothing.
func (d *Deliverer) Pass(ctx context.Context, t Target) (more bool, err error) {
	defer d.countPending(ctx, t)
	held, err := t.Store.AcquireLease(ctx, leaseName, d.opts.Owner, d.opts.LeaseTTL, d.opts.Now())
	if err != nil || !held {
		return false, err
	}
	// The lease is renewed while the deliveries run, which may take up to
	// Timeout; should another replica take it meanwhile, they stop.
	ctx, cancel := context.WithCancel(ctx)
	renewed := make(chan struct{})
	defer func() {
		cancel()
		<-renewed
	}()
	go func() {
		defer close(renewed)
		tick := time.NewTicker(d.opts.LeaseTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if held, err := t.Store.AcquireLease(ctx, leaseName, d.opts.Owner, d.opts.LeaseTTL, d.opts.Now()); err == nil && !held {
					cancel()
					return
				}
			}
		}
	}()
	evs, err := t.Store.NextEvents(ctx, d.opts.Now(), d.opts.Parallel)
	if err != nil {
		return false, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, ev := range evs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := d.deliverOne(ctx, t, ev)
			mu.Lock()
			defer mu.Unlock()
			more = more || ok
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return more, errors.Join(errs...)
}

// deliverOne delivers ev and records the outcome: deleted when the app took
// it, deferred with backoff when not. The error is the store's, if it could
// not record either.
func (d *Deliverer) deliverOne(ctx context.Context, t Target, ev store.QueuedEvent) (bool, error) {
	log := d.log.With("realm", t.Realm, "tenant", ev.ClientKey, "event_id", ev.ID, "type", string(ev.Type))
	if ev.MigrationID != "" {
		log = log.With("migration_id", ev.MigrationID)
	}
	failure := d.post(ctx, t, ev.Event)
	if ctx.Err() != nil {
		return false, nil // shutting down: the event stays for the next start
	}
	if failure == nil {
		if err := t.Store.DeleteEvent(ctx, ev.Seq); err != nil {
			// Delivered but still queued: the app will see it again, which
			// at-least-once allows; its id tells the repeat.
			return false, fmt.Errorf("event %s delivered; remove it: %w", ev.ID, err)
		}
		d.metrics.delivered.WithLabelValues(t.Realm, string(ev.Type)).Inc()
		log.Debug("event delivered", "attempts", ev.Attempts+1)
		return true, nil
	}
	d.metrics.failures.WithLabelValues(t.Realm, string(ev.Type)).Inc()
	wait := d.backoff(ev.Attempts + 1)
	log.Warn("event delivery failed; will retry", "attempts", ev.Attempts+1, "retry_in", wait.String(), "err", failure.Error())
	if err := t.Store.DeferEvent(ctx, ev.Seq, d.opts.Now().Add(wait), failure.Error()); err != nil {
		return false, fmt.Errorf("event %s: record failed delivery: %w", ev.ID, err)
	}
	return false, nil
}

// backoff is the wait after the n-th failed attempt of an event.
func (d *Deliverer) backoff(n int) time.Duration {
	wait := d.opts.MinBackoff
	for i := 1; i < n && wait < d.opts.MaxBackoff; i++ {
		wait *= 2
	}
	return min(wait, d.opts.MaxBackoff)
}

// post sends one event to t's app; nil when it answered 2xx.
func (d *Deliverer) post(ctx context.Context, t Target, e realmhook.Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	token, err := d.opts.Identity(e, d.opts.Now())
	if err != nil {
		return fmt.Errorf("identity token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("events URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(d.opts.IdentityHeader, token)
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return err // names the method and URL, never the header
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: the app answered %s", t.URL, resp.Status)
	}
	return nil
}

// countPending sets the pending gauge of t from its outbox.
func (d *Deliverer) countPending(ctx context.Context, t Target) {
	counts, err := t.Store.CountEvents(ctx)
	if err != nil {
		return
	}
	for _, typ := range realmhook.EventTypes {
		d.metrics.pending.WithLabelValues(t.Realm, string(typ)).Set(float64(counts[typ]))
	}
}
