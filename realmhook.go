// Package realmhook holds the domain types every other package shares: tenants,
// migrations and their states, and the one error type with its codes. It imports
// nothing of the project, so every package may import it.
package realmhook

import (
	_ "embed"
)

// DescriptorTemplate is the repository's atlassian-connect.json, built into the
// binary so that `realmhook serve` needs no files beside it.
//
//go:embed atlassian-connect.json
var DescriptorTemplate []byte
