package realmhook

import "runtime/debug"

// version is set at build time by the Makefile
// (-ldflags "-X github.com/realmhook/realmhook.version=…"), so that both
// binaries report the same release.
var version string

// Version is the version the binaries print for `version` and `--version`:
// the one the Makefile stamped, else the module version Go recorded (a
// `go install …@v1.2.3` build), else "(devel)".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
