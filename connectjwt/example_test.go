package connectjwt_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/realmhook/realmhook/connectjwt"
)

// A host emulator signs a migration hook call to the EU realm's base URL; the
// app takes the token from the request and verifies it against the tenant's
// shared secret, relative to the same base URL's path.
func ExampleSigner_HS256() {
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	secret := []byte("the tenant's sharedSecret")
	const baseURL = "https://app.example.com/realms/eu"
	const callURL = baseURL + "/dare-migration/status?migrationId=42"

	token, err := connectjwt.Signer{Now: now}.HS256(secret, "jira:1234", "GET", callURL, baseURL)
	if err != nil {
		fmt.Println(err)
		return
	}

	r := httptest.NewRequest("GET", callURL, nil)
	r.Header.Set("Authorization", "JWT "+token)

	got, err := connectjwt.TokenFromRequest(r)
	if err != nil {
		fmt.Println(err)
		return
	}
	v := connectjwt.Verifier{Leeway: 30 * time.Second, Now: now}
	claims, err := v.VerifyHS256(got, secret, "jira:1234", r, "/realms/eu", false)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("issuer:", claims.Issuer)
	fmt.Println("expires:", claims.ExpiresAt.UTC().Format(time.RFC3339))
	fmt.Println("signed:", connectjwt.CanonicalRequest(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, "/realms/eu"))

	// The same token replayed against another hook is refused.
	commit := httptest.NewRequest("POST", baseURL+"/dare-migration/commit", nil)
	_, err = v.VerifyHS256(got, secret, "jira:1234", commit, "/realms/eu", false)
	fmt.Println(err)
	// Output:
	// issuer: jira:1234
	// expires: 2026-03-01T12:03:00Z
	// signed: GET&/dare-migration/status&migrationId=42
	// connect jwt rejected: qsh_mismatch: qsh was not computed for this request (canonical request "POST&/dare-migration/commit&")
}
