package hooks

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/identity"
)

// forward runs a migration hook on the process of the realm that holds its
// tenant (the token verified there) and answers with that process's answer,
// status, headers and body as they are: the host sees one realmhook.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, held *identity.HeldElsewhere) {
	called, err := s.calledRealm(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.writeError(w, r, realmhook.Errorf(realmhook.ETOOLARGE, "request body is larger than %d bytes", maxBodyBytes))
		return
	} else if err != nil {
		s.writeError(w, r, realmhook.Errorf(realmhook.EINVALID, "reading the request body: %v", err))
		return
	}
	noteTenant(r, held.ClientKey, held.Realm)
	resp, err := s.opts.Remote.Forward(r.Context(), held.Realm, r, called.BasePath(), body)
	if err != nil {
		// No errorResponseCode: the host retries, and the realm may answer then.
		s.writeMigrationError(w, r, err)
		return
	}
	s.log(r).Info("migration hook forwarded", slog.String("tenant", held.ClientKey), slog.String("realm", held.Realm),
		slog.Int("status", resp.Status))
	for name, vs := range resp.Header {
		if name == "Content-Length" {
			continue
		}
		w.Header().Del(name)
		for _, v := range vs {
			w.Header().Add(name, v)
		}
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}
