package admin

import (
	"cmp"
	"context"
	"encoding/base64"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/realmhook/realmhook"
	adminv1 "github.com/realmhook/realmhook/gen/realmhook/admin/v1"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/realms"
	"github.com/realmhook/realmhook/store"
)

// Page sizes of the listings.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// rpc is the Service as adminv1connect.AdminServiceHandler.
type rpc struct{ s *Service }

func (a *rpc) ListRealms(ctx context.Context, _ *connect.Request[adminv1.ListRealmsRequest]) (*connect.Response[adminv1.ListRealmsResponse], error) {
	s := a.s
	resp := &adminv1.ListRealmsResponse{}
	for _, r := range s.opts.Realms.All() {
		out := &adminv1.Realm{
			Key:               r.Key,
			BaseUrl:           r.BaseURL,
			Served:            r.Served(),
			InternalUrl:       s.opts.InternalURLs[r.Key],
			MisroutedRequests: s.opts.Misdirected(r.Key),
			Health:            healthProto(s.prober.get(ctx, r.Key)),
		}
		if r.Served() {
			counts, err := r.Store.CountTenants(ctx)
			if err != nil {
				// A realm down is reported as unhealthy, not as a failed call.
				s.log.Warn("count tenants", "realm", r.Key, "err", err)
			}
			out.TenantCounts = map[string]int64{}
			for st, n := range counts {
				out.TenantCounts[string(st)] = n
			}
		}
		resp.Realms = append(resp.Realms, out)
	}
	return connect.NewResponse(resp), nil
}

func healthProto(h health) *adminv1.Health {
	out := &adminv1.Health{Healthy: h.Healthy()}
	if !h.ProbedAt.IsZero() {
		out.ProbedAt = timestamppb.New(h.ProbedAt)
	}
	for _, c := range h.Checks {
		out.Checks = append(out.Checks, &adminv1.HealthCheck{Name: c.Name, Ok: c.OK, Detail: c.Detail, Latency: durationpb.New(c.Latency)})
	}
	return out
}

// servedRealm returns a realm this process serves.
func (s *Service) servedRealm(key string) (*realms.Realm, error) {
	r, ok := s.opts.Realms.Get(key)
	switch {
	case key == "":
		return nil, realmhook.Errorf(realmhook.EINVALID, "realm is required")
	case !ok:
		return nil, realmhook.Errorf(realmhook.EINVALID, "realm %q is not configured", key)
	case !r.Served():
		return nil, realmhook.Errorf(realmhook.EINVALID, "realm %s is not served by this process: ask the admin API of the process that serves it", key)
	}
	return r, nil
}

func (a *rpc) ListTenants(ctx context.Context, req *connect.Request[adminv1.ListTenantsRequest]) (*connect.Response[adminv1.ListTenantsResponse], error) {
	m := req.Msg
	r, err := a.s.servedRealm(m.GetRealm())
	if err != nil {
		return nil, err
	}
	state := realmhook.TenantState(m.GetState())
	if state != realmhook.TenantNone && !slices.Contains(realmhook.TenantStates, state) {
		return nil, realmhook.Errorf(realmhook.EINVALID, "state %q is not a tenant state: want one of %v", state, realmhook.TenantStates)
	}
	size, err := pageSize(m.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := base64.RawURLEncoding.DecodeString(m.GetPageToken())
	if err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "page_token is not one this API returned")
	}
	// One more than asked tells whether there is a next page.
	ts, err := r.Store.PageTenants(ctx, state, string(after), size+1)
	if err != nil {
		return nil, wrap(err, "list tenants of realm %s", r.Key)
	}
	resp := &adminv1.ListTenantsResponse{}
	if len(ts) > size {
		ts = ts[:size]
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(ts[size-1].ClientKey))
	}
	for _, t := range ts {
		resp.Tenants = append(resp.Tenants, tenantProto(r.Key, t))
	}
	return connect.NewResponse(resp), nil
}

func pageSize(n int32) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, realmhook.Errorf(realmhook.EINVALID, "page_size must be between 1 and %d, got %d", MaxPageSize, n)
	}
	return int(n), nil
}

