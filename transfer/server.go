// Package transfer is the realm-to-realm transfer API of the regional shape:
// a connect-go server that serves migration.Peer for the realms this process
// holds, and a client that is the migration.Peer of a realm another process
// holds, so the migration engine copies into it as into a realm of its own.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"connectrpc.com/connect"

	"github.com/realmhook/realmhook"
	peerv1 "github.com/realmhook/realmhook/gen/realmhook/peer/v1"
	"github.com/realmhook/realmhook/gen/realmhook/peer/v1/peerv1connect"
	"github.com/realmhook/realmhook/internalauth"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/store"
)

// MaxMessageBytes bounds one message either way: a batch of rows is well
// under it, and a peer cannot make this process hold more.
const MaxMessageBytes = 64 << 20

// Server answers the transfer API for the realms this process serves, each
// through its in-process migration.Peer, after fencing every write.
type Server struct {
	stores map[string]store.Store
	peers  map[string]migration.Peer
	fence  fences
}

// NewServer serves the given realms (their stores by realm key), each
// through migration.LocalPeerWith(store, opts), as the engine of the
// process that serves them would write into them.
func NewServer(stores map[string]store.Store, opts migration.PeerOptions) *Server {
	peers := make(map[string]migration.Peer, len(stores))
	for k, st := range stores {
		peers[k] = migration.LocalPeerWith(st, opts)
	}
	return &Server{stores: stores, peers: peers}
}

// Handler returns the service's path and handler; auth checks every call
// (see internalauth) and names the called realm.
func (s *Server) Handler(auth *internalauth.Verifier, opts ...connect.HandlerOption) (string, http.Handler) {
	opts = append([]connect.HandlerOption{
		connect.WithInterceptors(auth.Interceptor()),
		connect.WithReadMaxBytes(MaxMessageBytes),
		connect.WithSendMaxBytes(MaxMessageBytes),
	}, opts...)
	return peerv1connect.NewTransferServiceHandler(handler{s}, opts...)
}

// handler implements the generated service on Server.
type handler struct{ s *Server }

var _ peerv1connect.TransferServiceHandler = handler{}

// peer is the called realm's Peer.
func (s *Server) peer(ctx context.Context) (migration.Peer, error) {
	realm, _ := internalauth.CalledRealm(ctx)
	p, ok := s.peers[realm]
	if !ok {
		return nil, realmhook.Errorf(realmhook.ENOTFOUND, "realm %q is not served here", realm)
	}
	return p, nil
}

// write runs fn, one write of a migration, under the migration's fence.
func (s *Server) write(ctx context.Context, w *peerv1.Write, fn func(migration.Peer) error) error {
	p, err := s.peer(ctx)
	if err != nil {
		return toConnect(err)
	}
	if w == nil {
		return toConnect(realmhook.Errorf(realmhook.EINVALID, "a write must name its migration"))
	}
	realm, _ := internalauth.CalledRealm(ctx)
	return toConnect(s.fence.do(realm, w.ClientKey, w.MigrationId, w.Fence, func() error { return fn(p) }))
}

