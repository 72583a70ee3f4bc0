package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func publicJWKS(t *testing.T, kid string) json.RawMessage {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "PS256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRegisteredApplications: the application of a dynamically registered
// client is created with the given client_id and no usable secret, brought
// in step on update (keys kept when none are given), refused without
// writing on bad input, and disabled by DisableTx.
func TestRegisteredApplications(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		apps := auth.NewApplications(db, clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)))
		save := func(r auth.RegisteredClient) (*auth.Application, error) {
			var a *auth.Application
			err := db.Write(ctx, func(tx *sql.Tx) error {
				var err error
				a, err = apps.SaveRegisteredTx(ctx, tx, r)
				return err
			})
			return a, err
		}
		const org = "7f3c2a10-5b6d-4e8f-9a1b-2c3d4e5f6a7b"
		keys := publicJWKS(t, "k1")
		created, err := save(auth.RegisteredClient{ClientID: "dc-abc", Name: "Payer ITP", OrganisationID: org,
			SoftwareID: "5c0b1f2e-3d4a-4b5c-8d6e-7f8091a2b3c4", Scopes: []string{"openid", "payments", "recurring-payments"},
			RedirectURLs: []string{"https://itp.example/cb"}, JWKS: keys})
		if err != nil {
			t.Fatal(err)
		}
		got, err := apps.Get(ctx, "dc-abc")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != created.ID || got.OrganisationID != org || got.CompanyKey != "5c0b1f2e-3d4a-4b5c-8d6e-7f8091a2b3c4" ||
			!slices.Equal(got.Scopes, []string{"payments", "recurring-payments"}) || got.KeyCount() != 1 || got.Disabled {
			t.Fatalf("created application = %+v", got)
		}
		for _, secret := range []string{"", "-", "anything"} {
			if _, err := apps.Authenticate(ctx, "dc-abc", secret); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("Authenticate with secret %q = %v, want ErrNotFound (no usable secret)", secret, err)
			}
		}

		// Update: new name, scopes and redirect URLs; no JWKS keeps the keys.
		if _, err := save(auth.RegisteredClient{ClientID: "dc-abc", Name: "Payer ITP 2", OrganisationID: org,
			Scopes: []string{"openid", "payments"}, RedirectURLs: []string{"https://itp.example/cb2"}}); err != nil {
			t.Fatal(err)
		}
		got, err = apps.Get(ctx, "dc-abc")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != created.ID || got.Name != "Payer ITP 2" || !slices.Equal(got.Scopes, []string{"payments"}) ||
			!slices.Equal(got.RedirectURLs, []string{"https://itp.example/cb2"}) || got.KeyCount() != 1 {
			t.Fatalf("updated application = %+v", got)
		}

		// Refused input changes nothing.
		for name, bad := range map[string]auth.RegisteredClient{
			"no client_id":    {Name: "x"},
			"org not a UUID":  {ClientID: "dc-abc", OrganisationID: "org-1"},
			"private key set": {ClientID: "dc-abc", JWKS: json.RawMessage(`{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`)},
		} {
			if _, err := save(bad); !errors.Is(err, auth.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", name, err)
			}
		}
		after, err := apps.Get(ctx, "dc-abc")
		if err != nil {
			t.Fatal(err)
		}
		if after.Name != "Payer ITP 2" || after.OrganisationID != org || after.KeyCount() != 1 {
			t.Fatalf("a refused save changed the application: %+v", after)
		}

		if err := db.Write(ctx, func(tx *sql.Tx) error { return apps.DisableTx(ctx, tx, "dc-abc") }); err != nil {
			t.Fatal(err)
		}
		if got, err := apps.Get(ctx, "dc-abc"); err != nil || !got.Disabled {
			t.Fatalf("after DisableTx: %+v, %v", got, err)
		}
		if err := db.Write(ctx, func(tx *sql.Tx) error { return apps.DisableTx(ctx, tx, "dc-unknown") }); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("DisableTx of an unknown client = %v, want ErrNotFound", err)
		}
	})
}
