package app

import (
	"context"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/customers"
)

// newCustomers builds the customer service and, in the sandbox (demo is
// the demo application), seeds its customers and accounts (idempotent; safe
// when several instances start at once).
func newCustomers(ctx context.Context, b base, demo *auth.Application) (*customers.Service, error) {
	svc := customers.NewService(b.db, b.clock)
	if demo == nil {
		return svc, nil
	}
	if _, err := svc.EnsureSandbox(ctx, demo.ID); err != nil {
		return nil, err
	}
	return svc, nil
}
