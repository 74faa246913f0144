package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/migration"
)

// migrationBody is what the host sends to /schedule, /start, /commit and /rollback.
type migrationBody struct {
	StartTime   string          `json:"startTime"`
	EndTime     string          `json:"endTime"`
	Location    string          `json:"location"`
	MigrationID json.RawMessage `json:"migrationId"`
}

// migrationID reads the id as a JSON string or number: the published examples
// show it both ways. Whether it is present and short enough is the migration
// engine's check (migration.CheckID), not this parser's.
func migrationID(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var id string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", realmhook.Errorf(realmhook.EINVALID, "migrationId: %v", err)
		}
	} else {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", realmhook.Errorf(realmhook.EINVALID, "migrationId must be a string or a number")
		}
		id = n.String()
	}
	return strings.TrimSpace(id), nil
}

// parseTime reads an ISO-8601 time; an absent one is the zero time, which the
// migration engine refuses as missing.
func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, realmhook.Errorf(realmhook.EINVALID, "%s %q is not an ISO-8601 time", field, v)
	}
	return t.UTC(), nil
}

// scheduleRequest parses the body of /schedule and /start. The fields are
// checked by the migration engine, in one place for every caller.
func scheduleRequest(r *http.Request) (migration.Request, error) {
	var body migrationBody
	if err := decodeJSON(r, &body); err != nil {
		return migration.Request{}, err
	}
	id, err := migrationID(body.MigrationID)
	if err != nil {
		return migration.Request{}, err
	}
	start, err := parseTime("startTime", body.StartTime)
	if err != nil {
		return migration.Request{}, err
	}
	end, err := parseTime("endTime", body.EndTime)
	if err != nil {
		return migration.Request{}, err
	}
	return migration.Request{MigrationID: id, Location: body.Location, StartTime: start, EndTime: end}, nil
}

// migrationView is how a migration is shown to the host.
func migrationView(m *realmhook.Migration) map[string]any {
	v := map[string]any{
		"migrationId": m.ID,
		"status":      string(m.State),
		"location":    m.TargetRealm,
		"progress": map[string]any{
			"tablesDone":  m.Progress.TablesDone,
			"tablesTotal": m.Progress.TablesTotal,
			"rowsCopied":  m.Progress.RowsCopied,
			"rowsTotal":   m.Progress.RowsTotal,
			"percent":     m.Progress.Percent(),
		},
	}
	if m.State == realmhook.MigrationFailed {
		// Recorded by the engine from migration.ResponseCode.
		v["errorResponseCode"] = m.ErrorResponseCode
	}
	if m.Message != "" {
		v["message"] = m.Message
	}
	return v
}

func (s *Server) logMigration(r *http.Request, m *realmhook.Migration, hook string) {
	// Every answer a hook gives is what /status falls back on should the
	// database stop answering.
	s.seen.rememberStatus(m)
	s.log(r).Info("migration hook", slog.String("hook", hook), slog.String("tenant", m.ClientKey),
		slog.String("migration_id", m.ID), slog.String("status", string(m.State)))
}

func (s *Server) migrationSchedule(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.scheduleOrStart(w, r, "schedule", s.opts.Migrations.Schedule)
}

func (s *Server) migrationStart(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.scheduleOrStart(w, r, "start", s.opts.Migrations.Start)
}

type scheduleFunc func(ctx context.Context, realm string, t *realmhook.Tenant, req migration.Request) (*realmhook.Migration, error)

func (s *Server) scheduleOrStart(w http.ResponseWriter, r *http.Request, hook string, do scheduleFunc) {
	auth, err := s.authenticate(r, migrationPolicy)
	if err != nil {
		s.writeMigrationError(w, r, err)
		return
	}
	s.seen.rememberTenant(auth.Home, auth.Tenant)
	req, err := scheduleRequest(r)
	if err != nil {
		s.writeMigrationError(w, r, err)
		return
	}
	req.EndTime = s.forgeWindow(auth, req.StartTime, req.EndTime)
	m, err := do(r.Context(), auth.Home.Key, auth.Tenant, req)
	if err != nil {
		s.writeMigrationError(w, r, err)
		return
	}
	s.logMigration(r, m, hook)
	writeJSON(w, http.StatusOK, migrationView(m))
}

// migrationStatus never answers 5xx: the host rolls back on any non-2xx
// from /status. While the databases do not answer, it answers 200 with the
// last status this process saw (or an in-progress one), marked stale; only
// a failed status ends the migration.
func (s *Server) migrationStatus(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q, qErr := singleValued(r, "migrationId")
	id := ""
	if qErr == nil {
		id = strings.TrimSpace(q.Get("migrationId"))
	}
	auth, err := s.authenticate(r, statusPolicy)
	if realmhook.ErrorCode(err) == realmhook.EUNAVAILABLE && id != "" {
		// Nothing verified the caller, so nothing of any migration is told:
		// the answer is the same for every caller.
		s.log(r).Warn("migration status: database unavailable; answered in-progress, stale", slog.String("err", err.Error()))
		writeJSON(w, http.StatusOK, staleView(nil, id))
		return
	} else if err == nil {
		err = qErr
	}
	if err != nil {
		s.writeMigrationError(w, r, err)
		return
	}
	var m *realmhook.Migration
	if !auth.Stale {
		s.seen.rememberTenant(auth.Home, auth.Tenant)
		m, err = s.opts.Migrations.Status(r.Context(), auth.Home.Key, auth.Tenant.ClientKey, id)
	}
	if auth.Stale || realmhook.ErrorCode(err) == realmhook.EUNAVAILABLE {
		if err != nil {
			s.log(r).Warn("migration status: database unavailable; answered the last status seen, stale",
				slog.String("tenant", auth.Tenant.ClientKey), slog.String("migration_id", id), slog.String("err", err.Error()))
		}
		last, _ := s.seen.status(auth.Tenant.ClientKey, id)
		writeJSON(w, http.StatusOK, staleView(last, id))
		return
	} else if err != nil {
		s.writeMigrationError(w, r, err)
		return
	}
	s.seen.rememberStatus(m)
	writeJSON(w, http.StatusOK, migrationView(m))
}

type finishFunc func(ctx context.Context, realm, clientKey, id string) (*realmhook.Migration, error)

func (s *Server) migrationCommit(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.finish(w, r, "commit", s.opts.Migrations.Commit)
}

func (s *Server) migrationRollback(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.finish(w, r, "rollback", s.opts.Migrations.Rollback)
}

func (s *Server) finish(w http.ResponseWriter, r *http.Request, hook string, do finishFunc) {
	auth, err := s.authenticate(r, migrationPolicy)
	if err != nil {
		s.writeMigrationError(w, r, err)
		return
	}
	s.seen.rememberTenant(auth.Home, auth.Tenant)
	var body migrationBody
	if err := decodeJSON(r, &body); err != nil {
		s.writeMigrationError(w, r, err)
		return
	}
	id, err := migrationID(body.MigrationID)
	if err != nil {
		s.writeMigrationError(w, r, err)
		return
	}
	m, err := do(r.Context(), auth.Home.Key, auth.Tenant.ClientKey, id)
	if err != nil {
		s.writeMigrationError(w, r, err)
		return
	}
	s.logMigration(r, m, hook)
	writeJSON(w, http.StatusOK, migrationView(m))
}
