package admin

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/realmhook/realmhook"
	adminv1 "github.com/realmhook/realmhook/gen/realmhook/admin/v1"
	"github.com/realmhook/realmhook/migration"
)

func (a *rpc) StartRehearsal(ctx context.Context, req *connect.Request[adminv1.StartRehearsalRequest]) (*connect.Response[adminv1.StartRehearsalResponse], error) {
	m := req.Msg
	if m.GetClientKey() == "" || m.GetTargetRealm() == "" {
		return nil, realmhook.Errorf(realmhook.EINVALID, "client_key and target_realm are required")
	}
	if w := m.GetWindow(); w != nil && (w.CheckValid() != nil || w.AsDuration() <= 0) {
		return nil, realmhook.Errorf(realmhook.EINVALID, "window must be a positive duration")
	}
	// The source is where the tenant is active among the served realms.
	source := ""
	for _, r := range a.s.opts.Realms.Served() {
		t, err := r.Store.GetTenant(ctx, m.GetClientKey())
		if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, wrap(err, "tenant %q in realm %s", m.GetClientKey(), r.Key)
		}
		if t.State == realmhook.TenantActive {
			source = r.Key
			break
		}
	}
	if source == "" {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "tenant %q is active in no realm served here", m.GetClientKey())
	}
	r, err := a.s.opts.Migrations.Rehearse(ctx, migration.RehearsalRequest{
		Realm: source, ClientKey: m.GetClientKey(), Target: m.GetTargetRealm(), Window: m.GetWindow().AsDuration()})
	if err != nil {
		return nil, err
	}
	a.s.log.Info("admin rehearsal", "tenant", r.ClientKey, "rehearsal_id", r.ID, "source", r.SourceRealm, "target", r.TargetRealm)
	return connect.NewResponse(&adminv1.StartRehearsalResponse{Rehearsal: a.s.rehearsalProto(r)}), nil
}

func (a *rpc) GetRehearsal(_ context.Context, req *connect.Request[adminv1.GetRehearsalRequest]) (*connect.Response[adminv1.GetRehearsalResponse], error) {
	r, ok := a.s.opts.Migrations.GetRehearsal(req.Msg.GetId())
	if !ok {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "no rehearsal %q in this process", req.Msg.GetId())
	}
	return connect.NewResponse(&adminv1.GetRehearsalResponse{Rehearsal: a.s.rehearsalProto(r)}), nil
}

func (a *rpc) ListRehearsals(context.Context, *connect.Request[adminv1.ListRehearsalsRequest]) (*connect.Response[adminv1.ListRehearsalsResponse], error) {
	resp := &adminv1.ListRehearsalsResponse{}
	for _, r := range a.s.opts.Migrations.Rehearsals() {
		resp.Rehearsals = append(resp.Rehearsals, a.s.rehearsalProto(r))
	}
	return connect.NewResponse(resp), nil
}

func (s *Service) rehearsalProto(r *migration.Rehearsal) *adminv1.Rehearsal {
	return &adminv1.Rehearsal{
		Id:          r.ID,
		ClientKey:   r.ClientKey,
		SourceRealm: r.SourceRealm,
		TargetRealm: r.TargetRealm,
		State:       string(r.State),
		Window:      durationpb.New(r.Window),
		Progress: &adminv1.Progress{
			TablesDone:  int32(r.Progress.TablesDone),
			TablesTotal: int32(r.Progress.TablesTotal),
			RowsCopied:  r.Progress.RowsCopied,
			RowsTotal:   r.Progress.RowsTotal,
			Percent:     r.Progress.Percent(),
		},
		StartedAt:  timestamp(r.StartedAt),
		EndedAt:    timestamp(r.EndedAt),
		Duration:   durationpb.New(r.Duration(s.now())),
		Verified:   r.Verified,
		Detail:     r.Detail,
		FitsWindow: r.FitsWindow(),
	}
}
