package hostsim

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook/forgefit"
)

// Forgery is a FIT a Forge remote must refuse.
type Forgery struct {
	Name  string
	Token string
}

// ForgedFITs are the ways a FIT for inv can be forged or misused: another
// app's audience, another issuer, a kid the JWKS does not have, HS256
// signed with the JWKS's public key, alg none, expired, not yet valid.
func ForgedFITs(s *forgefit.Signer, inv forgefit.Invocation) ([]Forgery, error) {
	if inv.IssuedAt.IsZero() {
		inv.IssuedAt = time.Now()
	}
	edit := func(f func(c *forgefit.Claims)) *forgefit.Claims {
		c := inv.Claims()
		f(c)
		return c
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&s.Key.PublicKey)
	if err != nil {
		return nil, err
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, inv.Claims())
	hs.Header["kid"] = s.KID
	hsTok, err := hs.SignedString(pubPEM)
	if err != nil {
		return nil, err
	}
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": s.KID})
	payload, err := json.Marshal(inv.Claims())
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding.EncodeToString
	out := []Forgery{
		{"wrong-aud", ""}, {"wrong-iss", ""}, {"unknown-kid", ""},
		{"hs256-public-key", hsTok}, {"alg-none", enc(header) + "." + enc(payload) + "."},
		{"expired", ""}, {"not-yet-valid", ""},
	}
	other := &forgefit.Signer{Key: s.Key, KID: s.KID + "-unknown"}
	signed := map[string]func() (string, error){
		"wrong-aud": func() (string, error) {
			return s.Sign(edit(func(c *forgefit.Claims) {
				c.Audience = jwt.ClaimStrings{forgefit.AppARIPrefix + "00000000-0000-4000-8000-000000000000"}
			}))
		},
		"wrong-iss": func() (string, error) {
			return s.Sign(edit(func(c *forgefit.Claims) { c.Issuer = "forge/not-the-invocation-token" }))
		},
		"unknown-kid": func() (string, error) { return other.Sign(inv.Claims()) },
		"expired": func() (string, error) {
			return s.Sign(edit(func(c *forgefit.Claims) {
				c.IssuedAt = jwt.NewNumericDate(inv.IssuedAt.Add(-10 * time.Minute))
				c.NotBefore, c.ExpiresAt = c.IssuedAt, jwt.NewNumericDate(inv.IssuedAt.Add(-5*time.Minute))
			}))
		},
		"not-yet-valid": func() (string, error) {
			return s.Sign(edit(func(c *forgefit.Claims) {
				c.NotBefore = jwt.NewNumericDate(inv.IssuedAt.Add(10 * time.Minute))
				c.ExpiresAt = jwt.NewNumericDate(inv.IssuedAt.Add(15 * time.Minute))
			}))
		},
	}
	for i := range out {
		if f, ok := signed[out[i].Name]; ok {
			if out[i].Token, err = f(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// ForgeConformanceOptions says which Forge remote to check.
type ForgeConformanceOptions struct {
	App ForgeInstall
	// Source is the realm the throwaway installation is pinned to, Target
	// where it migrates ("" : global, and the first other realm).
	Source, Target string
	// Probe writes tenant data before the migration and reads it after.
	Probe         DataProbe
	StatusTimeout time.Duration
	Poll          time.Duration
}

// ForgeConformance checks a Forge remote against the residency contract:
// an installed event pins a throwaway installation; every forged FIT is
// refused, alike, on the lifecycle endpoint and a migration hook; the
// migration moves it with every hook sent twice; after commit the target
// serves it and the source refuses it; the uninstalled event is taken.
func (h *Host) ForgeConformance(ctx context.Context, opts ForgeConformanceOptions) (Report, error) {
	if opts.Poll <= 0 {
		opts.Poll = DefaultConformancePoll
	}
	if opts.StatusTimeout <= 0 {
		opts.StatusTimeout = DefaultStatusTimeout
	}
	source := NormalizeRealm(opts.Source)
	if source == "" {
		source = GlobalRealm
	}
	target := NormalizeRealm(opts.Target)
	if target == "" {
		for _, k := range sortedKeys(opts.App.BaseURLs) {
			if k != source {
				target = k
				break
			}
		}
	}
	s := New()
	s.Client, s.Now, s.Sleep, s.Logger, s.RetryDelay, s.Retries = h.Client, h.Now, h.Sleep, h.Logger, h.RetryDelay, h.Retries
	signer, err := h.ForgeSigner()
	if err != nil {
		return Report{}, err
	}
	s.forge = signer
	c := &conformance{h: s, out: h.out(), report: &Report{DescriptorURL: opts.App.BaseURLs[GlobalRealm], Started: h.now()}}

	var t Tenant
	installed := c.record("forge-installed-event", func() (string, error) {
		var err error
		t, err = s.ForgeInstall(ctx, ForgeInstallOptions{App: opts.App, Realm: source})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("installation %s pinned to %s by avi:forge:installed:app", t.ClientKey, source), nil
	})
	if !installed {
		c.blocked("the installed event failed", "forge-forged-fits", "forge-migration-hooks-twice", "forge-served-after-commit", "forge-uninstalled-event")
		c.report.Duration = h.now().Sub(c.report.Started)
		return *c.report, ctx.Err()
	}
	c.record("forge-forged-fits", func() (string, error) {
		forged, err := ForgedFITs(signer, forgefit.Invocation{AppARI: opts.App.AppARI, InstallationID: t.ClientKey, CloudID: t.Forge.CloudID, IssuedAt: s.now()})
		if err != nil {
			return "", err
		}
		base, _ := t.Forge.base(source)
		urls := []struct{ method, url string }{
			{http.MethodGet, base + t.Forge.MigrationPath + "/status?migrationId=1"},
			{http.MethodPost, base + t.Forge.EventsPath},
		}
		var first string
		for _, f := range forged {
			for _, u := range urls {
				var body []byte
				if u.method == http.MethodPost {
					body = []byte(`{"eventType":"avi:forge:installed:app","id":"` + t.ClientKey + `"}`)
				}
				tok := f.Token
				resp, err := s.send(ctx, u.method, u.url, base, body, func(string, string, string) (string, error) { return "Bearer " + tok, nil })
				if err != nil {
					return "", err
				}
				if _, err := refused(resp, f.Name+" FIT on "+u.method+" "+u.url, true); err != nil {
					return "", err
				}
				if first == "" {
					first = string(resp.Body)
				} else if string(resp.Body) != first {
					return "", fmt.Errorf("the %s FIT's refusal reads %s, another's %s: refusals before verification must read alike", f.Name, resp.Body, first)
				}
			}
		}
		return fmt.Sprintf("%d forged FITs refused on the lifecycle endpoint and /status, every refusal alike", len(forged)), nil
	})
	migrated := c.record("forge-migration-hooks-twice", func() (string, error) {
		if opts.Probe != nil {
			if err := opts.Probe.Put(ctx, c.callAs(t, source)); err != nil {
				return "", fmt.Errorf("write probe data: %w", err)
			}
		}
		res, err := s.Migrate(ctx, MigrateOptions{ClientKey: t.ClientKey, To: target, Window: opts.StatusTimeout, Poll: opts.Poll, Twice: true})
		if err != nil {
			return "", fmt.Errorf("%s: %w", res.Reason, err)
		}
		return fmt.Sprintf("migrated %s → %s with every hook sent twice (%d answers)", source, target, len(res.Calls)), nil
	})
	if migrated {
		t, _ = s.Tenant(t.ClientKey)
		c.record("forge-served-after-commit", func() (string, error) {
			if opts.Probe != nil {
				if err := opts.Probe.Check(ctx, c.callAs(t, target)); err != nil {
					return "", fmt.Errorf("the target realm: %w", err)
				}
			}
			resp, err := s.CallRealm(ctx, t.ClientKey, source, http.MethodGet, "/api/v1/properties", nil)
			if err != nil {
				return "", err
			}
			if resp.StatusCode != http.StatusMisdirectedRequest {
				return "", fmt.Errorf("the source realm answered %s after commit, want 421", resp.Summary())
			}
			return "the target serves the installation; the source answers 421", nil
		})
	} else {
		c.blocked("the migration failed", "forge-served-after-commit")
	}
	c.record("forge-uninstalled-event", func() (string, error) {
		if err := s.ForgeUninstall(ctx, t.ClientKey); err != nil {
			var le *LifecycleError
			if errors.As(err, &le) {
				return "", fmt.Errorf("avi:forge:uninstalled:app answered %s", le.Response.Summary())
			}
			return "", err
		}
		return "avi:forge:uninstalled:app taken", nil
	})
	c.report.Duration = h.now().Sub(c.report.Started)
	return *c.report, ctx.Err()
}
