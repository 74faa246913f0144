// Package forgefit verifies Forge Invocation Tokens (FITs), the RS256 JWTs
// Atlassian signs for every call Forge makes to an app's remote, with keys
// from a JWKS; and, for the host emulator and tests, mints them. It knows the
// token's shape and the identifiers in it, nothing about tenants or realms.
package forgefit

import (
	"regexp"
	"strings"

	"github.com/realmhook/realmhook"
)

// Issuer is the iss of every FIT.
const Issuer = "forge/invocation-token"

// The ARI prefixes of a Forge app and of one of its installations. An app's
// ARI is a FIT's aud and app.id; an installation appears both as an ARI (in
// a FIT) and as a bare UUID (in lifecycle events).
const (
	AppARIPrefix          = "ari:cloud:ecosystem::app/"
	InstallationARIPrefix = "ari:cloud:ecosystem::installation/"
)

// DefaultJWKSURL is the production JWKS that signs FITs.
const DefaultJWKSURL = "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json"

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// AppARI returns the app's ARI for an app id written as a UUID or as the
// ARI itself, the two forms Atlassian's documentation uses; EINVALID for
// anything else.
func AppARI(appID string) (string, error) {
	id := strings.TrimPrefix(appID, AppARIPrefix)
	if !uuidPattern.MatchString(id) {
		return "", realmhook.Errorf(realmhook.EINVALID, "%q is neither a UUID nor an app ARI (%s<uuid>)", appID, AppARIPrefix)
	}
	return AppARIPrefix + strings.ToLower(id), nil
}

// InstallationID returns an installation's id in one form (the bare id,
// lower case) whichever form it was given in, so that an installation named
// by a FIT, by a lifecycle event and by a Connect install compares equal.
func InstallationID(id string) string {
	return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(id), InstallationARIPrefix))
}

// InstallationForms returns the forms an installation id may have been
// stored in (a Connect install body keeps the host's own spelling).
func InstallationForms(id string) []string {
	bare := InstallationID(id)
	return []string{bare, InstallationARIPrefix + bare}
}

// SiteCloudID returns the cloud id of a site ARI
// ("ari:cloud:jira::site/<cloudId>", the context of a lifecycle event), or
// "" when s is not one.
func SiteCloudID(s string) string {
	if !strings.HasPrefix(s, "ari:cloud:") {
		return ""
	}
	_, id, ok := strings.Cut(s, "::site/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}
