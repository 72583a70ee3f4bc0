package dataconsents_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
)

// TestCreateReadDelete: the happy path of POST, GET and DELETE on both
// databases, every exchange checked against the official file.
func TestCreateReadDelete(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		c := create(t, s, happyBody)
		d := c.Data
		if !strings.HasPrefix(d.ConsentID, dataconsents.IDPrefix) || d.Status != "AWAITING_AUTHORISATION" ||
			d.CreationDateTime != "2024-10-15T18:55:15Z" || d.StatusUpdateDateTime != d.CreationDateTime ||
			d.ExpirationDateTime != "2025-10-15T18:55:15Z" || !slices.Equal(d.Permissions, accountsPerms) || d.Rejection != nil ||
			c.Links.Self != s.URL+consentsPath+"/"+d.ConsentID {
			t.Fatalf("created = %+v %+v", d, c.Links)
		}
		g := get(t, s, d.ConsentID)
		if g.Data.Status != "AWAITING_AUTHORISATION" || g.Data.ConsentID != d.ConsentID || !slices.Equal(g.Data.Permissions, accountsPerms) {
			t.Fatalf("read = %+v", g.Data)
		}
		s.Clock.Advance(90)
		del := call(t, s, "DELETE", consentsPath+"/"+d.ConsentID, headers(token(t, s)), "", false)
		if del.Status != http.StatusNoContent || len(del.Body) != 0 {
			t.Fatalf("delete: %d %s", del.Status, del.Body)
		}
		g = get(t, s, d.ConsentID)
		if r := g.Data.Rejection; g.Data.Status != "REJECTED" || r == nil || r.RejectedBy != dataconsents.ByUser ||
			r.Reason.Code != dataconsents.ReasonCustomerManuallyRejected || r.Reason.AdditionalInformation == "" {
			t.Fatalf("after delete = %+v %+v", g.Data, r)
		}
		// DELETE of a REJECTED consent: 422 CONSENTIMENTO_EM_STATUS_REJEITADO.
		again := call(t, s, "DELETE", consentsPath+"/"+d.ConsentID, headers(token(t, s)), "", false)
		wantError(t, again, http.StatusUnprocessableEntity, dataconsents.CodeConsentimentoRejeitado)
		// Unknown consent: 404 on every route.
		unknown := consentsPath + "/urn:ponte:dc:" + uuid.NewString()
		for _, m := range []string{"GET", "DELETE"} {
			wantError(t, call(t, s, m, unknown, headers(token(t, s)), "", false), http.StatusNotFound, "NOT_FOUND")
		}
		wantError(t, call(t, s, "GET", unknown+"/extensions", headers(token(t, s)), "", false), http.StatusNotFound, "NOT_FOUND")
	})
}

