package oidc_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestDiscoveryListsWhatIsAccepted: discovery advertises only what the
// server does, and each advertised value is asked for: every response type
// is accepted by PAR (and the ones left out are refused), every grant type
// reaches its grant at the token endpoint, every client authentication
// method authenticates.
func TestDiscoveryListsWhatIsAccepted(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s, in := start(t, e.URL(t))
			c := oidctest.NoRedirects()
			resp, err := http.Get(s.URL + oidc.PathDiscovery)
			if err != nil {
				t.Fatal(err)
			}
			var d struct {
				ResponseTypes []string `json:"response_types_supported"`
				GrantTypes    []string `json:"grant_types_supported"`
				AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
			}
			decode(t, resp, &d)

			if !slices.Equal(d.ResponseTypes, []string{"code id_token"}) {
				t.Errorf("response_types_supported = %v, want [code id_token]", d.ResponseTypes)
			}
			// Each advertised response type is accepted; the others go-oidc
			// knows (and JARM's plain code) are refused, so listing them
			// would be a promise the server does not keep.
			for _, tc := range []struct {
				responseType, responseMode string
			}{
				{"code id_token", ""}, {"code id_token", "jwt"},
				{"code", ""}, {"code", "jwt"}, {"token", ""}, {"id_token", ""}, {"code token", ""}, {"code id_token token", ""}, {"id_token token", ""},
			} {
				req := oidctest.NewRequest(consentID)
				req.ResponseType, req.ResponseMode = tc.responseType, tc.responseMode
				resp := in.PAR(t, c, s.URL, req)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				advertised := slices.Contains(d.ResponseTypes, tc.responseType)
				if advertised && resp.StatusCode != http.StatusCreated {
					t.Errorf("advertised response_type %q (mode %q) refused by PAR: %d %s", tc.responseType, tc.responseMode, resp.StatusCode, body)
				}
				if !advertised && resp.StatusCode < 400 {
					t.Errorf("response_type %q (mode %q) is not advertised but PAR accepts it: %d", tc.responseType, tc.responseMode, resp.StatusCode)
				}
			}

			for _, g := range []string{"authorization_code", "refresh_token", "client_credentials"} {
				if !slices.Contains(d.GrantTypes, g) {
					t.Errorf("grant_types_supported = %v, want %s in it", d.GrantTypes, g)
				}
			}
			// Each token-endpoint grant advertised is handled: a bogus code or
			// refresh token is refused as such, not as unsupported_grant_type.
			for _, g := range d.GrantTypes {
				var status int
				var out map[string]any
				switch g {
				case "client_credentials":
					status, out = in.ClientCredentials(t, c, s.URL, "payments")
					if status != http.StatusOK || out["access_token"] == nil {
						t.Errorf("client_credentials: %d %v", status, out)
					}
					continue
				case "authorization_code":
					status, out = in.ExchangeCode(t, c, s.URL, "not-a-code", oidctest.NewRequest(consentID))
				case "refresh_token":
					status, out = in.Refresh(t, c, s.URL, "not-a-refresh-token")
				case "implicit":
					continue // the hybrid response type above is the implicit grant's use
				default:
					t.Errorf("grant type %q advertised and not tested", g)
					continue
				}
				// go-oidc says invalid_grant for a code, invalid_request for a
				// refresh token: either way the grant was handled.
				if status != http.StatusBadRequest || out["error"] == nil || out["error"] == "unsupported_grant_type" {
					t.Errorf("%s with a bogus credential: %d %v, want 400 refusing the credential", g, status, out)
				}
			}

			// private_key_jwt authenticated the client_credentials above; any
			// other method listed must be one FAPI-BR allows.
			if !slices.Contains(d.AuthMethods, "private_key_jwt") {
				t.Errorf("token_endpoint_auth_methods_supported = %v", d.AuthMethods)
			}
			for _, m := range d.AuthMethods {
				if m != "private_key_jwt" && m != "tls_client_auth" {
					t.Errorf("token endpoint auth method %q is not FAPI-BR's", m)
				}
			}
			// A client secret is not an advertised method: the token endpoint's
			// answer to a secret for an Open Finance client is no token.
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {in.ClientID}, "client_secret": {"guess"}}
			r, err := c.Post(s.URL+oidc.PathToken, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				t.Error("a client secret got a token for an Open Finance client")
			}
		})
	}
}