// tenantProto is a tenant record as an operator sees it: never its secret.
func tenantProto(realm string, t *realmhook.Tenant) *adminv1.Tenant {
	return &adminv1.Tenant{
		ClientKey:      t.ClientKey,
		Realm:          realm,
		State:          string(t.State),
		Frozen:         t.Frozen(),
		MigrationId:    t.MigrationID,
		MovedTo:        t.MovedTo,
		PurgeAfter:     timestamp(t.PurgeAfter),
		BaseUrl:        t.BaseURL,
		ProductType:    t.ProductType,
		InstallationId: t.InstallationID,
		Enabled:        t.Enabled,
		InstalledAt:    timestamp(t.InstalledAt),
		UpdatedAt:      timestamp(t.UpdatedAt),
	}
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func (a *rpc) GetTenant(ctx context.Context, req *connect.Request[adminv1.GetTenantRequest]) (*connect.Response[adminv1.GetTenantResponse], error) {
	key := req.Msg.GetClientKey()
	if key == "" && req.Msg.GetInstallationId() != "" {
		var err error
		if key, err = a.s.byInstallation(ctx, req.Msg.GetInstallationId()); err != nil {
			return nil, err
		}
	}
	if key == "" {
		return nil, realmhook.Errorf(realmhook.EINVALID, "client_key or installation_id is required")
	}
	resp := &adminv1.GetTenantResponse{}
	for _, r := range a.s.opts.Realms.Served() {
		t, err := r.Store.GetTenant(ctx, key)
		if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, wrap(err, "tenant %q in realm %s", key, r.Key)
		}
		resp.Records = append(resp.Records, tenantProto(r.Key, t))
	}
	ms, err := a.s.migrations(ctx, func(m *realmhook.Migration) bool { return m.ClientKey == key })
	if err != nil {
		return nil, err
	}
	if len(resp.Records) == 0 && len(ms) == 0 {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "no realm served here holds tenant %q", key)
	}
	for _, m := range ms {
		resp.Migrations = append(resp.Migrations, a.s.migrationProto(ctx, m))
	}
	return connect.NewResponse(resp), nil
}

// byInstallation returns the client key of the tenant a Forge installation
// belongs to, looked up in every served realm.
func (s *Service) byInstallation(ctx context.Context, installationID string) (string, error) {
	for _, r := range s.opts.Realms.Served() {
		keys, err := r.Store.FindTenants(ctx, []string{installationID}, "")
		if err != nil {
			return "", wrap(err, "find installation %q in realm %s", installationID, r.Key)
		}
		if len(keys) > 0 {
			return keys[0], nil
		}
	}
	return "", realmhook.Errorf(realmhook.ENOTFOUND, "no realm served here holds installation %q", installationID)
}

// migrations returns the served realms' migrations that keep says to,
// newest first, each once: where both realms of a migration are served,
// the source's record, which is the authoritative one.
func (s *Service) migrations(ctx context.Context, keep func(*realmhook.Migration) bool, states ...realmhook.MigrationState) ([]*realmhook.Migration, error) {
	type id struct{ clientKey, id string }
	seen := map[id]*realmhook.Migration{}
	for _, r := range s.opts.Realms.Served() {
		ms, err := r.Store.ListMigrations(ctx, states...)
		if err != nil {
			return nil, wrap(err, "list migrations of realm %s", r.Key)
		}
		for _, m := range ms {
			if !keep(m) {
				continue
			}
			k := id{m.ClientKey, m.ID}
			if _, dup := seen[k]; dup && r.Key != m.SourceRealm {
				continue
			}
			seen[k] = m
		}
	}
	out := make([]*realmhook.Migration, 0, len(seen))
	for _, m := range seen {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *realmhook.Migration) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ClientKey, b.ClientKey), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func (a *rpc) ListMigrations(ctx context.Context, req *connect.Request[adminv1.ListMigrationsRequest]) (*connect.Response[adminv1.ListMigrationsResponse], error) {
	m := req.Msg
	var states []realmhook.MigrationState
	for _, st := range m.GetStates() {
		ms := realmhook.MigrationState(st)
		if !slices.Contains(migration.States(), ms) {
			return nil, realmhook.Errorf(realmhook.EINVALID, "state %q is not a migration state: want one of %v", st, migration.States())
		}
		states = append(states, ms)
	}
	limit, err := pageSize(m.GetLimit())
	if err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "limit must be between 1 and %d, got %d", MaxPageSize, m.GetLimit())
	}
	ms, err := a.s.migrations(ctx, func(x *realmhook.Migration) bool {
		return (m.GetRealm() == "" || x.SourceRealm == m.GetRealm() || x.TargetRealm == m.GetRealm()) &&
			(m.GetClientKey() == "" || x.ClientKey == m.GetClientKey())
	}, states...)
	if err != nil {
		return nil, err
	}
	resp := &adminv1.ListMigrationsResponse{}
	for _, x := range ms[:min(len(ms), limit)] {
		resp.Migrations = append(resp.Migrations, a.s.migrationProto(ctx, x))
	}
	return connect.NewResponse(resp), nil
}

