package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/realmhook/realmhook/hostsim"
	"github.com/realmhook/realmhook/manifest"
)

// forgeJWKSPath is where `host keys` serves the JWKS of the host's FITs.
const forgeJWKSPath = "/forge/jwks.json"

// forgeApp reads the Forge app of a manifest.yml.
func forgeApp(path string) (hostsim.ForgeInstall, error) {
	if path == "" {
		return hostsim.ForgeInstall{}, usagef("--manifest FILE is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return hostsim.ForgeInstall{}, fmt.Errorf("manifest: %w", err)
	}
	m, err := manifest.Parse(b)
	if err != nil {
		return hostsim.ForgeInstall{}, err
	}
	return hostsim.ForgeApp(m)
}

func runHostForgeInstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	hf := newHostFlags("forge-install", stderr)
	manifestPath := hf.fs.String("manifest", "", "the app's manifest.yml `FILE` (from realmctl manifest)")
	var o hostsim.ForgeInstallOptions
	hf.fs.StringVar(&o.Realm, "realm", "", "`REALM` the product site lives in: global or a region key of the remote's baseUrl")
	hf.fs.StringVar(&o.InstallationID, "installation", "", "installation `ID` (default: random)")
	hf.fs.StringVar(&o.CloudID, "cloud-id", "", "the site's cloud `ID` (default: random; give an earlier one to re-install on that site)")
	if err := hf.parse(args, 0, 0); err != nil {
		return err
	}
	app, err := forgeApp(*manifestPath)
	if err != nil {
		return err
	}
	o.App = app
	h, err := hf.open(stdout, stderr)
	if err != nil {
		return err
	}
	t, err := h.ForgeInstall(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "installed Forge installation %s (cloud id %s) in realm %s\n", t.ClientKey, t.Forge.CloudID, t.Realm)
	return nil
}

func runHostForgeUninstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	hf := newHostFlags("forge-uninstall", stderr)
	inst := hf.fs.String("installation", "", "installation `ID` (required)")
	if err := hf.parse(args, 0, 0); err != nil {
		return err
	}
	if *inst == "" {
		return usagef("--installation is required")
	}
	h, err := hf.open(stdout, stderr)
	if err != nil {
		return err
	}
	if err := h.ForgeUninstall(ctx, *inst); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "uninstalled Forge installation %s\n", *inst)
	return nil
}

type forgeConformance struct {
	manifest, source, target, probe, junit string
	statusTimeout, poll, retryDelay        time.Duration
}

func runForgeConformance(ctx context.Context, hf *hostFlags, fc forgeConformance, stdout, stderr io.Writer) error {
	app, err := forgeApp(fc.manifest)
	if err != nil {
		return err
	}
	o := hostsim.ForgeConformanceOptions{App: app, Source: fc.source, Target: fc.target, StatusTimeout: fc.statusTimeout, Poll: fc.poll}
	switch fc.probe {
	case "none":
	case "properties":
		o.Probe = hostsim.PropertyProbe{}
	default:
		return usagef("--probe must be none or properties, got %q", fc.probe)
	}
	h, err := hf.open(stdout, stderr)
	if err != nil {
		return err
	}
	h.RetryDelay = fc.retryDelay
	rep, err := h.ForgeConformance(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep.Summary())
	if fc.junit != "" {
		if err := writeJUnit(fc.junit, rep); err != nil {
			return err
		}
	}
	if !rep.OK() {
		return errReported
	}
	return nil
}
