package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/realmhook/realmhook/server"
)

// serveApp runs realmhook as a Go library with an app route of its own, the
// way a partner writes the ACE app in Go: the property route answered from
// memory behind realmhook's middleware (what addon.authenticate() is in ACE)
// instead of by realmhook's tenant API. It prints the address it listens on.
func serveApp(ctx context.Context, configPath, logLevel string, stdout *os.File) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("-log: %w", err)
	}
	// The access log goes where the binary's goes, at the same level.
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	rh, err := server.Load(ctx, configPath, server.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer rh.Close()
	body, _ := json.Marshal(map[string]any{"key": readKey, "value": json.RawMessage(readValue)})
	mux := http.NewServeMux()
	mux.Handle("/", rh.Handler())
	rh.Mount(mux, "/api/v1/properties/", server.Route{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.TrimPrefix(r.URL.Path, "/api/v1/properties/") != readKey {
			http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	ln, err := net.Listen("tcp", rh.Config().Listen)
	if err != nil {
		return err
	}
	go func() { _ = rh.Run(ctx) }()
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// startApp starts this binary as the -serve app child on the configuration
// runRealmhook wrote into dir (its port is free again once that process
// stopped).
func startApp(ctx context.Context, self, dir, logLevel string) (*process, error) {
	cmd := exec.CommandContext(ctx, self, "-serve", "app", "-serve-config", filepath.Join(dir, "realmhook.yaml"), "-log", logLevel)
	logFile, err := os.Create(filepath.Join(dir, "app.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("app child: %w; see %s", err, logFile.Name())
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	return &process{name: "app", cmd: cmd, base: "http://" + addr + euPath, root: "http://" + addr}, nil
}