// TestCreateRefusals: one case per 400 and per official 422 code of POST /consents.
func TestCreateRefusals(t *testing.T) {
	t.Parallel()
	// Nothing refused changes state: one SQLite Ponte serves every case.
	s := apptest.Start(t, apptest.Options{})
	pf := func(extra map[string]any) string { return body(demoCPF, accountsPerms, "", extra) }
	business := map[string]any{"businessEntity": map[string]any{"document": map[string]any{"identification": validCNPJ, "rel": "CNPJ"}}}
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
		// schemaInvalid: the official schema refuses the request too.
		schemaInvalid bool
	}{
		{"not JSON", `{"data":`, 400, dataconsents.CodeParametroInvalido, true},
		{"no data", `{}`, 400, dataconsents.CodeParametroNaoInformado, true},
		{"no loggedUser", `{"data":{"permissions":["ACCOUNTS_READ","ACCOUNTS_BALANCES_READ","RESOURCES_READ"]}}`, 400, dataconsents.CodeParametroNaoInformado, true},
		{"permissions of the wrong type", `{"data":{"loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},"permissions":"ACCOUNTS_READ"}}`, 400, dataconsents.CodeParametroInvalido, true},
		{"CPF of 10 digits", body("4774266302", accountsPerms, "", nil), 400, dataconsents.CodeParametroInvalido, true},
		{"CPF check digits", body("47742663024", accountsPerms, "", nil), 400, dataconsents.CodeParametroInvalido, false},
		{"rel not CPF", strings.Replace(happyBody, `"rel":"CPF"`, `"rel":"RG"`, 1), 400, dataconsents.CodeParametroInvalido, true},
		{"no permissions", body(demoCPF, []string{}, "", nil), 400, dataconsents.CodeParametroNaoInformado, true},
		{"unknown permission", body(demoCPF, []string{"ACCOUNTS_READ", "ACCOUNTS_BALANCES_READ", "RESOURCES_READ", "PIX_READ"}, "", nil), 400, dataconsents.CodeParametroInvalido, true},
		{"repeated permission", body(demoCPF, []string{"ACCOUNTS_READ", "ACCOUNTS_BALANCES_READ", "RESOURCES_READ", "RESOURCES_READ"}, "", nil), 400, dataconsents.CodeParametroInvalido, false},
		{"expiration not UTC", body(demoCPF, accountsPerms, "2025-01-01T00:00:00-03:00", nil), 400, dataconsents.CodeParametroInvalido, true},
		{"expiration not a date", body(demoCPF, accountsPerms, "2025-02-30T00:00:00Z", nil), 400, dataconsents.CodeParametroInvalido, true},
		{"CNPJ check digits", pf(map[string]any{"businessEntity": map[string]any{"document": map[string]any{"identification": "11222333000182", "rel": "CNPJ"}}}), 400, dataconsents.CodeParametroInvalido, false},
		{"CNPJ in lower case", pf(map[string]any{"businessEntity": map[string]any{"document": map[string]any{"identification": "12abc34501de35", "rel": "CNPJ"}}}), 400, dataconsents.CodeParametroInvalido, true},
		{"CNPJ without document", pf(map[string]any{"businessEntity": map[string]any{}}), 400, dataconsents.CodeParametroNaoInformado, true},

		{"group incomplete", body(demoCPF, []string{"ACCOUNTS_READ", "ACCOUNTS_BALANCES_READ"}, "", nil), 422, dataconsents.CodeCombinacaoPermissoes, false},
		{"RESOURCES_READ alone", body(demoCPF, []string{"RESOURCES_READ"}, "", nil), 422, dataconsents.CodeCombinacaoPermissoes, false},
		{"PF and PJ together", body(demoCPF, []string{"CUSTOMERS_PERSONAL_IDENTIFICATIONS_READ", "CUSTOMERS_BUSINESS_IDENTIFICATIONS_READ", "RESOURCES_READ"}, "", business),
			422, dataconsents.CodePermissaoPFPJEmConjunto, false},
		{"PJ permissions without businessEntity", body(demoCPF, []string{"CUSTOMERS_BUSINESS_IDENTIFICATIONS_READ", "RESOURCES_READ"}, "", nil),
			422, dataconsents.CodeInformacoesPJNaoInformadas, false},
		{"PF permissions with businessEntity", body(demoCPF, []string{"CUSTOMERS_PERSONAL_ADITTIONALINFO_READ", "RESOURCES_READ"}, "", business),
			422, dataconsents.CodePermissoesPJIncorretas, false},
		{"only products Ponte does not offer", body(demoCPF, []string{"CREDIT_CARDS_ACCOUNTS_READ", "CREDIT_CARDS_ACCOUNTS_LIMITS_READ", "RESOURCES_READ"}, "", nil),
			422, dataconsents.CodeSemPermissoesFuncionais, false},
		{"expiration in the past", body(demoCPF, accountsPerms, "2024-10-15T18:55:14Z", nil), 422, dataconsents.CodeDataExpiracaoInvalida, false},
		{"expiration now", body(demoCPF, accountsPerms, "2024-10-15T18:55:15Z", nil), 422, dataconsents.CodeDataExpiracaoInvalida, false},
		{"expiration beyond 12 months", body(demoCPF, accountsPerms, "2025-10-15T18:55:16Z", nil), 422, dataconsents.CodeDataExpiracaoInvalida, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := call(t, s, "POST", consentsPath, headers(token(t, s)), tc.body, tc.schemaInvalid)
			wantError(t, resp, tc.status, tc.code)
		})
	}
	t.Run("Content-Type not JSON", func(t *testing.T) {
		h := headers(token(t, s))
		h["Content-Type"] = "text/plain"
		resp := call(t, s, "POST", consentsPath, h, happyBody, true)
		wantError(t, resp, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
	})
}

