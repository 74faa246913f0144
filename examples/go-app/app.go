package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"

	"github.com/realmhook/realmhook/server"
)

// notesDDL is the app's own tenant table. It is declared in realmhook's
// config (tables: notes, tenantColumn tenant, key [id]) so that a migration
// copies it; the SQL reads the same on SQLite and PostgreSQL.
const notesDDL = `CREATE TABLE IF NOT EXISTS notes (
	tenant TEXT NOT NULL,
	id     TEXT NOT NULL,
	body   TEXT NOT NULL,
	PRIMARY KEY (tenant, id)
)`

// maxNoteBytes bounds a note's body.
const maxNoteBytes = 16 << 10

// newHandler creates the notes table in every realm rh serves and returns
// one handler for realmhook's routes and the app's: a page at
// {realm}/notes-page and a REST resource at {realm}/notes/{id}.
func newHandler(ctx context.Context, rh *server.Server) (http.Handler, error) {
	for _, realm := range rh.Realms().Served() {
		db, err := realm.SQLDB()
		if err != nil {
			return nil, err
		}
		if _, err := db.ExecContext(ctx, notesDDL); err != nil {
			return nil, fmt.Errorf("create notes in realm %s: %w", realm.Key, err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", rh.Handler())
	// The page is loaded by the product with a token for this very URL; the
	// REST route is also called by the page's script with a frontend token.
	rh.Mount(mux, "/notes-page", server.Route{}, http.HandlerFunc(notesPage))
	rh.Mount(mux, "/notes/", server.Route{FrontendTokens: true}, http.HandlerFunc(notesAPI))
	return mux, nil
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><title>Notes</title></head>
<body><h1>Notes of {{.Tenant}}</h1><p>Kept in realm {{.Realm}}.</p>
<ul>{{range .IDs}}<li>{{.}}</li>{{end}}</ul></body></html>
`))

func notesPage(w http.ResponseWriter, r *http.Request) {
	c, _ := server.CallerFrom(r.Context())
	ids, err := noteIDs(r.Context(), c.DB, c.Tenant.ClientKey)
	if err != nil {
		http.Error(w, "cannot read notes", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.Execute(w, map[string]any{"Tenant": c.Tenant.ClientKey, "Realm": c.Realm.Key, "IDs": ids})
}

type note struct {
	ID   string `json:"id"`
	Body string `json:"body"`
}

// notesAPI answers GET and PUT {realm}/notes/{id}. The path it sees is
// relative to the realm's base URL.
func notesAPI(w http.ResponseWriter, r *http.Request) {
	c, _ := server.CallerFrom(r.Context())
	id := strings.TrimPrefix(r.URL.Path, "/notes/")
	if id == "" || strings.Contains(id, "/") || len(id) > 128 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid", "message": "the note id is 1 to 128 characters without '/'"})
		return
	}
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet:
		var n note
		err := c.DB.QueryRowContext(ctx, `SELECT id, body FROM notes WHERE tenant = $1 AND id = $2`, c.Tenant.ClientKey, id).Scan(&n.ID, &n.Body)
		if errors.Is(err, sql.ErrNoRows) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "no note " + id})
			return
		} else if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable", "message": "cannot read the note"})
			return
		}
		writeJSON(w, http.StatusOK, n)
	case http.MethodPut:
		var in struct {
			Body *string `json:"body"`
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxNoteBytes+1))
		if err != nil || len(b) > maxNoteBytes || json.Unmarshal(b, &in) != nil || in.Body == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid", "message": `want {"body": "<text>"} of at most 16 KiB`})
			return
		}
		_, err = c.DB.ExecContext(ctx, `INSERT INTO notes (tenant, id, body) VALUES ($1, $2, $3)
			ON CONFLICT (tenant, id) DO UPDATE SET body = excluded.body`, c.Tenant.ClientKey, id, *in.Body)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable", "message": "cannot write the note"})
			return
		}
		writeJSON(w, http.StatusOK, note{ID: id, Body: *in.Body})
	default:
		w.Header().Set("Allow", "GET, PUT")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "message": r.Method + " is not allowed"})
	}
}

func noteIDs(ctx context.Context, db *sql.DB, tenant string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT id FROM notes WHERE tenant = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
