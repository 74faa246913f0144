package secrets

import (
	"context"
	"fmt"

	"github.com/realmhook/realmhook"
	"github.com/realmhook/realmhook/store"
)

// Store wraps a realm's store so that every tenant record is written with
// its shared secret sealed by ring and read with it opened: nothing above
// the store ever sees a sealed secret, and nothing below it a plain one
// (rows written before keys were configured excepted, until Reseal). A
// migration reads the secret through the source's Store and writes it
// through the target's, so a target with other keys seals it with its own:
// the in-process peer and a transfer API alike carry it open only between
// the two.
func Store(inner store.Store, ring *Keyring) *SealedStore {
	return &SealedStore{Store: inner, ring: ring}
}

// SealedStore is a store.Store that seals tenants' shared secrets.
type SealedStore struct {
	store.Store
	ring *Keyring
}

// Unwrap returns the store underneath (for tests and tools that need the
// backend itself).
func (s *SealedStore) Unwrap() store.Store { return s.Store }

func (s *SealedStore) open(t *realmhook.Tenant) error {
	plain, err := s.ring.Open(t.ClientKey, t.SharedSecret)
	if err != nil {
		return err
	}
	t.SharedSecret = plain
	return nil
}

func (s *SealedStore) sealed(t *realmhook.Tenant) (*realmhook.Tenant, error) {
	c := *t
	var err error
	if c.SharedSecret, err = s.ring.Seal(t.ClientKey, t.SharedSecret); err != nil {
		return nil, err
	}
	return &c, nil
}

// GetTenant returns the tenant with its secret opened.
func (s *SealedStore) GetTenant(ctx context.Context, clientKey string) (*realmhook.Tenant, error) {
	t, err := s.Store.GetTenant(ctx, clientKey)
	if err != nil {
		return nil, err
	}
	if err := s.open(t); err != nil {
		return nil, err
	}
	return t, nil
}

// PutTenant stores the tenant with its secret sealed.
func (s *SealedStore) PutTenant(ctx context.Context, t *realmhook.Tenant, events ...realmhook.Event) error {
	c, err := s.sealed(t)
	if err != nil {
		return err
	}
	return s.Store.PutTenant(ctx, c, events...)
}

// UpdateTenant lets change see and edit the opened secret; what it leaves is
// sealed (with the first key) in the same transaction.
func (s *SealedStore) UpdateTenant(ctx context.Context, clientKey string, change func(*realmhook.Tenant) error, events ...realmhook.Event) (*realmhook.Tenant, error) {
	t, err := s.Store.UpdateTenant(ctx, clientKey, func(t *realmhook.Tenant) error {
		if err := s.open(t); err != nil {
			return err
		}
		if err := change(t); err != nil {
			return err
		}
		sealed, err := s.ring.Seal(t.ClientKey, t.SharedSecret)
		if err != nil {
			return err
		}
		t.SharedSecret = sealed
		return nil
	}, events...)
	if err != nil {
		return nil, err
	}
	if err := s.open(t); err != nil {
		return nil, err
	}
	return t, nil
}

// ListTenants returns the tenants with their secrets opened.
func (s *SealedStore) ListTenants(ctx context.Context, state realmhook.TenantState) ([]*realmhook.Tenant, error) {
	ts, err := s.Store.ListTenants(ctx, state)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if err := s.open(t); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

// PageTenants returns a page of tenants with their secrets opened.
func (s *SealedStore) PageTenants(ctx context.Context, state realmhook.TenantState, after string, limit int) ([]*realmhook.Tenant, error) {
	ts, err := s.Store.PageTenants(ctx, state, after, limit)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if err := s.open(t); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

// Reseal seals with the ring's first key every secret that is plaintext or
// sealed with an older key, and reports how many it rewrote. It runs in the
// background after start-up; each row is rewritten in its own transaction,
// so it may stop and start again at any point.
func (s *SealedStore) Reseal(ctx context.Context) (int, error) {
	n := 0
	for _, state := range realmhook.TenantStates {
		ts, err := s.Store.ListTenants(ctx, state)
		if err != nil {
			return n, fmt.Errorf("reseal: list %s tenants: %w", state, err)
		}
		for _, t := range ts {
			if s.ring.Current(t.SharedSecret) {
				continue
			}
			_, err := s.Store.UpdateTenant(ctx, t.ClientKey, func(t *realmhook.Tenant) error {
				if s.ring.Current(t.SharedSecret) {
					return nil
				}
				plain, err := s.ring.Open(t.ClientKey, t.SharedSecret)
				if err != nil {
					return err
				}
				t.SharedSecret, err = s.ring.Seal(t.ClientKey, plain)
				return err
			})
			if realmhook.ErrorCode(err) == realmhook.ENOTFOUND {
				continue // deleted meanwhile
			} else if err != nil {
				return n, fmt.Errorf("reseal tenant %q: %w", t.ClientKey, err)
			}
			n++
		}
	}
	return n, nil
}
