package app_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/officialspec"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// Refresh tokens last as long as the consent (issue 15 §2b): each journey
// below ends with the code exchange, then the initiator refreshes on Ponte's
// fake clock while the consent lives and is refused once it does not.

// approveAndExchange logs the demo customer in, approves with approve,
// follows the callback and redeems the code; it returns the token response.
func approveAndExchange(t *testing.T, j *journey, interactionID, loginToken, approve string) map[string]any {
	t.Helper()
	if r := j.step(t, interactionID, "login", loginBody(loginToken)); r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	r := j.step(t, interactionID, "consent", approve)
	var approved consentflow.InteractionJSON
	r.JSON(t, &approved)
	if r.Status != 200 || approved.Status != consentflow.InteractionApproved {
		t.Fatalf("approve: %d %s", r.Status, r.Body)
	}
	frag, _ := url.ParseQuery(location(t, j.get(t, approved.RedirectURI)).Fragment)
	if frag.Get("code") == "" || frag.Get("state") != j.req.State {
		t.Fatalf("callback fragment = %v", frag)
	}
	status, tok := j.in.ExchangeCode(t, oidctest.NoRedirects(), j.s.URL, frag.Get("code"), j.req)
	if status != 200 {
		t.Fatalf("code exchange: %d %v", status, tok)
	}
	return tok
}

// refreshTokenOf checks a code exchange's answer: a 300-second access token
// for scope, with a refresh token, which it returns.
func refreshTokenOf(t *testing.T, tok map[string]any, scope string) string {
	t.Helper()
	rt, _ := tok["refresh_token"].(string)
	got, _ := tok["scope"].(string)
	if rt == "" || tok["access_token"] == nil || tok["expires_in"] != float64(oidc.AccessTokenLifetime) || !slices.Contains(strings.Fields(got), scope) {
		t.Fatalf("code exchange = %v, want a 300 s access token for %s and a refresh token", tok, scope)
	}
	return rt
}

// refresh redeems rt and checks the answer: status, and for a 200 a new
// 300-second access token for scope and no new refresh token (no rotation);
// for a 400, the error code.
func refresh(t *testing.T, s *apptest.Server, in *oidctest.Initiator, rt, scope string, wantStatus int, wantError string) map[string]any {
	t.Helper()
	status, tok := in.Refresh(t, oidctest.NoRedirects(), s.URL, rt)
	if status != wantStatus {
		t.Fatalf("refresh on %s: %d %v, want %d", s.Clock.Now().Format(time.RFC3339), status, tok, wantStatus)
	}
	if wantStatus != 200 {
		if tok["error"] != wantError {
			t.Fatalf("refresh refused with %v, want %s", tok, wantError)
		}
		return tok
	}
	got, _ := tok["scope"].(string)
	if tok["access_token"] == nil || tok["expires_in"] != float64(oidc.AccessTokenLifetime) || !slices.Contains(strings.Fields(got), scope) {
		t.Fatalf("refresh = %v, want a 300 s access token for %s", tok, scope)
	}
	if tok["refresh_token"] != nil {
		t.Fatalf("refresh rotated the refresh token: %v", tok)
	}
	return tok
}

// activeToken reports whether the authorization server still takes access
// token at as a live token with scope.
func activeToken(t *testing.T, s *apptest.Server, at any, scope string) bool {
	t.Helper()
	raw, _ := at.(string)
	info, err := s.App.AuthServer.TokenInfo(t.Context(), raw)
	return err == nil && info.IsActive && slices.Contains(strings.Fields(info.Scopes), scope)
}

