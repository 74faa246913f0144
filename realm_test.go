package realmhook_test

import (
	"testing"

	"github.com/realmhook/realmhook"
)

func TestIsRealmKey(t *testing.T) {
	for key, want := range map[string]bool{
		"global": true, "US": true, "EU": true, "FR": true, "GB": true, "ABCDEFGH": true,
		"": false, "E": false, "eu": false, "Global": false, "ABCDEFGHI": false,
		"US1": false, "us-east": false, "E_U": false, " EU": false, "EU\n": false,
	} {
		if got := realmhook.IsRealmKey(key); got != want {
			t.Errorf("IsRealmKey(%q) = %v, want %v", key, got, want)
		}
	}
}
