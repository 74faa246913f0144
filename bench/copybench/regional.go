package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"

	"github.com/realmhook/realmhook/internalauth"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/store"
	"github.com/realmhook/realmhook/transfer"
)

// The regional shape's copy (-transfer): the copying child holds the source
// realm only and writes into the target through the transfer API of another
// process, which holds the target's database, over loopback HTTP, as two
// realms' deployments do.

// benchSecret authenticates the bench's two processes to each other.
const benchSecret = "copybench internal secret, not a real one"

// targetProcess is the target realm's process: this binary with
// -serve-target, serving the transfer API for targetRealm.
type targetProcess struct {
	cmd  *exec.Cmd
	addr string
}

// startTarget starts the target realm's process and waits for its address.
func startTarget(ctx context.Context, backend, where, cpuProfile string, stderr io.Writer) (*targetProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	args := []string{"-serve-target", backend + " " + where}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// Its stdin is its lifeline: it exits when the copy closes it.
	if _, err := cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("target process: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("target process did not say where it listens: %w", err)
	}
	return &targetProcess{cmd: cmd, addr: strings.TrimSpace(line)}, nil
}

// stop ends the target process.
func (p *targetProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	_ = p.cmd.Wait()
}

// peer is the transfer API's client of the target process.
func (p *targetProcess) peer() *transfer.Client {
	return transfer.NewClient(targetRealm, "http://"+p.addr, &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		internalauth.Signer{Secret: []byte(benchSecret), Issuer: sourceRealm})
}

// serveTarget is the target process: it serves spec ("BACKEND WHERE") as
// targetRealm's transfer API on a free loopback port, prints the address,
// and serves until stdin closes or ctx ends.
func serveTarget(ctx context.Context, spec, cpuProfile string, stdin io.Reader, stdout io.Writer, log *slog.Logger) error {
	backend, where, ok := strings.Cut(spec, " ")
	if !ok {
		return errors.New("-serve-target wants \"BACKEND WHERE\"")
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	st, err := openStore(ctx, backend, where, log)
	if err != nil {
		return fmt.Errorf("open target: %w", err)
	}
	defer st.Close()
	auth := &internalauth.Verifier{Secret: []byte(benchSecret), Realms: []string{targetRealm}}
	path, h := transfer.NewServer(map[string]store.Store{targetRealm: st}, migration.PeerOptions{}).Handler(auth)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	go func() {
		// The parent closes stdin (or dies): stop.
		_, _ = io.Copy(io.Discard, stdin)
		_ = srv.Close()
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Fprintln(stdout, ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