// TestRefreshSweepingConsentDaysLater: the sweeping journey with the
// specification's scope (recurring-consent:{id}) gets a refresh token; three
// days later the first access token is dead and a refresh gives a live one
// for the same scopes; a month later too; once the initiator revokes the
// consent the refresh is invalid_grant.
func TestRefreshSweepingConsentDaysLater(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
			j, id, login := startSweepingJourney(t, s, in)
			scope := "recurring-consent:" + j.consentID
			tok := approveAndExchange(t, j, id, login, approveBody)
			rt := refreshTokenOf(t, tok, scope)
			if !activeToken(t, s, tok["access_token"], scope) {
				t.Fatal("the code exchange's access token is not active")
			}

			s.Clock.Advance(3 * 24 * time.Hour)
			if activeToken(t, s, tok["access_token"], scope) {
				t.Error("an access token is still active three days later")
			}
			later := refresh(t, s, in, rt, scope, 200, "")
			if !strings.Contains(later["scope"].(string), "recurring-payments") || !activeToken(t, s, later["access_token"], scope) {
				t.Fatalf("refreshed token = %v", later)
			}
			// The sweeping transfer the consent exists for, three days after
			// the approval, with the refreshed token; the expired one is 401.
			if r := sweepingPayment(t, s, tok["access_token"].(string), "150.00"); r.Status != 401 {
				t.Errorf("payment with the 3-day-old access token: %d %s", r.Status, r.Body)
			}
			if r := sweepingPayment(t, s, later["access_token"].(string), "150.00"); r.Status != 201 {
				t.Fatalf("payment with the refreshed token: %d %s", r.Status, r.Body)
			}
			s.Clock.Advance(30 * 24 * time.Hour)
			again := refresh(t, s, in, rt, scope, 200, "")
			if r := sweepingPayment(t, s, again["access_token"].(string), "200.00"); r.Status != 201 {
				t.Fatalf("payment a month later: %d %s", r.Status, r.Body)
			}

			// The initiator revokes the consent: no more tokens.
			if _, err := s.App.Recurring.Patch(t.Context(), recurring.PatchInput{
				ApplicationID: s.App.Demo.ID, ConsentID: j.consentID, IdempotencyKey: uuid.NewString(), JTI: uuid.NewString(),
				Request: recurring.PatchRequest{Status: string(recurring.StatusRevoked), Revocation: &recurring.PatchRevocation{
					RevokedBy: recurring.ActorUser, RevokedFrom: recurring.ActorInitiator,
					Reason: &recurring.Reason{Code: "REVOGADO_USUARIO", Detail: "O usuário revogou o consentimento."}}},
			}); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if c, err := s.App.Recurring.Get(t.Context(), s.App.Demo.ID, j.consentID); err != nil || c.Status != recurring.StatusRevoked {
				t.Fatalf("consent after revocation: %+v %v", c, err)
			}
			refresh(t, s, in, rt, scope, 400, "invalid_grant")
			// The access token still inside its 300 seconds moves no money:
			// the payment API refuses the revoked consent with its own code.
			if r := sweepingPayment(t, s, again["access_token"].(string), "10.00"); r.Status != 422 || !strings.Contains(string(r.Body), "CONSENTIMENTO_INVALIDO") {
				t.Errorf("payment under the revoked consent: %d %s", r.Status, r.Body)
			}
		})
	}
}

