package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook/config"
	"github.com/realmhook/realmhook/hooks"
	"github.com/realmhook/realmhook/internalauth"
	"github.com/realmhook/realmhook/locate"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/realms"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/transfer"
)

// remoteRealms is where the realms this process does not serve are reached:
// realm key → internalUrl. Empty in the embedded shape.
func remoteRealms(cfg *config.Config) map[string]string {
	urls := map[string]string{}
	for _, key := range cfg.RealmKeys() {
		if r := cfg.Realms[key]; !cfg.Serves(key) && r.InternalURL != "" {
			urls[key] = r.InternalURL
		}
	}
	return urls
}

// internalSigner mints this process's tokens for the internal API: the
// issuer is the first realm it serves.
func internalSigner(cfg *config.Config) internalauth.Signer {
	return internalauth.Signer{Secret: []byte(cfg.Internal.Secret), Issuer: cfg.ServedRealms()[0]}
}

// internalClient is the HTTP client of internal calls: TLS (with
// internal.tlsCA's roots when set) where an internalUrl is https.
func internalClient(in config.Internal) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if in.TLSCA != "" {
		pem, err := os.ReadFile(in.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("internal.tlsCA: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("internal.tlsCA: %s holds no PEM certificate", in.TLSCA)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// remotePeers is the migration.Peer of every realm this process does not
// serve but reaches at its internalUrl: the transfer API's client.
func remotePeers(cfg *config.Config) (map[string]migration.Peer, error) {
	urls := remoteRealms(cfg)
	peers := make(map[string]migration.Peer, len(urls))
	if len(urls) == 0 {
		return peers, nil
	}
	hc, err := internalClient(cfg.Internal)
	if err != nil {
		return nil, err
	}
	for key, u := range urls {
		peers[key] = transfer.NewClient(key, strings.TrimRight(u, "/"), hc, internalSigner(cfg))
	}
	return peers, nil
}

// newLocateClient is the Client of the other realms' processes, nil when
// every realm is served here.
func newLocateClient(cfg *config.Config, logger *slog.Logger) (*locate.Client, error) {
	urls := remoteRealms(cfg)
	if len(urls) == 0 {
		return nil, nil
	}
	hc, err := internalClient(cfg.Internal)
	if err != nil {
		return nil, err
	}
	return locate.NewClient(urls, hc, internalSigner(cfg), logger), nil
}

// internalHandler is the internal API other realms' processes call, every
// call's token checked for a realm served here; nil without
// internal.secret.
func internalHandler(cfg *config.Config, registry *realms.Registry, h *hooks.Server) http.Handler {
	if cfg.Internal.Secret == "" {
		return nil
	}
	verifier := &internalauth.Verifier{Secret: []byte(cfg.Internal.Secret), Realms: cfg.ServedRealms(), Leeway: cfg.JWT.Leeway}
	auth := connect.WithInterceptors(verifier.Interceptor())
	mux := http.NewServeMux()
	loc := &locate.Server{Realms: registry, Ident: h.Identity(), Public: h.Handler()}
	mux.Handle(loc.Handler(auth))
	served := map[string]store.Store{}
	for _, r := range registry.Served() {
		served[r.Key] = r.Store
	}
	mux.Handle(transfer.NewServer(served, migration.PeerOptions{Events: cfg.Gateway != nil}).Handler(verifier))
	return mux
}
