package app

import (
	"context"
	"errors"

	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
)

// consentGrants adapts the Consents v3 service to the data APIs' Grants,
// converting dataconsents.Grant into dataapi.Grant.
type consentGrants struct{ consents *dataconsents.Service }

// Grant implements dataapi.Grants.
func (g consentGrants) Grant(ctx context.Context, consentID string) (*dataapi.Grant, error) {
	cg, err := g.consents.Grant(ctx, consentID)
	if errors.Is(err, dataconsents.ErrNotFound) {
		return nil, dataapi.ErrGrantNotFound
	}
	if err != nil {
		return nil, err
	}
	return &dataapi.Grant{ConsentID: cg.ConsentID, ApplicationID: cg.ApplicationID, Document: cg.Document, Status: cg.Status,
		Permissions: cg.Permissions, AccountIDs: cg.AccountIDs, ExpiresAt: cg.ExpiresAt}, nil
}
