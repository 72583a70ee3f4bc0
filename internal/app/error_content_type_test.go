package app_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/itp"
)

// TestErrorContentTypes: an error of each API family, from its real route,
// is labelled for what its body is: JSON as application/json (never
// text/plain), people's pages as text/html.
func TestErrorContentTypes(t *testing.T) {
	s := apptest.Start(t, apptest.Options{})
	bearer := map[string]string{"Authorization": "Bearer " + s.Token(t, "")}
	const jsonType, htmlType = "application/json", "text/html"
	tests := []struct {
		family, method, path string
		header               map[string]string
		body                 string
		status               int
		contentType          string
	}{
		{"Bankly (cards)", "GET", "/cards-pci/no-such-card/wallet", bearer, "", 404, jsonType},
		{"Bankly (card admin)", "POST", "/admin/v1/cards", bearer, `{}`, 400, jsonType},
		{"Bankly (webhooks)", "GET", "/webhooks/v1/subscriptions/00000000-0000-4000-8000-000000000000", bearer, "", 404, jsonType},
		{"Bankly (ticket)", "POST", "/openfinance/consent-flow/ticket", nil, `{}`, 401, jsonType},
		{"Brick (interactions)", "POST", "/api/demo/consents/v1/interactions/nope/login", nil, `{}`, 401, jsonType},
		{"Open Keys", "GET", itp.SessionsPath + "/no-such-session", bearer, "", 404, jsonType},
		{"OAuth", "POST", "/oauth/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "grant_type=client_credentials", 401, jsonType},
		{"Open Finance Brasil (Payments v4)", "GET", "/open-banking/payments/v4/consents/nope", nil, "", 400, jsonType},
		{"Open Finance Brasil (Consents v3)", "GET", "/open-banking/consents/v3/consents/nope", nil, "", 400, jsonType},
		{"Open Finance Brasil (Accounts)", "GET", "/open-banking/accounts/v2/accounts", nil, "", 400, jsonType},
		{"page (WebView)", "GET", "/openfinance/consent-flow/webview?ticket=nope", map[string]string{"Accept": "text/html"}, "", 0, htmlType},
	}
	for _, tt := range tests {
		t.Run(tt.family, func(t *testing.T) {
			r := s.Do(t, tt.method, tt.path, tt.header, tt.body)
			got := r.Header.Get("Content-Type")
			if r.Status < 400 || (tt.status != 0 && r.Status != tt.status) || !strings.HasPrefix(got, tt.contentType) {
				t.Fatalf("%s %s: %d %q, want %d %s\n%s", tt.method, tt.path, r.Status, got, tt.status, tt.contentType, r.Body)
			}
			if tt.contentType == jsonType && !json.Valid(r.Body) {
				t.Errorf("labelled JSON, body is not: %s", r.Body)
			}
		})
	}
}
