package hostsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/realmhook/realmhook"
)

// Response is an app's answer to one call the host made.
type Response struct {
	Method     string
	URL        string
	StatusCode int
	Header     http.Header
	Body       []byte
	// Attempts is how many times the call was sent (retries included).
	Attempts int
}

// OK reports a 2xx answer.
func (r *Response) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// ErrorResponseCode is the body's errorResponseCode (E0001…E9999), "" if none.
func (r *Response) ErrorResponseCode() string { return r.stringField("errorResponseCode") }

// Status is the body's "status" field, "" if none.
func (r *Response) Status() string { return r.stringField("status") }

func (r *Response) stringField(name string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(r.Body, &m) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(m[name], &s) != nil {
		return ""
	}
	return s
}

// Summary is the status and a short body, for people.
func (r *Response) Summary() string {
	s := fmt.Sprintf("%d %s", r.StatusCode, http.StatusText(r.StatusCode))
	if b := strings.TrimSpace(string(r.Body)); b != "" {
		s += " " + snippet(r.Body)
	}
	return s
}

// tokenFunc signs a token for one request made to baseURL and returns the
// Authorization header that carries it ("JWT …" for Connect, "Bearer …"
// for a Forge Invocation Token).
type tokenFunc func(method, rawURL, baseURL string) (string, error)

// send makes one call to the app; token may be nil for an unsigned call.
func (h *Host) send(ctx context.Context, method, rawURL, baseURL string, body []byte, token tokenFunc) (*Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "request %s %s: %v", method, rawURL, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "realmctl-host")
	if token != nil {
		tok, err := token(method, rawURL, baseURL)
		if err != nil {
			return nil, fmt.Errorf("sign %s %s: %w", method, rawURL, err)
		}
		req.Header.Set("Authorization", tok)
	}
	resp, err := h.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, rawURL, err)
	}
	h.logger().Debug("host call", "method", method, "url", rawURL, "status", resp.StatusCode)
	return &Response{Method: method, URL: rawURL, StatusCode: resp.StatusCode, Header: resp.Header, Body: b, Attempts: 1}, nil
}

// sendRetried mirrors the host's retry rule: an answer that is not 2xx and
// carries no errorResponseCode (or no answer at all) is sent again, up to
// Retries more times, RetryDelay apart; one with a code is final.
func (h *Host) sendRetried(ctx context.Context, method, rawURL, baseURL string, body []byte, token tokenFunc) (*Response, error) {
	var (
		resp *Response
		err  error
	)
	for attempt := 1; ; attempt++ {
		resp, err = h.send(ctx, method, rawURL, baseURL, body, token)
		if err == nil {
			resp.Attempts = attempt
			if resp.OK() || resp.ErrorResponseCode() != "" {
				return resp, nil
			}
		}
		if attempt > h.Retries || ctx.Err() != nil {
			return resp, err
		}
		why := "transport error"
		if err == nil {
			why = fmt.Sprintf("%d without errorResponseCode", resp.StatusCode)
		}
		fmt.Fprintf(h.out(), "  ↻ %s; retry %d/%d in %s\n", why, attempt, h.Retries, h.RetryDelay)
		if serr := h.sleep(ctx, h.RetryDelay); serr != nil {
			return resp, fmt.Errorf("%s %s: %w", method, rawURL, serr)
		}
	}
}

// asTenant signs as the tenant: with its shared secret (HS256), or for a
// Forge installation with a Forge Invocation Token.
func (h *Host) asTenant(t Tenant) tokenFunc {
	return func(method, rawURL, baseURL string) (string, error) {
		if t.Forge != nil {
			return h.fit(t)
		}
		return jwtHeader(h.signer().HS256([]byte(t.SharedSecret), t.ClientKey, method, rawURL, baseURL))
	}
}

// jwtHeader is the Authorization header of a Connect JWT.
func jwtHeader(tok string, err error) (string, error) { return "JWT " + tok, err }

// CallRealm signs a request as the tenant (HS256, qsh computed) and sends it
// to realm's base URL: "" for the tenant's current realm, another to check
// that the realm a tenant left refuses it. path is relative to the realm's
// base URL and may carry a query; body, if not nil, is sent as JSON.
func (h *Host) CallRealm(ctx context.Context, clientKey, realm, method, path string, body []byte) (*Response, error) {
	t, err := h.mustTenant(clientKey)
	if err != nil {
		return nil, err
	}
	if realm == "" {
		realm = t.Realm
	}
	base, err := h.realmBase(ctx, t, realm)
	if err != nil {
		return nil, err
	}
	method = strings.ToUpper(method)
	if method == "" {
		return nil, realmhook.Errorf(realmhook.EINVALID, "call: method is empty")
	}
	rawURL, err := joinURL(base, path)
	if err != nil {
		return nil, err
	}
	return h.send(ctx, method, rawURL, base, body, h.asTenant(t))
}

// realmBase is the base URL of a tenant's app in realm: from the Connect
// descriptor, or from the Forge remote's baseUrl map.
func (h *Host) realmBase(ctx context.Context, t Tenant, realm string) (string, error) {
	if t.Forge != nil {
		return t.Forge.base(realm)
	}
	d, err := h.Descriptor(ctx, t.DescriptorURL)
	if err != nil {
		return "", err
	}
	return d.RealmBaseURL(realm)
}

// joinURL puts a path (with optional query) under a base URL.
func joinURL(base, path string) (string, error) {
	if path == "" || path[0] != '/' {
		return "", realmhook.Errorf(realmhook.EINVALID, "path %q: want a path starting with /", path)
	}
	u := base + path
	if _, err := url.Parse(u); err != nil {
		return "", realmhook.Errorf(realmhook.EINVALID, "path %q: %v", path, err)
	}
	return u, nil
}
