// Command go-app is a small Connect app written in Go that embeds realmhook
// as a library: one process serves realmhook's routes (descriptor, lifecycle
// and migration hooks, tenant API) and the app's own (a page and a REST
// route over its notes table), and each tenant's notes live in the database
// of the realm that holds the tenant, so a data residency migration moves
// them with realmhook's own data.
//
//	go run ./examples/go-app --config examples/go-app/go-app.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/realmhook/realmhook/server"
)

func main() {
	configPath := flag.String("config", "examples/go-app/go-app.yaml", "realmhook config `file`; it must declare the notes table")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *configPath); err != nil {
		fmt.Fprintln(os.Stderr, "go-app:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, configPath string) error {
	rh, err := server.Load(ctx, configPath, server.Options{Logger: slog.Default()})
	if err != nil {
		return err
	}
	defer rh.Close()
	h, err := newHandler(ctx, rh)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", rh.Config().Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	engine := make(chan error, 1)
	go func() { engine <- rh.Run(ctx) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("go-app listening on %s; descriptor %s/atlassian-connect.json\n", ln.Addr(), rh.BaseURL())
	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdown)
	if e := <-engine; e != nil && !errors.Is(e, context.Canceled) {
		err = errors.Join(err, e)
	}
	return err
}
