package identitytoken_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook/identitytoken"
)

const secret = "0123456789abcdef0123456789abcdef"

func mustKey(t *testing.T) identitytoken.Key {
	t.Helper()
	k, err := identitytoken.NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKey_RefusesShortSecret(t *testing.T) {
	if _, err := identitytoken.NewKey(secret[:31]); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("31-byte secret: err %v, want one naming the minimum", err)
	}
	if _, err := identitytoken.Key("short").Mint(identitytoken.Identity{ClientKey: "c"}, time.Now()); err == nil {
		t.Fatal("Mint with a short key: no error")
	}
}

func TestMint_VerifyRoundTrip(t *testing.T) {
	k := mustKey(t)
	now := time.Unix(1_800_000_000, 0)
	id := identitytoken.Identity{ClientKey: "client-1", Realm: "EU", User: "acct-7",
		Context: json.RawMessage(`{"user":{"accountId":"acct-7"}}`), Frozen: true}
	tok, err := k.Mint(id, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := identitytoken.Verify(tok, []byte(secret), now.Add(59*time.Second), 0)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Issuer != "realmhook" || c.ClientKey() != "client-1" || c.Realm != "EU" || c.User != "acct-7" || !c.Frozen ||
		string(c.Context) != `{"user":{"accountId":"acct-7"}}` {
		t.Errorf("claims %+v", c)
	}
	if !c.IssuedAt.Equal(now) || !c.ExpiresAt.Equal(now.Add(identitytoken.TTL)) {
		t.Errorf("iat %v exp %v, want %v and +60s", c.IssuedAt, c.ExpiresAt, now)
	}
	if len(c.ID) != 32 {
		t.Errorf("jti %q, want 32 hex digits", c.ID)
	}
	other, _ := k.Mint(id, now)
	if c2, _ := identitytoken.Verify(other, []byte(secret), now, 0); c2 == nil || c2.ID == c.ID {
		t.Error("two tokens share a jti")
	}
}

func TestMint_OmitsAbsentUserAndContext(t *testing.T) {
	tok, err := mustKey(t).Mint(identitytoken.Identity{ClientKey: "c", Realm: "US"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"user", "context", "aud"} {
		if _, ok := claims[k]; ok {
			t.Errorf("claim %q present: %v", k, claims)
		}
	}
	if f, ok := claims["frozen"].(bool); !ok || f {
		t.Errorf("frozen = %v, want false, present", claims["frozen"])
	}
}

func TestVerify_Refuses(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good, _ := mustKey(t).Mint(identitytoken.Identity{ClientKey: "c", Realm: "EU"}, now)
	sign := func(method jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "realmhook", "sub": "c", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := base()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name  string
		token string
		at    time.Time
	}{
		{"Expired", good, now.Add(61 * time.Second)},
		{"WrongSecret", sign(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), base()), now},
		{"HS512", sign(jwt.SigningMethodHS512, []byte(secret), base()), now},
		{"None", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, base()), now},
		{"OtherIssuer", sign(jwt.SigningMethodHS256, []byte(secret), with("iss", "someone")), now},
		{"NoSub", sign(jwt.SigningMethodHS256, []byte(secret), with("sub", nil)), now},
		{"NoIat", sign(jwt.SigningMethodHS256, []byte(secret), with("iat", nil)), now},
		{"NoExp", sign(jwt.SigningMethodHS256, []byte(secret), with("exp", nil)), now},
		{"LongLived", sign(jwt.SigningMethodHS256, []byte(secret), with("exp", now.Add(time.Hour).Unix())), now},
		{"EgressAudience", sign(jwt.SigningMethodHS256, []byte(secret), with("aud", "realmhook-egress")), now},
		{"Garbage", "not.a.jwt", now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := identitytoken.Verify(tt.token, []byte(secret), tt.at, 0); err == nil {
				t.Fatalf("accepted: %+v", c)
			}
		})
	}
}

func ExampleVerify() {
	key, _ := identitytoken.NewKey("an identity secret of 32 bytes or more")
	now := time.Unix(1_800_000_000, 0)
	token, _ := key.Mint(identitytoken.Identity{ClientKey: "client-1", Realm: "EU"}, now)

	// In the app: token is r.Header.Get(identitytoken.Header).
	claims, err := identitytoken.Verify(token, []byte("an identity secret of 32 bytes or more"), now, 30*time.Second)
	if err != nil {
		return // answer 401
	}
	fmt.Println(claims.ClientKey(), claims.Realm)
	// Output: client-1 EU
}

func TestMint_ForgeFields(t *testing.T) {
	k := mustKey(t)
	now := time.Unix(1_800_000_000, 0)
	tok, err := k.Mint(identitytoken.Identity{ClientKey: "inst-1", Realm: "EU", Protocol: identitytoken.ProtocolForge,
		InstallationID: "inst-1", CloudID: "site-1", Principal: "acct-1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := identitytoken.Verify(tok, []byte(secret), now, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if c.Protocol != "forge" || c.InstallationID != "inst-1" || c.CloudID != "site-1" || c.Principal != "acct-1" {
		t.Fatalf("claims %+v", c)
	}
}
