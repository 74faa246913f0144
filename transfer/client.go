package transfer

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/cenkalti/backoff/v4"

	"github.com/realmhook/realmhook"
	peerv1 "github.com/realmhook/realmhook/gen/realmhook/peer/v1"
	"github.com/realmhook/realmhook/gen/realmhook/peer/v1/peerv1connect"
	"github.com/realmhook/realmhook/internalauth"
	"github.com/realmhook/realmhook/migration"
	"github.com/realmhook/realmhook/store"
)

// DefaultRetryFor bounds how long a call the target did not answer is
// retried, with backoff, before the copy gives up until the engine's next
// poll, which resumes it from the last checkpoint.
const DefaultRetryFor = 20 * time.Second

// Client is the migration.Peer of a realm another process serves, reached
// at that realm's internalUrl.
type Client struct {
	realm string
	rpc   peerv1connect.TransferServiceClient
	// RetryFor bounds the retries of one call (DefaultRetryFor if zero).
	RetryFor time.Duration
}

var _ migration.Peer = (*Client)(nil)

// NewClient returns the Peer of realm, whose internal API is at baseURL,
// calling it over hc with tokens from signer.
func NewClient(realm, baseURL string, hc *http.Client, signer internalauth.Signer) *Client {
	return &Client{
		realm: realm,
		rpc: peerv1connect.NewTransferServiceClient(hc, baseURL,
			connect.WithInterceptors(signer.ClientInterceptor(realm)),
			connect.WithReadMaxBytes(MaxMessageBytes), connect.WithSendMaxBytes(MaxMessageBytes)),
	}
}