func (h handler) PrepareIncoming(ctx context.Context, req *connect.Request[peerv1.PrepareIncomingRequest]) (*connect.Response[peerv1.PrepareIncomingResponse], error) {
	err := h.s.write(ctx, req.Msg.Write, func(p migration.Peer) error {
		return p.PrepareIncoming(ctx, tenantFromWire(req.Msg.Tenant), req.Msg.Write.MigrationId)
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&peerv1.PrepareIncomingResponse{}), nil
}

func (h handler) TrimRows(ctx context.Context, req *connect.Request[peerv1.TrimRowsRequest]) (*connect.Response[peerv1.TrimRowsResponse], error) {
	var n int64
	err := h.s.write(ctx, req.Msg.Write, func(p migration.Peer) error {
		after, err := decodeKey(req.Msg.After)
		if err != nil {
			return err
		}
		n, err = p.TrimRows(ctx, req.Msg.Write.ClientKey, req.Msg.Write.MigrationId, tableFromWire(req.Msg.Table), after)
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&peerv1.TrimRowsResponse{Deleted: n}), nil
}

// errNoCommit: the stream ended without its commit message.
var errNoCommit = realmhook.Errorf(realmhook.EUNAVAILABLE, "write: the stream ended before the source committed it; nothing was written")

func (h handler) WriteRows(ctx context.Context, stream *connect.ClientStream[peerv1.WriteRowsRequest]) (*connect.Response[peerv1.WriteRowsResponse], error) {
	if !stream.Receive() {
		if err := stream.Err(); err != nil {
			return nil, toConnect(realmhook.Unavailable(err))
		}
		return nil, toConnect(realmhook.Errorf(realmhook.EINVALID, "write: empty stream"))
	}
	first := stream.Msg()
	hdr := first.Header
	if hdr == nil || hdr.Write == nil {
		return nil, toConnect(realmhook.Errorf(realmhook.EINVALID, "write: the first message must be the header"))
	}
	var written int64
	err := h.s.write(ctx, hdr.Write, func(p migration.Peer) error {
		rd := newRowReader(stream, first)
		defer rd.close()
		var err error
		written, err = p.CopyRows(ctx, hdr.Write.ClientKey, hdr.Write.MigrationId, tableFromWire(hdr.Table), hdr.Columns, rd.next)
		return err
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&peerv1.WriteRowsResponse{Written: written}), nil
}

// rowReader is the CopyRows callback of one WriteRows stream. A goroutine
// receives and decodes the next messages while the database writes the
// current batch, so the network, the decoding and the write overlap instead
// of taking turns; readAhead bounds memory to a few batches whatever the
// interval's size.
type rowReader struct {
	batches   <-chan decoded
	stop      chan struct{}
	committed bool
}

// readAhead is how many decoded batches wait for the write.
const readAhead = 2

type decoded struct {
	rows   []store.Row
	commit bool
	err    error
}

func newRowReader(stream *connect.ClientStream[peerv1.WriteRowsRequest], first *peerv1.WriteRowsRequest) *rowReader {
	out := make(chan decoded, readAhead)
	r := &rowReader{batches: out, stop: make(chan struct{})}
	go func() {
		defer close(out)
		msg := first
		for {
			if msg == nil {
				if !stream.Receive() {
					var err error = errNoCommit
					if serr := stream.Err(); serr != nil && !errors.Is(serr, io.EOF) {
						err = realmhook.Unavailable(fmt.Errorf("write: %w", serr))
					}
					r.send(out, decoded{err: err})
					return
				}
				msg = stream.Msg()
			}
			rows, err := decodeRows(msg.Rows, msg.RowCount)
			if !r.send(out, decoded{rows: rows, commit: msg.Commit, err: err}) || err != nil || msg.Commit {
				return
			}
			msg = nil
		}
	}()
	return r
}

// send hands d to next unless the write is over.
func (r *rowReader) send(out chan<- decoded, d decoded) bool {
	select {
	case out <- d:
		return true
	case <-r.stop:
		return false
	}
}

// close ends the read-ahead.
func (r *rowReader) close() { close(r.stop) }

func (r *rowReader) next() ([]store.Row, error) {
	for !r.committed {
		d, ok := <-r.batches
		if !ok {
			return nil, errNoCommit
		}
		if d.err != nil {
			return nil, d.err
		}
		r.committed = d.commit
		if len(d.rows) > 0 {
			return d.rows, nil
		}
	}
	return nil, nil
}

// decodeRows decodes a batch of n rows.
func decodeRows(b []byte, n int64) ([]store.Row, error) {
	if n < 0 || n > int64(len(b)) {
		return nil, realmhook.Errorf(realmhook.EINVALID, "write: %d rows in %d bytes", n, len(b))
	}
	rows, err := migration.DecodeRows(b)
	if err != nil {
		return nil, realmhook.Errorf(realmhook.EINVALID, "write: %v", err)
	}
	if int64(len(rows)) != n {
		return nil, realmhook.Errorf(realmhook.EINVALID, "write: %d rows where the message says %d", len(rows), n)
	}
	return rows, nil
}

func (h handler) Incoming(ctx context.Context, req *connect.Request[peerv1.IncomingRequest]) (*connect.Response[peerv1.IncomingResponse], error) {
	p, err := h.s.peer(ctx)
	if err != nil {
		return nil, toConnect(err)
	}
	from := store.Source{Backend: req.Msg.SourceBackend, Types: req.Msg.SourceTypes}
	// Asked for its refusals: a column whose values can never cross.
	if _, err := p.Incoming(ctx, tableFromWire(req.Msg.Table), req.Msg.Columns, from); err != nil {
		return nil, toConnect(err)
	}
	realm, _ := internalauth.CalledRealm(ctx)
	return connect.NewResponse(&peerv1.IncomingResponse{TargetBackend: h.s.stores[realm].Backend()}), nil
}

func (h handler) AdvanceSequences(ctx context.Context, req *connect.Request[peerv1.AdvanceSequencesRequest]) (*connect.Response[peerv1.AdvanceSequencesResponse], error) {
	err := h.s.write(ctx, req.Msg.Write, func(p migration.Peer) error {
		return p.AdvanceSequences(ctx, req.Msg.Write.ClientKey, req.Msg.Write.MigrationId, tableFromWire(req.Msg.Table))
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&peerv1.AdvanceSequencesResponse{}), nil
}

func (h handler) Checksum(ctx context.Context, req *connect.Request[peerv1.ChecksumRequest]) (*connect.Response[peerv1.ChecksumResponse], error) {
	p, err := h.s.peer(ctx)
	if err != nil {
		return nil, toConnect(err)
	}
	c, err := p.Checksum(ctx, req.Msg.ClientKey, tableFromWire(req.Msg.Table), req.Msg.Columns)
	if err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&peerv1.ChecksumResponse{Checksum: checksumToWire(c)}), nil
}

func (h handler) Activate(ctx context.Context, req *connect.Request[peerv1.ActivateRequest]) (*connect.Response[peerv1.ActivateResponse], error) {
	err := h.s.write(ctx, req.Msg.Write, func(p migration.Peer) error {
		return p.Activate(ctx, tenantFromWire(req.Msg.Tenant), migrationFromWire(req.Msg.Migration))
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&peerv1.ActivateResponse{}), nil
}

func (h handler) CheckTables(ctx context.Context, req *connect.Request[peerv1.CheckTablesRequest]) (*connect.Response[peerv1.CheckTablesResponse], error) {
	p, err := h.s.peer(ctx)
	if err != nil {
		return nil, toConnect(err)
	}
	if err := p.CheckTables(ctx, tablesFromWire(req.Msg.Tables)); err != nil {
		return nil, toConnect(err)
	}
	return connect.NewResponse(&peerv1.CheckTablesResponse{}), nil
}

func (h handler) Discard(ctx context.Context, req *connect.Request[peerv1.DiscardRequest]) (*connect.Response[peerv1.DiscardResponse], error) {
	err := h.s.write(ctx, req.Msg.Write, func(p migration.Peer) error {
		return p.Discard(ctx, migrationFromWire(req.Msg.Migration), tablesFromWire(req.Msg.Tables))
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&peerv1.DiscardResponse{}), nil
}

// fences is the target's side of fencing: per migration, the highest token
// seen, and a lock that makes each write's check and the write itself one
// step, so a write with a stale token cannot slip in beside a newer one.
type fences struct {
	mu   sync.Mutex
	byID map[fenceID]*fence
}

type fenceID struct{ realm, clientKey, migrationID string }

type fence struct {
	mu      sync.Mutex
	highest int64
}

// do runs write if token is at least the highest seen for the migration,
// and makes token the highest.
func (f *fences) do(realm, clientKey, migrationID string, token int64, write func() error) error {
	if token <= 0 {
		return realmhook.Errorf(realmhook.EINVALID, "write to migration %q carries no fencing token", migrationID)
	}
	f.mu.Lock()
	if f.byID == nil {
		f.byID = map[fenceID]*fence{}
	}
	id := fenceID{realm, clientKey, migrationID}
	fc := f.byID[id]
	if fc == nil {
		fc = &fence{}
		f.byID[id] = fc
	}
	f.mu.Unlock()

	fc.mu.Lock()
	defer fc.mu.Unlock()
	if token < fc.highest {
		return fmt.Errorf("migration %q: token %d, lower than %d: %w", migrationID, token, fc.highest, migration.ErrFenced)
	}
	fc.highest = token
	return write()
}
