package oidc_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/oidc"
)

// resourceErrors stands in for the resource APIs' error family.
type resourceErrors struct{}

func (resourceErrors) WriteError(w http.ResponseWriter, r *http.Request, e *httpx.Error) {
	httpx.WriteJSON(w, r, e.Status, map[string]string{"family": "resource", "message": e.Message})
}

func TestCertificatePolicy(t *testing.T) {
	t.Parallel()
	policy := oidc.CertificatePolicy{Logger: slog.New(slog.DiscardHandler), ResourcePrefix: "/open-banking/", ResourceErrors: resourceErrors{}}
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name, method, path, contentType, body string
		cert                                  bool
		want                                  int
		wantBody                              string // a substring of the refusal
	}{
		{"resource API without certificate", "GET", "/open-banking/payments/v4/consents/x", "", "", false, 401, `"family":"resource"`},
		{"resource API with certificate", "GET", "/open-banking/payments/v4/consents/x", "", "", true, 200, ""},
		{"PAR without certificate", "POST", oidc.PathPAR, form, "client_id=x", false, 401, `"error":"invalid_client"`},
		{"authorization_code without certificate", "POST", oidc.PathToken, form, "grant_type=authorization_code&code=c", false, 401, `"error":"invalid_client"`},
		{"refresh_token in the query without certificate", "POST", oidc.PathToken + "?grant_type=refresh_token", form, "", false, 401, `"error":"invalid_client"`},
		{"private_key_jwt without certificate", "POST", oidc.PathToken, form,
			"grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c", false, 401, `"error":"invalid_client"`},
		{"client secret without certificate", "POST", oidc.PathToken, form, "grant_type=client_credentials&client_id=x&client_secret=y", false, 200, ""},
		{"authorization_code with certificate", "POST", oidc.PathToken, form, "grant_type=authorization_code&code=c", true, 200, ""},
		{"authorize page without certificate", "GET", oidc.PathAuthorize + "?client_id=x", "", "", false, 200, ""},
		{"other paths without certificate", "GET", "/openfinance/consent-flow/webview", "", "", false, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				seen = string(b)
				w.WriteHeader(http.StatusOK)
			})
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.cert {
				cert := &x509.Certificate{}
				req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}, VerifiedChains: [][]*x509.Certificate{{cert}}}
			}
			rec := httptest.NewRecorder()
			policy.Handler(next).ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want != http.StatusOK {
				if !strings.Contains(rec.Body.String(), tt.wantBody) || !json.Valid(rec.Body.Bytes()) {
					t.Errorf("refusal %s, want JSON with %s", rec.Body, tt.wantBody)
				}
				return
			}
			if seen != tt.body {
				t.Errorf("the handler read %q, want the whole body %q", seen, tt.body)
			}
		})
	}
}
