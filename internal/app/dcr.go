package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

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
	keys := clientKeySets{dir}
	return &oidc.Registration{
		Statements:        dir.Verifier,
		Keys:              keys,
		Applications:      registeredApps{apps},
		AllowLoopbackHTTP: b.cfg.Sandbox(),
		// go-oidc reads a client's jwks_uri on each request object and client
		// assertion: the sandbox keystore's are answered in process (no HTTP
		// round trip to Ponte itself, whose certificate the sandbox's own
		// clients need not trust), any other over HTTP.
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: keystoreTransport{keys: keys, next: http.DefaultTransport}},
	}
}

// keystoreTransport answers GETs of the sandbox keystore's URLs from the
// sandbox Directory in process and sends every other request on.
type keystoreTransport struct {
	keys clientKeySets
	next http.RoundTripper
}

func (t keystoreTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	org, sw, ok := t.keys.dir.sandboxSoftware(r.URL.String())
	if !ok || r.Method != http.MethodGet {
		return t.next.RoundTrip(r)
	}
	status, body := http.StatusOK, []byte(nil)
	set, err := t.keys.dir.Sandbox.ApplicationJWKS(r.Context(), org, sw)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		status, body = http.StatusNotFound, []byte(`{"error":"unknown software"}`)
	case err != nil:
		return nil, err
	default:
		if body, err = json.Marshal(set); err != nil {
			return nil, err
		}
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: r}, nil
}

// clientKeySets reads a registered client's key set at its jwks_uri.
type clientKeySets struct{ dir *Directory }

// Keys implements oidc.KeySets.
func (k clientKeySets) Keys(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	return k.dir.ClientJWKS(ctx, uri)
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
