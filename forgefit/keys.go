package forgefit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/time/rate"
)

// Bounds of the JWKS fetch: a JWKS is a few keys, fetched rarely. A token
// with an unknown kid refreshes the set, at most once per RefreshEvery (any
// caller can make up a kid), and waits at most RefreshWait for its turn.
const (
	JWKSTimeout      = 5 * time.Second
	JWKSMaxBytes     = 256 << 10
	JWKSRefreshEvery = 30 * time.Second
	JWKSRefreshWait  = 2 * time.Second
	JWKSInterval     = time.Hour
)

// Keys resolves a FIT's signing key by kid.
type Keys interface {
	KeyRead(ctx context.Context, kid string) (jwkset.JWK, error)
}

// NewRemoteKeys returns the keys of the JWKS at url, fetched now (a failure
// is retried on the first token), refreshed every JWKSInterval and on an
// unknown kid, within the bounds above. It stops refreshing when ctx ends.
func NewRemoteKeys(ctx context.Context, url string, client *http.Client) (Keys, error) {
	if client == nil {
		client = &http.Client{}
	}
	bounded := *client
	bounded.Timeout = JWKSTimeout
	bounded.Transport = limitBody{next: client.Transport, limit: JWKSMaxBytes}
	st, err := jwkset.NewStorageFromHTTP(url, jwkset.HTTPClientStorageOptions{
		Client:                    &bounded,
		Ctx:                       ctx,
		HTTPTimeout:               JWKSTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshInterval:           JWKSInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("forge jwks %s: %w", url, err)
	}
	c, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{url: st},
		RefreshUnknownKID: rate.NewLimiter(rate.Every(JWKSRefreshEvery), 1),
		RateLimitWaitMax:  JWKSRefreshWait,
	})
	if err != nil {
		return nil, fmt.Errorf("forge jwks %s: %w", url, err)
	}
	return c, nil
}

// limitBody fails a response body longer than limit, so a JWKS endpoint
// cannot make realmhook read without end.
type limitBody struct {
	next  http.RoundTripper
	limit int64
}

func (l limitBody) RoundTrip(r *http.Request) (*http.Response, error) {
	next := l.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: l.limit}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, err := b.ReadCloser.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("forge jwks: response is larger than %d bytes", JWKSMaxBytes)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