func (a *rpc) GetMigration(ctx context.Context, req *connect.Request[adminv1.GetMigrationRequest]) (*connect.Response[adminv1.GetMigrationResponse], error) {
	id, key := req.Msg.GetId(), req.Msg.GetClientKey()
	if err := migration.CheckID(id); err != nil {
		return nil, err
	}
	ms, err := a.s.migrations(ctx, func(m *realmhook.Migration) bool {
		return m.ID == id && (key == "" || m.ClientKey == key)
	})
	if err != nil {
		return nil, err
	}
	switch len(ms) {
	case 0:
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "no migration %q in the realms served here", id)
	case 1:
	default:
		return nil, realmhook.Errorf(realmhook.EINVALID, "%d tenants have a migration %q: give the client key too", len(ms), id)
	}
	m := ms[0]
	events, err := a.s.events(ctx, m)
	if err != nil {
		return nil, err
	}
	resp := &adminv1.GetMigrationResponse{Migration: a.s.migrationProtoWith(m, events)}
	for _, e := range events {
		resp.Events = append(resp.Events, &adminv1.MigrationEvent{At: timestamp(e.At), From: string(e.From), To: string(e.To), Detail: e.Detail})
	}
	return connect.NewResponse(resp), nil
}

// events returns m's history from the realm whose store keeps it: the
// source's when it is served, else the target's copy.
func (s *Service) events(ctx context.Context, m *realmhook.Migration) ([]realmhook.MigrationEvent, error) {
	var st store.Store
	for _, k := range []string{m.SourceRealm, m.TargetRealm} {
		if r, ok := s.opts.Realms.Get(k); ok && r.Served() {
			st = r.Store
			break
		}
	}
	if st == nil {
		return nil, nil
	}
	ev, err := st.ListMigrationEvents(ctx, m.ClientKey, m.ID)
	if err != nil {
		return nil, wrap(err, "events of migration %s", m.ID)
	}
	return ev, nil
}

// migrationProto is m with its progress; a copy under way reads its
// events for when the copy began.
func (s *Service) migrationProto(ctx context.Context, m *realmhook.Migration) *adminv1.Migration {
	var events []realmhook.MigrationEvent
	if m.State == realmhook.MigrationCopying || m.State == realmhook.MigrationVerifying {
		var err error
		if events, err = s.events(ctx, m); err != nil {
			s.log.Warn("migration events", "tenant", m.ClientKey, "migration_id", m.ID, "err", err)
		}
	}
	return s.migrationProtoWith(m, events)
}

func (s *Service) migrationProtoWith(m *realmhook.Migration, events []realmhook.MigrationEvent) *adminv1.Migration {
	p := progressOf(m, events)
	pp := &adminv1.Progress{
		TablesDone:    int32(m.Progress.TablesDone),
		TablesTotal:   int32(m.Progress.TablesTotal),
		RowsCopied:    m.Progress.RowsCopied,
		RowsTotal:     m.Progress.RowsTotal,
		Percent:       m.Progress.Percent(),
		CopyStartedAt: timestamp(p.CopyStartedAt),
		RowsPerSecond: p.RowsPerSecond,
		Eta:           timestamp(p.ETA),
		FitsWindow:    p.FitsWindow,
	}
	return &adminv1.Migration{
		Id:                m.ID,
		ClientKey:         m.ClientKey,
		SourceRealm:       m.SourceRealm,
		TargetRealm:       m.TargetRealm,
		State:             string(m.State),
		StartTime:         timestamp(m.StartTime),
		EndTime:           timestamp(m.EndTime),
		ErrorResponseCode: m.ErrorResponseCode,
		Message:           m.Message,
		Progress:          pp,
		CreatedAt:         timestamp(m.CreatedAt),
		UpdatedAt:         timestamp(m.UpdatedAt),
	}
}

func (a *rpc) PurgeTenant(ctx context.Context, req *connect.Request[adminv1.PurgeTenantRequest]) (*connect.Response[adminv1.PurgeTenantResponse], error) {
	r, err := a.s.servedRealm(req.Msg.GetRealm())
	if err != nil {
		return nil, err
	}
	if req.Msg.GetClientKey() == "" {
		return nil, realmhook.Errorf(realmhook.EINVALID, "client_key is required")
	}
	purged, err := a.s.opts.Migrations.PurgeNow(ctx, r.Key, req.Msg.GetClientKey())
	if err != nil {
		return nil, err
	}
	a.s.log.Info("admin purge", "realm", r.Key, "tenant", req.Msg.GetClientKey(), "purged", purged)
	return connect.NewResponse(&adminv1.PurgeTenantResponse{Purged: purged}), nil
}