// TestPermissionGroups goes through the regulated table one group at a
// time: every complete group is accepted alone (with businessEntity for the
// PJ groups) and granted only if Ponte offers its product, and every group
// less any one of its permissions is refused with COMBINACAO_PERMISSOES_INCORRETA.
func TestPermissionGroups(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		business := map[string]any{"businessEntity": map[string]any{"document": map[string]any{"identification": alphaCNPJ, "rel": "CNPJ"}}}
		for _, g := range dataconsents.Groups {
			var extra map[string]any
			if g.Business {
				extra = business
			}
			name := g.Category + "/" + g.Name
			resp := call(t, s, "POST", consentsPath, headers(token(t, s)), body(demoCPF, g.Permissions, "", extra), false)
			if slices.Contains(dataconsents.DefaultCategories, g.Category) {
				var c consentResp
				resp.JSON(t, &c)
				if resp.Status != http.StatusCreated || !slices.Equal(c.Data.Permissions, g.Permissions) {
					t.Errorf("%s alone: %d %s", name, resp.Status, resp.Body)
				}
			} else {
				// A product Ponte does not serve: nothing functional remains.
				wantError(t, resp, http.StatusUnprocessableEntity, dataconsents.CodeSemPermissoesFuncionais)
			}
			// With a supported group beside it, the unsupported group is
			// dropped from the grant and the supported one kept.
			if !slices.Contains(dataconsents.DefaultCategories, g.Category) && !g.Business {
				perms := append(slices.Clone(g.Permissions), "ACCOUNTS_READ", "ACCOUNTS_BALANCES_READ")
				c := create(t, s, body(demoCPF, perms, "", nil))
				if want := []string{"RESOURCES_READ", "ACCOUNTS_READ", "ACCOUNTS_BALANCES_READ"}; !slices.Equal(c.Data.Permissions, want) {
					t.Errorf("%s with Saldos: granted %v, want %v", name, c.Data.Permissions, want)
				}
			}
			for i, missing := range g.Permissions {
				perms := slices.Delete(slices.Clone(g.Permissions), i, i+1)
				if len(perms) == 0 {
					continue
				}
				resp := call(t, s, "POST", consentsPath, headers(token(t, s)), body(demoCPF, perms, "", extra), false)
				wantError(t, resp, http.StatusUnprocessableEntity, dataconsents.CodeCombinacaoPermissoes)
				if t.Failed() {
					t.Logf("%s without %s", name, missing)
				}
			}
		}
	})
}

// TestGroupTableUnit checks the group table against Validate with every
// category offered: each complete group alone is granted as asked.
func TestGroupTableUnit(t *testing.T) {
	t.Parallel()
	all := []string{dataconsents.CategoryRegistration, dataconsents.CategoryAccounts, dataconsents.CategoryCreditCards,
		dataconsents.CategoryCredit, dataconsents.CategoryInvestments, dataconsents.CategoryExchange}
	seen := map[string]bool{}
	for _, g := range dataconsents.Groups {
		req := dataconsents.CreateRequest{LoggedUser: &dataconsents.Party{Document: &dataconsents.Document{Identification: demoCPF, Rel: "CPF"}},
			Permissions: g.Permissions}
		if g.Business {
			req.BusinessEntity = &dataconsents.Party{Document: &dataconsents.Document{Identification: validCNPJ, Rel: "CNPJ"}}
		}
		perms, _, verr := req.Validate(apptest.Epoch, all)
		if verr != nil || !slices.Equal(perms, g.Permissions) {
			t.Errorf("%s/%s: %v %v", g.Category, g.Name, perms, verr)
		}
		if !slices.Contains(g.Permissions, dataconsents.PermResourcesRead) {
			t.Errorf("%s/%s lacks RESOURCES_READ", g.Category, g.Name)
		}
		for _, p := range g.Permissions {
			seen[p] = true
		}
	}
	// The table covers every permission of the specification's enum.
	doc := officialSpec(t)
	if doc == nil {
		return
	}
	enum := doc.Components.Schemas["CreateConsent"].Value.Properties["data"].Value.Properties["permissions"].Value.Items.Value.Enum
	if len(enum) != len(seen) {
		t.Errorf("table has %d permissions, the specification %d", len(seen), len(enum))
	}
	for _, p := range enum {
		if !seen[p.(string)] || !dataconsents.KnownPermission(p.(string)) {
			t.Errorf("permission %v not in the table", p)
		}
	}
}

// TestInteractionID: a valid x-fapi-interaction-id is echoed; a missing or
// invalid one is answered with a new UUID and 400, as the specification says.
func TestInteractionID(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	tok := token(t, s)
	resp := call(t, s, "POST", consentsPath, headers(tok), happyBody, false)
	if resp.Status != 201 || resp.Header.Get(dataconsents.InteractionHeader) != interactionID {
		t.Fatalf("echo: %d %q", resp.Status, resp.Header.Get(dataconsents.InteractionHeader))
	}
	for _, tc := range []struct{ name, value, code string }{
		{"missing", "", dataconsents.CodeParametroNaoInformado},
		{"not a UUID", "not-a-uuid", dataconsents.CodeParametroInvalido},
	} {
		h := map[string]string{"Authorization": "Bearer " + tok}
		if tc.value != "" {
			h[dataconsents.InteractionHeader] = tc.value
		}
		resp := call(t, s, "POST", consentsPath, h, happyBody, true)
		wantError(t, resp, http.StatusBadRequest, tc.code)
		got := resp.Header.Get(dataconsents.InteractionHeader)
		if _, err := uuid.Parse(got); err != nil || got == tc.value {
			t.Errorf("%s: generated %q", tc.name, got)
		}
	}
	// Two requests without one get two different ids.
	a := s.Do(t, "GET", consentsPath+"/urn:ponte:dc:x1", map[string]string{"Authorization": "Bearer " + tok}, "")
	b := s.Do(t, "GET", consentsPath+"/urn:ponte:dc:x1", map[string]string{"Authorization": "Bearer " + tok}, "")
	if a.Header.Get(dataconsents.InteractionHeader) == b.Header.Get(dataconsents.InteractionHeader) {
		t.Error("generated interaction ids repeat")
	}
}

