package integration

import (
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/realmhook/realmhook/connectjwt"
)

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// forgeKid signs an install token with a kid the Signer would refuse, as an
// attacker would, to prove the server refuses it before fetching anything.
func forgeKid(t *testing.T, ks *keyServer, kid, iss, base string) string {
	t.Helper()

	claims := jwt.MapClaims{
		"iss": iss, "aud": base, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
		"qsh": connectjwt.QSH(connectjwt.CanonicalRequest(http.MethodPost, "/installed", "", "")),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(ks.Key)
	if err != nil {
		t.Fatal(err)
	}

	return s
}
