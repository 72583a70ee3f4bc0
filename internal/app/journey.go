package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/sandboxapp"
)

// partners finds holder partners among Ponte's applications. In the sandbox
// the demo partner's app is Ponte's sandbox partner app: its deep link is
// that page (unless the operator registered another) and its login tokens
// are signed with the sandbox partner key, registered on the application.
type partners struct {
	apps        *auth.Applications
	demoID      string
	demoDeepURL string
}

// Partner implements consentflow.Partners.
func (p partners) Partner(ctx context.Context, applicationID string) (*consentflow.Partner, error) {
	a, err := p.apps.ByID(ctx, applicationID)
	if errors.Is(err, auth.ErrNotFound) {
		return nil, consentflow.ErrPartnerNotFound
	}
	if err != nil {
		return nil, err
	}
	if a.Disabled {
		return nil, consentflow.ErrPartnerNotFound
	}
	out := &consentflow.Partner{ApplicationID: a.ID, ClientID: a.ClientID, Name: a.Name, Slug: a.Slug, CompanyKey: a.CompanyKey, DeepLinkURL: a.DeepLinkURL}
	if len(a.JWKS) > 0 {
		if err := json.Unmarshal(a.JWKS, &out.Keys); err != nil {
			return nil, fmt.Errorf("app: partner %s jwks: %w", a.ID, err)
		}
	}
	if a.ID == p.demoID && out.DeepLinkURL == "" {
		out.DeepLinkURL = p.demoDeepURL
	}
	return out, nil
}

// demoUsers are the sandbox demo partner's customers.
type demoUsers struct {
	customers *customers.Service
	appID     string
}

func (d demoUsers) DemoUser(ctx context.Context, document string) (string, bool) {
	c, err := d.customers.Customer(ctx, d.appID, document)
	if err != nil {
		return "", false
	}
	return c.Name, true
}

// wireSandboxApp builds, in the sandbox (demo is the demo application,
// secret its client secret), the demo partner's app with its signing key and
// registers its routes. It returns the app (nil outside the sandbox), demo
// as updated, and the holder partners, whose demo partner is reached at that
// app.
func wireSandboxApp(ctx context.Context, b base, mux *http.ServeMux, pages *template.Template, apps *auth.Applications,
	custs *customers.Service, demo *auth.Application, secret string) (*sandboxapp.App, *auth.Application, partners, error) {
	p := partners{apps: apps}
	if demo == nil {
		return nil, nil, p, nil
	}
	keyFile := filepath.Join(b.cfg.KeyDir(), sandboxPartnerKeyFile)
	key, err := auth.LoadOrCreateKey(keyFile)
	if err != nil {
		return nil, nil, p, err
	}
	sandbox := &sandboxapp.App{
		PublicURL: b.cfg.PublicURL, ClientID: demo.ClientID, ClientSecret: secret, Key: key,
		Users: demoUsers{custs, demo.ID}, Clock: b.clock, HTTP: &http.Client{Timeout: 10 * time.Second},
		Pages: pages, Logger: b.logger,
	}
	jwks, err := sandbox.PublicJWKS()
	if err != nil {
		return nil, nil, p, err
	}
	// The sandbox partner key is registered only while the demo
	// application has no keys: keys an operator set (apps set-keys) are
	// theirs and survive restarts, even without the sandbox key.
	switch {
	case len(demo.JWKS) == 0:
		if demo, err = apps.SetJWKS(ctx, demo.ID, jwks); err != nil {
			return nil, nil, p, fmt.Errorf("app: register the sandbox partner key: %w", err)
		}
	case !hasKey(demo.JWKS, key.KeyID):
		b.logger.WarnContext(ctx, "the demo application's registered keys do not include the sandbox partner key: "+
			"logins from the sandbox partner app will be refused until its key is registered too",
			"client_id", demo.ClientID, "kid", key.KeyID, "key_file", keyFile)
	}
	sandbox.Register(mux)
	p.demoID, p.demoDeepURL = demo.ID, strings.TrimSuffix(b.cfg.PublicURL, "/")+sandboxapp.PathApp
	return sandbox, demo, p, nil
}

// hasKey reports whether the key set stored holds a key with id kid.
func hasKey(stored json.RawMessage, kid string) bool {
	var s jose.JSONWebKeySet
	return json.Unmarshal(stored, &s) == nil && len(s.Key(kid)) > 0
}

func sameKeys(stored json.RawMessage, want []byte) bool {
	var s, w jose.JSONWebKeySet
	if json.Unmarshal(stored, &s) != nil || json.Unmarshal(want, &w) != nil || len(s.Keys) != len(w.Keys) {
		return false
	}
	for i := range s.Keys {
		if s.Keys[i].KeyID != w.Keys[i].KeyID {
			return false
		}
	}
	return true
}
