package main

import (
	"context"
)

func (m *Main) runScale(ctx context.Context, dir string, keep func(*process, error) (*process, error)) error {
	return nil
}