// sweepingPayment posts a sweeping transfer of amount from the demo
// customer's account to her own account elsewhere, today on the test clock,
// with token (plain JSON: the demo application may send it), and checks
// request and 201 answer against automatic-payments-2.0.0.yml.
func sweepingPayment(t *testing.T, s *apptest.Server, token, amount string) *apptest.Response {
	t.Helper()
	now := s.Clock.Now()
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	suffix := []byte(strings.ReplaceAll(uuid.NewString(), "-", "")[:11])
	for i, c := range suffix {
		suffix[i] = alnum[int(c)%len(alnum)]
	}
	body := fmt.Sprintf(`{"data":{"endToEndId":%q,"date":%q,"payment":{"amount":%q,"currency":"BRL"},
  "creditorAccount":{"ispb":"12345678","issuer":"0001","number":"9876543","accountType":"CACC"},
  "remittanceInformation":"Transferência inteligente","cnpjInitiator":"50685362000135","localInstrument":"MANU",
  "document":{"identification":"47742663023","rel":"CPF"},
  "riskSignals":{"manual":{"deviceId":"5ad82a8f-37e5-4369-a1a3-be4b1fb9c034","osVersion":"17.5","userTimeZoneOffset":"-03",
    "language":"pt-BR","screenDimensions":{"width":390,"height":844},"accountTenure":"2023-01-01","isRootedDevice":false}}}}`,
		"E12345678"+now.UTC().Format("200601021504")+string(suffix), now.In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02"), amount)
	spec := officialspec.Load(t, "automatic-payments-2.0.0.yml")
	validate := func(schema string, b []byte) {
		t.Helper()
		if spec == nil {
			return
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("not JSON: %s", b)
		}
		if err := spec.Components.Schemas[schema].Value.VisitJSON(v); err != nil {
			t.Errorf("%s: %v\n%s", schema, err, b)
		}
	}
	validate("CreateRecurringPixPayment", []byte(body))
	r := s.Do(t, "POST", recurring.PaymentsPath, map[string]string{"Authorization": "Bearer " + token,
		"x-fapi-interaction-id": uuid.NewString(), "x-idempotency-key": uuid.NewString()}, body)
	if r.Status == 201 {
		validate("ResponseRecurringPaymentsIdPost", []byte(strings.ReplaceAll(string(r.Body), s.URL, "https://api.banco.com.br")))
	}
	return r
}

// TestRefreshEndsWithTheConsent: a refresh token never outlives its
// consent. A payment consent's ends with its consumption window; a
// data-sharing consent's at its expirationDateTime (2025-04-15, well inside
// the open-ended ceiling) or when the user revokes it.
func TestRefreshEndsWithTheConsent(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)

			// Payment consent: authorised now, consumable for 60 minutes.
			j, resp := startJourney(t, s, in, phoneUA, "")
			id, login := j.openWebView(t, location(t, resp), "47742663023")
			payScope := "consent:" + j.consentID
			payRT := refreshTokenOf(t, approveAndExchange(t, j, id, login, approveBody), payScope)

			// Data-sharing consents: one kept to its expiry, one revoked.
			dj, did, dlogin := startDataJourney(t, s, in)
			dataScope := "consent:" + dj.consentID
			dataRT := refreshTokenOf(t, approveAndExchange(t, dj, did, dlogin, approveBody), dataScope)
			rj, rid, rlogin := startDataJourney(t, s, in)
			revokedScope := "consent:" + rj.consentID
			revokedRT := refreshTokenOf(t, approveAndExchange(t, rj, rid, rlogin, approveBody), revokedScope)

			s.Clock.Advance(59 * time.Minute)
			refresh(t, s, in, payRT, payScope, 200, "")
			refresh(t, s, in, revokedRT, revokedScope, 200, "")
			if err := s.App.DataConsents.Revoke(t.Context(), rj.consentID, "USER"); err != nil {
				t.Fatalf("revoke the data consent: %v", err)
			}
			refresh(t, s, in, revokedRT, revokedScope, 400, "invalid_grant")

			s.Clock.Advance(2 * time.Minute) // past the consumption window
			refresh(t, s, in, payRT, payScope, 400, "invalid_grant")

			// The data consent ends 2025-04-15T18:55:15Z: its refresh token
			// works the minute before, not the second after.
			end := time.Date(2025, 4, 15, 18, 55, 15, 0, time.UTC)
			s.Clock.Advance(end.Add(-time.Minute).Sub(s.Clock.Now()))
			refresh(t, s, in, dataRT, dataScope, 200, "")
			s.Clock.Advance(time.Minute + time.Second)
			refresh(t, s, in, dataRT, dataScope, 400, "invalid_grant")
		})
	}
}

// TestRecurringConsentScope: PAR takes the specification's
// recurring-consent:{id} for a recurring consent and refuses Ponte's former
// consent:{id} for one; client_credentials never carries either; discovery
// lists the scope and the refresh_token grant.
func TestRecurringConsentScope(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
	c := oidctest.NoRedirects()
	consentID := createRecurring(t, s)
	req := oidctest.NewRequest(consentID)

	pushPAR(t, s, in, req, sweepingScope(consentID)) // 201 or it fails
	req.Scope = "openid recurring-payments consent:" + consentID
	resp := in.PAR(t, c, s.URL, req)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("par with consent:{recurringConsentId}: %d, want 400 invalid_scope", resp.StatusCode)
	}

	for _, scope := range []string{"recurring-payments recurring-consent:" + consentID, "payments consent:urn:ponte:" + uuid.NewString()} {
		status, tok := in.ClientCredentials(t, c, s.URL, scope)
		if status != 400 || tok["error"] != "invalid_scope" {
			t.Errorf("client_credentials for %q: %d %v, want invalid_scope", scope, status, tok)
		}
	}
	if status, tok := in.ClientCredentials(t, c, s.URL, "recurring-payments"); status != 200 || tok["refresh_token"] != nil {
		t.Errorf("client_credentials for recurring-payments: %d %v, want a token without refresh token", status, tok)
	}

	r := s.Do(t, "GET", oidc.PathDiscovery, nil, "")
	var d struct {
		GrantTypes []string `json:"grant_types_supported"`
		Scopes     []string `json:"scopes_supported"`
	}
	r.JSON(t, &d)
	if r.Status != 200 || !slices.Contains(d.GrantTypes, "refresh_token") || !slices.Contains(d.GrantTypes, "authorization_code") ||
		!slices.Contains(d.Scopes, "recurring-consent") || !slices.Contains(d.Scopes, "consent") {
		t.Errorf("discovery: %d grant types %v, scopes %v", r.Status, d.GrantTypes, d.Scopes)
	}
}
