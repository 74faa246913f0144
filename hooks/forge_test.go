package hooks

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/realmhook/realmhook/forgefit"
	"github.com/realmhook/realmhook/identity"
)

const testForgeApp = "ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a"

func mustForgeEnv(t *testing.T) (*env, *forgefit.Signer) {
	t.Helper()
	signer, err := forgefit.NewSigner("fk")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signer.Keys()
	if err != nil {
		t.Fatal(err)
	}
	e := mustEnv(t, nil, func(o *Options) {
		o.Forge = &Forge{Verifier: &forgefit.Verifier{AppARI: testForgeApp, Keys: keys, Leeway: time.Second},
			MigrationPath: "/migration", EventsPath: "/forge/events", Window: 90 * time.Minute}
	})
	return e, signer
}

func (e *env) fit(signer *forgefit.Signer, inst, cloud string) string {
	e.t.Helper()
	tok, err := signer.Mint(forgefit.Invocation{AppARI: testForgeApp, InstallationID: inst, CloudID: cloud})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) forgeSend(method, url, fit string, body []byte) reply {
	e.t.Helper()
	return e.sendAuth(method, url, "Bearer "+fit, body)
}

func TestServer_ForgeEvents(t *testing.T) {
	e, signer := mustForgeEnv(t)
	eu, us := e.base("EU"), e.base("US")
	tok := e.fit(signer, "inst-1", "site-1")
	installed := []byte(`{"eventType":"avi:forge:installed:app","id":"inst-1","app":{"id":"x","version":"1"},"context":"ari:cloud:jira::site/site-1"}`)

	mustReply(t, e.forgeSend("POST", eu+"/forge/events", tok, []byte(`{"eventType":"avi:forge:installed:app","id":"inst-2"}`)), 400, "invalid")
	mustReply(t, e.forgeSend("POST", eu+"/forge/events", tok, installed), 204, "")
	mustReply(t, e.forgeSend("POST", eu+"/forge/events", tok, installed), 204, "") // delivered again
	mustReply(t, e.forgeSend("POST", us+"/forge/events", tok, installed), 409, "conflict")
	mustReply(t, e.forgeSend("POST", eu+"/forge/events", tok, []byte(`{"eventType":"avi:jira:created:issue"}`)), 204, "")
	mustReply(t, e.forgeSend("GET", eu+"/api/v1/properties", tok, nil), 200, "")
	mustReply(t, e.forgeSend("GET", us+"/api/v1/properties", tok, nil), 421, "misdirected_request")
	mustReply(t, e.forgeSend("POST", us+"/forge/events", tok, []byte(`{"eventType":"avi:forge:uninstalled:app"}`)), 421, "misdirected_request")
	mustReply(t, e.forgeSend("POST", eu+"/forge/events", tok, []byte(`{"eventType":"avi:forge:uninstalled:app"}`)), 204, "")
	mustReply(t, e.forgeSend("POST", eu+"/forge/events", tok, []byte(`{"eventType":"avi:forge:uninstalled:app"}`)), 204, "")
	mustReply(t, e.forgeSend("GET", eu+"/migration/status?migrationId=1", tok, nil), 401, "unauthorized")
}

func TestServer_ForgeScheduleWindow(t *testing.T) {
	e, signer := mustForgeEnv(t)
	tok := e.fit(signer, "inst-w", "")
	mustReply(t, e.forgeSend("GET", e.base("EU")+"/api/v1/properties", tok, nil), 200, "") // pins it to EU
	r := e.forgeSend("POST", e.base("US")+"/migration/schedule", tok, []byte(`{"migrationId":"7","startTime":"2026-01-01T00:00:00Z","location":"US"}`))
	mustReply(t, r, 200, "")
	s := &Server{opts: Options{Forge: &Forge{Window: 90 * time.Minute}}}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	forge := &identity.Identity{Kind: identity.ForgeFIT}
	if got := s.forgeWindow(forge, start, time.Time{}); !got.Equal(start.Add(90 * time.Minute)) {
		t.Errorf("a Forge schedule without endTime ends %s", got)
	}
	if end := start.Add(time.Hour); !s.forgeWindow(forge, start, end).Equal(end) {
		t.Error("the host's endTime was not kept")
	}
	if got := s.forgeWindow(&identity.Identity{Kind: identity.ConnectHS256}, start, time.Time{}); !got.IsZero() {
		t.Error("a Connect schedule without endTime got a window")
	}
}

// sendAuth is send with the Authorization header as given.
func (e *env) sendAuth(method, url, authorization string, body []byte) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s %s answered %d with non-JSON %q", method, url, resp.StatusCode, raw)
		}
	}
	return r
}
