package app

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/directory"
)

// SandboxDirectoryKeyFile is the sandbox Directory's PS256 signing key in
// the data directory (created by createKeys).
const SandboxDirectoryKeyFile = "sandbox-directory-key.pem"

// Directory is Ponte's side of the Open Finance Directory, as dynamic
// client registration uses it.
type Directory struct {
	// Verifier checks the software statements presented at POST /register.
	Verifier *directory.Verifier
	// Keys caches JWKS by URL (the Directory's keys when configured by URL,
	// registered clients' jwks_uri), honouring their cache headers.
	Keys *directory.JWKSCache
	// Sandbox is the sandbox's own Directory (nil outside the sandbox).
	Sandbox *directory.Sandbox
	// Keystore is the keystore's base URL: a registered client's jwks_uri
	// must be directory.KeystoreJWKSURI(Keystore, org_id, software_id).
	Keystore string
}

// ClientJWKS is the key set a registered client publishes at uri, its
// jwks_uri: the sandbox keystore's read in process, any other through the
// JWKS cache.
func (d *Directory) ClientJWKS(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	if org, sw, ok := d.sandboxSoftware(uri); ok {
		return d.Sandbox.ApplicationJWKS(ctx, org, sw)
	}
	return d.Keys.Keys(ctx, uri)
}

// sandboxSoftware says whether uri is the sandbox keystore's JWKS URL of a
// software (directory.KeystoreJWKSURI), and which: those keys are read in
// process rather than over HTTP.
func (d *Directory) sandboxSoftware(uri string) (org, software string, ok bool) {
	if d.Sandbox == nil {
		return "", "", false
	}
	rest, ok := strings.CutPrefix(uri, d.Sandbox.Keystore()+"/")
	if !ok {
		return "", "", false
	}
	org, software, ok = strings.Cut(strings.TrimSuffix(rest, "/application.jwks"), "/")
	return org, software, ok && directory.KeystoreJWKSURI(d.Sandbox.Keystore(), org, software) == uri
}

// wireDirectory builds the statement verifier and, in the sandbox, the
// sandbox Directory with its routes (keys, keystore, participants, and the
// admin API that issues statements under adminToken). Unset --directory-*
// flags mean the sandbox Directory in the sandbox and the real production
// Directory otherwise.
func wireDirectory(b base, mux *http.ServeMux, adminToken string) (*Directory, error) {
	cfg := b.cfg
	d := &Directory{Keys: directory.NewJWKSCache(directory.CacheOptions{Clock: b.clock})}
	issuer, keystore := directory.ProductionIssuer, directory.ProductionKeystore
	var keys directory.KeySource
	if cfg.Sandbox() {
		key, err := auth.LoadOrCreateKey(filepath.Join(cfg.KeyDir(), SandboxDirectoryKeyFile))
		if err != nil {
			return nil, fmt.Errorf("app: sandbox directory key: %w", err)
		}
		sb, err := directory.NewSandbox(b.db, b.clock, key.Private, key.KeyID, cfg.PublicURL+directory.PathKeystore)
		if err != nil {
			return nil, err
		}
		d.Sandbox = sb
		issuer, keystore, keys = sb.Issuer(), sb.Keystore(), sb.Keys()
		h := &directory.Handler{Sandbox: sb, AdminToken: adminToken, Logger: b.logger, Self: ponteParticipant(b)}
		h.Register(mux)
	}
	if cfg.DirectoryIssuer != "" {
		issuer = cfg.DirectoryIssuer
	}
	if cfg.DirectoryKeystore != "" {
		keystore = cfg.DirectoryKeystore
	}
	if cfg.DirectoryJWKS != "" || keys == nil {
		location := cfg.DirectoryJWKS
		if location == "" {
			location = directory.ProductionJWKS
		}
		var err error
		if keys, err = directory.LoadKeys(location, d.Keys); err != nil {
			return nil, err
		}
	}
	d.Keystore = keystore
	d.Verifier = &directory.Verifier{Keys: keys, Issuer: issuer, Keystore: keystore, Clock: b.clock}
	return d, nil
}

// ponteParticipant is Ponte's own organisation in the sandbox participants
// list: an account holder (and initiator) whose authorisation server
// registers clients dynamically and protects the APIs Ponte serves.
func ponteParticipant(b base) directory.Organisation {
	base := b.cfg.PublicURL
	api := func(family string, version float64, paths ...string) directory.APIResource {
		r := directory.APIResource{Family: family, Version: version}
		for _, p := range paths {
			r.Endpoints = append(r.Endpoints, base+p)
		}
		return r
	}
	return directory.Organisation{
		OrgID: b.cfg.OrganisationID, Name: "Ponte Sandbox", CNPJ: b.cfg.ITPCNPJ,
		// A fixed date: the organisation exists since the data directory does,
		// which Ponte does not record; the list needs some date.
		CreatedOn: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Roles:     []string{directory.RoleAccount, directory.RoleData, directory.RolePayments},
		Server: &directory.Server{
			ID:           uuid.NewSHA1(uuid.NameSpaceURL, []byte(base)).String(),
			Name:         "Ponte Sandbox",
			Description:  "Ponte's holder side in the sandbox",
			DiscoveryURL: base + "/.well-known/openid-configuration",
			DCR:          true,
			Resources: []directory.APIResource{
				api("payments-consents", 4, "/open-banking/payments/v4/consents"),
				api("payments-pix", 4, "/open-banking/payments/v4/pix/payments"),
				api("automatic-payments", 2, "/open-banking/automatic-payments/v2/recurring-consents",
					"/open-banking/automatic-payments/v2/pix/recurring-payments"),
				api("consents", 3, "/open-banking/consents/v3/consents"),
				api("resources", 3, "/open-banking/resources/v3/resources"),
				api("accounts", 2, "/open-banking/accounts/v2/accounts"),
			},
		},
	}
}