// TestTokens: no token 401, a bad one 401, a token without scope consents
// 403, on every route.
func TestTokens(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		id := create(t, s, happyBody).Data.ConsentID
		noScope := s.Token(t, "payments")
		routes := []struct{ method, path, body string }{
			{"POST", consentsPath, happyBody},
			{"GET", consentsPath + "/" + id, ""},
			{"DELETE", consentsPath + "/" + id, ""},
			{"POST", consentsPath + "/" + id + "/extends", `{"data":{"loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}}}}`},
			{"GET", consentsPath + "/" + id + "/extensions", ""},
		}
		for _, r := range routes {
			h := map[string]string{dataconsents.InteractionHeader: interactionID, dataconsents.CustomerIPHeader: "203.0.113.7", dataconsents.UserAgentHeader: "Mozilla/5.0"}
			wantError(t, call(t, s, r.method, r.path, h, r.body, true), http.StatusUnauthorized, "UNAUTHORIZED")
			h["Authorization"] = "Bearer not-a-token"
			wantError(t, call(t, s, r.method, r.path, h, r.body, false), http.StatusUnauthorized, "UNAUTHORIZED")
			h["Authorization"] = "Bearer " + noScope
			wantError(t, call(t, s, r.method, r.path, h, r.body, false), http.StatusForbidden, "FORBIDDEN")
		}
		if g := get(t, s, id); g.Data.Status != "AWAITING_AUTHORISATION" {
			t.Errorf("refused calls changed the consent: %+v", g.Data)
		}
	})
}

// TestTenantIsolation: another application's consent does not exist for
// an application (404 on read, revoke and extensions), and stays untouched.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		other, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Another receiver", CompanyKey: "OUTRA",
			Scopes: []string{dataconsents.Scope}, AcceptPlainJSON: true})
		if err != nil {
			t.Fatal(err)
		}
		otherTok := s.TokenFor(t, other.ClientID, secret, dataconsents.Scope)
		mine := create(t, s, happyBody).Data.ConsentID
		resp := call(t, s, "POST", consentsPath, headers(otherTok), happyBody, false)
		var theirs consentResp
		resp.JSON(t, &theirs)
		if resp.Status != 201 {
			t.Fatalf("other create: %d %s", resp.Status, resp.Body)
		}
		for _, tc := range []struct {
			tok, id string
		}{{otherTok, mine}, {token(t, s), theirs.Data.ConsentID}} {
			wantError(t, call(t, s, "GET", consentsPath+"/"+tc.id, headers(tc.tok), "", false), http.StatusNotFound, "NOT_FOUND")
			wantError(t, call(t, s, "DELETE", consentsPath+"/"+tc.id, headers(tc.tok), "", false), http.StatusNotFound, "NOT_FOUND")
			wantError(t, call(t, s, "GET", consentsPath+"/"+tc.id+"/extensions", headers(tc.tok), "", false), http.StatusNotFound, "NOT_FOUND")
		}
		if g := get(t, s, mine); g.Data.Status != "AWAITING_AUTHORISATION" {
			t.Errorf("another application's DELETE changed the consent: %+v", g.Data)
		}
		if c, err := s.App.DataConsents.Get(t.Context(), other.ID, theirs.Data.ConsentID); err != nil || c.Status != dataconsents.StatusAwaitingAuthorisation {
			t.Errorf("their consent: %+v %v", c, err)
		}
	})
}

// TestMalformedConsentID: a path id that is not the specification's URN is a 400.
func TestMalformedConsentID(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	for _, id := range []string{"not-a-urn", "urn:x", "urn::abc"} {
		resp := call(t, s, "GET", consentsPath+"/"+id, headers(token(t, s)), "", true)
		wantError(t, resp, http.StatusBadRequest, dataconsents.CodeParametroInvalido)
	}
}
