package realmhook

import (
	"regexp"
)

// GlobalRealm is the realm behind the descriptor's own baseUrl.
const GlobalRealm = "global"

// regionKeyPattern is what a realm key other than GlobalRealm looks like: the
// keys of the descriptor's regionBaseUrls ("US", "EU", "AU", "DE", "SG") and
// any other an operator configures.
var regionKeyPattern = regexp.MustCompile(`^[A-Z]{2,8}$`)

// RealmKeyRule says in words what IsRealmKey accepts, for error messages.
const RealmKeyRule = `"global" or 2 to 8 upper-case letters (e.g. EU, US, GB)`

// IsRealmKey reports whether key is a valid realm key: GlobalRealm, or 2 to 8
// upper-case ASCII letters. It is the one rule that config, the migration hooks
// and the descriptor lint share.
func IsRealmKey(key string) bool {
	return key == GlobalRealm || regionKeyPattern.MatchString(key)
}
