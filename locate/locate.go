// Package locate finds, in the regional shape, which realm's process holds a
// tenant that no realm of this process holds, and forwards a hook call to
// it: the host may call a tenant's hooks, and a tenant its API, at any
// realm's base URL. Client asks the other processes; Server answers them.
package locate

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook"
	peerv1 "github.com/realmhook/realmhook/gen/realmhook/peer/v1"
	"github.com/realmhook/realmhook/gen/realmhook/peer/v1/peerv1connect"
	"github.com/realmhook/realmhook/identity"
	"github.com/realmhook/realmhook/internalauth"
)

// Timeout bounds one lookup of every other realm, and one forwarded call: a
// realm that has not answered by then fails it with EUNAVAILABLE, which the
// host retries.
const Timeout = 5 * time.Second

// forwardedHeaders are the request headers a forwarded call keeps: what
// verifying and answering it needs, nothing of the connection.
var forwardedHeaders = []string{"Authorization", "Content-Type", "Accept", "User-Agent", "X-Request-Id"}

// Client asks the processes of the realms this one does not serve.
type Client struct {
	realms  map[string]peerv1connect.LocateServiceClient
	order   []string
	timeout time.Duration
	log     *slog.Logger
}

var _ identity.Remote = (*Client)(nil)

// NewClient returns a Client of the realms in internalURLs (realm key →
// internalUrl), each call authenticated by signer with the called realm as
// audience.
func NewClient(internalURLs map[string]string, hc *http.Client, signer internalauth.Signer, logger *slog.Logger) *Client {
	if logger == nil {
		logger = slog.Default()
	}
	c := &Client{realms: map[string]peerv1connect.LocateServiceClient{}, timeout: Timeout, log: logger.With("component", "locate")}
	for key, u := range internalURLs {
		c.realms[key] = peerv1connect.NewLocateServiceClient(hc, strings.TrimRight(u, "/"),
			connect.WithInterceptors(signer.ClientInterceptor(key)))
		c.order = append(c.order, key)
	}
	return c
}

// Locate implements identity.Remote: it asks every realm at once whether it
// holds clientKey and verifies r's token there.
func (c *Client) Locate(ctx context.Context, clientKey string, r *http.Request, basePath string, allowContextQSH bool) (string, error) {
	call := callOf(r, basePath, nil)
	call.Headers = keepHeaders(r.Header, "Authorization")
	return c.find(ctx, &peerv1.LocateRequest{ClientKey: clientKey, Call: call, AllowContextQsh: allowContextQSH})
}

// Find asks every realm at once whether it holds clientKey, for a caller
// that verified the tenant's request itself (a signed install): the realm
// that does, "" when none; EUNAVAILABLE when one did not answer and none
// said it holds the tenant.
func (c *Client) Find(ctx context.Context, clientKey string) (string, error) {
	return c.find(ctx, &peerv1.LocateRequest{ClientKey: clientKey})
}

func (c *Client) find(ctx context.Context, req *peerv1.LocateRequest) (string, error) {
	if len(c.order) == 0 {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	type answer struct {
		realm string
		held  bool
		err   error
	}
	answers := make(chan answer, len(c.order))
	for _, key := range c.order {
		go func() {
			resp, err := c.realms[key].Locate(ctx, connect.NewRequest(req))
			if err != nil {
				answers <- answer{realm: key, err: err}
				return
			}
			answers <- answer{realm: key, held: resp.Msg.GetHeld()}
		}()
	}
	var failed []string
	var firstErr error
	for range c.order {
		a := <-answers
		switch {
		case a.held:
			return a.realm, nil
		case a.err != nil:
			failed = append(failed, a.realm)
			if firstErr == nil {
				firstErr = a.err
			}
		}
	}
	if len(failed) > 0 {
		// The tenant may live in a realm that did not answer: "unknown
		// tenant" would be a lie the host could act on.
		c.log.Warn("locate: realms did not answer", "tenant", req.GetClientKey(), "realms", failed, "err", firstErr.Error())
		return "", unavailable(fmt.Errorf("locate tenant: realms %s did not answer: %w", strings.Join(failed, ", "), firstErr))
	}
	return "", nil
}

// Response is a forwarded call's answer, as the holding realm gave it.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Forward runs r (a call to a realm whose base path is basePath, its body
// already read into body) on the process of realm, as if it had come to that
// realm's base URL, and returns its answer.
func (c *Client) Forward(ctx context.Context, realm string, r *http.Request, basePath string, body []byte) (*Response, error) {
	cl, ok := c.realms[realm]
	if !ok {
		return nil, fmt.Errorf("forward to realm %s: no internalUrl for it", realm)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := cl.Forward(ctx, connect.NewRequest(&peerv1.ForwardRequest{Call: callOf(r, basePath, body)}))
	if err != nil {
		return nil, unavailable(fmt.Errorf("forward to realm %s: %w", realm, err))
	}
	out := &Response{Status: int(resp.Msg.GetStatus()), Header: http.Header{}, Body: resp.Msg.GetBody()}
	for _, h := range resp.Msg.GetHeaders() {
		out.Header.Add(h.GetName(), h.GetValue())
	}
	return out, nil
}

// callOf is r as a call below its realm's base URL.
func callOf(r *http.Request, basePath string, body []byte) *peerv1.HTTPCall {
	path := strings.TrimPrefix(r.URL.EscapedPath(), basePath)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return &peerv1.HTTPCall{
		Method:   r.Method,
		Path:     path,
		RawQuery: r.URL.RawQuery,
		Headers:  keepHeaders(r.Header, forwardedHeaders...),
		Body:     body,
	}
}

func keepHeaders(h http.Header, names ...string) []*peerv1.Header {
	var out []*peerv1.Header
	for _, n := range names {
		for _, v := range h.Values(n) {
			out = append(out, &peerv1.Header{Name: n, Value: v})
		}
	}
	return out
}

// unavailable marks err, a realm's process that did not answer, as
// EUNAVAILABLE: retryable.
func unavailable(err error) error { return realmhook.Unavailable(err) }
