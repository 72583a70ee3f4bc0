package app

import (
	"context"
	"database/sql"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/directory"
	"github.com/ponte-ofb/ponte/internal/oidc"
)

// registration configures dynamic client registration at the holder's
// authorization server (POST /register and the client configuration
// endpoint, internal/oidc/dcr.go): statements are verified by the
// Directory's verifier, a client's keys are read from its jwks_uri (the
// sandbox keystore's in process, any other through the JWKS cache), and each
// registered client is also a partner application (same client_id), written
// in the client's transaction.
func registration(b base, dir *Directory, apps *auth.Applications) *oidc.Registration {
	if dir == nil || dir.Verifier == nil {
		return nil
	}
	return &oidc.Registration{
		Statements:        dir.Verifier,
		Keys:              clientKeySets{dir},
		Applications:      registeredApps{apps},
		AllowLoopbackHTTP: b.cfg.Sandbox(),
	}
}

// clientKeySets reads a registered client's key set at its jwks_uri.
type clientKeySets struct{ dir *Directory }

// Keys implements oidc.KeySets.
func (k clientKeySets) Keys(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	if sb := k.dir.Sandbox; sb != nil {
		if rest, ok := strings.CutPrefix(uri, sb.Keystore()+"/"); ok {
			if org, sw, ok := strings.Cut(strings.TrimSuffix(rest, "/application.jwks"), "/"); ok &&
				directory.KeystoreJWKSURI(sb.Keystore(), org, sw) == uri {
				return sb.ApplicationJWKS(ctx, org, sw)
			}
		}
	}
	return k.dir.Keys.Keys(ctx, uri)
}

// registeredApps adapts auth.Applications to oidc.RegisteredApplications.
type registeredApps struct{ apps *auth.Applications }

// SaveRegistered implements oidc.RegisteredApplications.
func (r registeredApps) SaveRegistered(ctx context.Context, tx *sql.Tx, a oidc.RegisteredApplication) error {
	_, err := r.apps.SaveRegisteredTx(ctx, tx, auth.RegisteredClient{
		ClientID: a.ClientID, Name: a.Name, OrganisationID: a.OrganisationID, SoftwareID: a.SoftwareID,
		Scopes: a.Scopes, RedirectURLs: a.RedirectURIs, JWKS: a.JWKS,
	})
	return err
}

// DisableRegistered implements oidc.RegisteredApplications.
func (r registeredApps) DisableRegistered(ctx context.Context, tx *sql.Tx, clientID string) error {
	return r.apps.DisableTx(ctx, tx, clientID)
}
