package main

import (
	"context"
)

func (m *Main) runWindow(ctx context.Context, dir string, keep func(*process, error) (*process, error)) error {
	return nil
}

func (m *Main) runScale(ctx context.Context, dir string, keep func(*process, error) (*process, error)) error {
	return nil
}
