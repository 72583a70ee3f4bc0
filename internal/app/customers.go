package app

import (
	"context"

	"github.com/ponte-ofb/ponte/internal/customers"
)

// wireCustomers builds the customer service and, in the sandbox, seeds the
// demo application's customers and accounts (idempotent; safe when several
// instances start at once).
func (a *App) wireCustomers(ctx context.Context) error {
	a.Customers = customers.NewService(a.DB, a.Clock)
	if a.Demo == nil {
		return nil
	}
	_, err := a.Customers.EnsureSandbox(ctx, a.Demo.ID)
	return err
}