// retry calls fn until it succeeds, fails for good, or a call the target
// did not answer has been retried for RetryFor; every method but WriteRows
// is idempotent on the target, so a call that may have landed is safe to
// make again.
func (c *Client) retry(ctx context.Context, fn func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	b.MaxElapsedTime = c.RetryFor
	if b.MaxElapsedTime == 0 {
		b.MaxElapsedTime = DefaultRetryFor
	}
	return backoff.Retry(func() error {
		err := fromConnect(c.realm, fn())
		if err != nil && !transient(err) {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(b, ctx))
}

// write names a write of migrationID, with the job's fencing token.
func write(ctx context.Context, clientKey, migrationID string) *peerv1.Write {
	return &peerv1.Write{ClientKey: clientKey, MigrationId: migrationID, Fence: migration.Fence(ctx)}
}

func (c *Client) PrepareIncoming(ctx context.Context, t *realmhook.Tenant, migrationID string) error {
	req := &peerv1.PrepareIncomingRequest{Write: write(ctx, t.ClientKey, migrationID), Tenant: tenantToWire(t)}
	return c.retry(ctx, func() error {
		_, err := c.rpc.PrepareIncoming(ctx, connect.NewRequest(req))
		return err
	})
}

func (c *Client) ClearRows(ctx context.Context, clientKey, migrationID string, t store.Table) (int64, error) {
	return c.TrimRows(ctx, clientKey, migrationID, t, nil)
}

func (c *Client) TrimRows(ctx context.Context, clientKey, migrationID string, t store.Table, after store.Row) (int64, error) {
	key, err := encodeKey(after)
	if err != nil {
		return 0, fmt.Errorf("trim %s: %w", t.Name, err)
	}
	req := &peerv1.TrimRowsRequest{Write: write(ctx, clientKey, migrationID), Table: tableToWire(t), After: key}
	var n int64
	err = c.retry(ctx, func() error {
		resp, err := c.rpc.TrimRows(ctx, connect.NewRequest(req))
		if err == nil {
			n = resp.Msg.Deleted
		}
		return err
	})
	return n, err
}

// CopyRows streams the rows next hands out, a message per batch, and
// commits them with the stream's last message. It is not retried: next's
// rows are gone once sent. A stream that fails leaves nothing written on
// the target, and the engine resumes from the last checkpoint.
//
// Each batch is encoded here, before next is called again (the caller may
// then reuse it), and sent by a goroutine of its own, so that reading the
// source and the network overlap.
func (c *Client) CopyRows(ctx context.Context, clientKey, migrationID string, t store.Table, columns []string, next func() ([]store.Row, error)) (int64, error) {
	// Cancelling the stream is what tells the target not to commit when
	// next fails.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := c.rpc.WriteRows(ctx)
	out := make(chan *peerv1.WriteRowsRequest, 1)
	sent := make(chan error, 1)
	go func() {
		var err error
		for msg := range out {
			if err == nil {
				err = stream.Send(msg)
			}
		}
		sent <- err
	}()
	out <- &peerv1.WriteRowsRequest{Header: &peerv1.WriteRowsHeader{
		Write: write(ctx, clientKey, migrationID), Table: tableToWire(t), Columns: columns,
	}}
	abort := func(err error) (int64, error) {
		cancel()
		close(out)
		<-sent
		_, _ = stream.CloseAndReceive()
		return 0, err
	}
	for {
		rows, err := next()
		if err != nil {
			return abort(err)
		}
		var buf []byte
		for _, r := range rows {
			if buf, err = migration.AppendRow(buf, r); err != nil {
				return abort(realmhook.Errorf(realmhook.EINVALID, "write %s: %v", t.Name, err))
			}
		}
		msg := &peerv1.WriteRowsRequest{Rows: buf, RowCount: int64(len(rows)), Commit: len(rows) == 0}
		out <- msg
		if msg.Commit {
			break
		}
	}
	close(out)
	err := <-sent
	// A failed Send tells no more than io.EOF; the response has the error.
	resp, rerr := stream.CloseAndReceive()
	if rerr != nil {
		return 0, fmt.Errorf("write %s: %w", t.Name, fromConnect(c.realm, rerr))
	}
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", t.Name, fromConnect(c.realm, err))
	}
	return resp.Msg.Written, nil
}

func (c *Client) Incoming(ctx context.Context, t store.Table, columns []string, from store.Source) (func(store.Row) error, error) {
	req := &peerv1.IncomingRequest{Table: tableToWire(t), Columns: columns, SourceBackend: from.Backend, SourceTypes: from.Types}
	var backend string
	err := c.retry(ctx, func() error {
		resp, err := c.rpc.Incoming(ctx, connect.NewRequest(req))
		if err == nil {
			backend = resp.Msg.TargetBackend
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	if backend != from.Backend {
		// The conversion between backends is the target store's code
		// over its catalog; across processes it does not travel yet.
		return nil, realmhook.Errorf(realmhook.EINVALID,
			"table %s: realm %s keeps its data in %s and this realm in %s: a migration between processes needs the same backend on both sides",
			t.Name, c.realm, backend, from.Backend)
	}
	return func(store.Row) error { return nil }, nil
}

func (c *Client) AdvanceSequences(ctx context.Context, clientKey, migrationID string, t store.Table) error {
	req := &peerv1.AdvanceSequencesRequest{Write: write(ctx, clientKey, migrationID), Table: tableToWire(t)}
	return c.retry(ctx, func() error {
		_, err := c.rpc.AdvanceSequences(ctx, connect.NewRequest(req))
		return err
	})
}

func (c *Client) Checksum(ctx context.Context, clientKey string, t store.Table, columns []string) (migration.Checksum, error) {
	req := &peerv1.ChecksumRequest{ClientKey: clientKey, Table: tableToWire(t), Columns: columns}
	var sum migration.Checksum
	err := c.retry(ctx, func() error {
		resp, err := c.rpc.Checksum(ctx, connect.NewRequest(req))
		if err != nil {
			return err
		}
		sum, err = checksumFromWire(resp.Msg.Checksum)
		return err
	})
	return sum, err
}

func (c *Client) Activate(ctx context.Context, t *realmhook.Tenant, m *realmhook.Migration) error {
	req := &peerv1.ActivateRequest{Write: write(ctx, t.ClientKey, m.ID), Tenant: tenantToWire(t), Migration: migrationToWire(m)}
	return c.retry(ctx, func() error {
		_, err := c.rpc.Activate(ctx, connect.NewRequest(req))
		return err
	})
}

func (c *Client) CheckTables(ctx context.Context, tables []store.Table) error {
	req := &peerv1.CheckTablesRequest{Tables: tablesToWire(tables)}
	return c.retry(ctx, func() error {
		_, err := c.rpc.CheckTables(ctx, connect.NewRequest(req))
		return err
	})
}

func (c *Client) Discard(ctx context.Context, m *realmhook.Migration, tables []store.Table) error {
	req := &peerv1.DiscardRequest{Write: write(ctx, m.ClientKey, m.ID), Migration: migrationToWire(m), Tables: tablesToWire(tables)}
	return c.retry(ctx, func() error {
		_, err := c.rpc.Discard(ctx, connect.NewRequest(req))
		return err
	})
}
