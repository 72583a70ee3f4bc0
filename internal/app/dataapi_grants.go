package app

import (
	"context"
	"errors"

	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
)

// dataGrants adapts the Consents v3 service to the data APIs' Grants.
func (a *App) dataGrants() dataapi.Grants { return consentGrants{a} }

// consentGrants converts dataconsents.Grant into dataapi.Grant. It reads
// a.DataConsents at call time.
type consentGrants struct{ a *App }

// Grant implements dataapi.Grants.
func (g consentGrants) Grant(ctx context.Context, consentID string) (*dataapi.Grant, error) {
	cg, err := g.a.DataConsents.Grant(ctx, consentID)
	if errors.Is(err, dataconsents.ErrNotFound) {
		return nil, dataapi.ErrGrantNotFound
	}
	if err != nil {
		return nil, err
	}
	return &dataapi.Grant{ConsentID: cg.ConsentID, ApplicationID: cg.ApplicationID, Document: cg.Document, Status: cg.Status,
		Permissions: cg.Permissions, AccountIDs: cg.AccountIDs, ExpiresAt: cg.ExpiresAt}, nil
}
