package dataconsents_test

import (
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
)

// TestAuthorisationTimeout: 60 minutes unauthorised → REJECTED /
// CONSENT_EXPIRED by the job, also when the process restarted in between.
func TestAuthorisationTimeout(t *testing.T) {
	t.Parallel()
	for _, restart := range []bool{false, true} {
		name := map[bool]string{false: "same process", true: "after restart"}[restart]
		t.Run(name, func(t *testing.T) {
			eachEngine(t, func(t *testing.T, s *apptest.Server) {
				id := create(t, s, happyBody).Data.ConsentID
				if restart {
					s = s.Restart(t)
				}
				s.Clock.Advance(dataconsents.AuthorisationWindow - time.Second)
				if runDue(t, s); storedStatus(t, s, id) != "AWAITING_AUTHORISATION" {
					t.Fatalf("before 60 min: %s", storedStatus(t, s, id))
				}
				s.Clock.Advance(time.Second)
				if n := runDue(t, s); n == 0 {
					t.Fatal("at 60 min: no job ran")
				}
				if st := storedStatus(t, s, id); st != "REJECTED" {
					t.Fatalf("after the timer: %s", st)
				}
				g := get(t, s, id)
				if r := g.Data.Rejection; g.Data.Status != "REJECTED" || r == nil || r.Reason.Code != dataconsents.ReasonConsentExpired ||
					r.RejectedBy != dataconsents.ByASPSP || g.Data.StatusUpdateDateTime != "2024-10-15T19:55:15Z" {
					t.Errorf("expired = %+v %+v", g.Data, r)
				}
				err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
					_, err := s.App.DataConsents.AuthoriseTx(t.Context(), tx, id, s.App.Demo.ID, []string{demoAccounts(t, s)[0].ID})
					return err
				})
				if !errors.Is(err, dataconsents.ErrInvalidTransition) {
					t.Errorf("authorise an expired consent: %v", err)
				}
			})
		})
	}
}

// TestReadBeforeTheJob: a GET or a Grant past the window shows the timeout
// even before the job ran, and AuthoriseTx refuses it.
func TestReadBeforeTheJob(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	id := create(t, s, happyBody).Data.ConsentID
	other := create(t, s, happyBody).Data.ConsentID
	s.Clock.Advance(2 * time.Hour)
	err := s.App.DB.Write(t.Context(), func(tx *sql.Tx) error {
		_, err := s.App.DataConsents.AuthoriseTx(t.Context(), tx, other, s.App.Demo.ID, []string{demoAccounts(t, s)[0].ID})
		return err
	})
	if !errors.Is(err, dataconsents.ErrExpired) {
		t.Errorf("authorise past the window: %v", err)
	}
	g, err := s.App.DataConsents.Grant(t.Context(), id)
	if err != nil || g.Status != "REJECTED" {
		t.Fatalf("grant = %+v %v", g, err)
	}
	if r := get(t, s, id).Data.Rejection; r == nil || r.Reason.Code != dataconsents.ReasonConsentExpired {
		t.Fatalf("rejection = %+v", r)
	}
	runDue(t, s)
	if st := storedStatus(t, s, id); st != "REJECTED" {
		t.Fatalf("status %s", st)
	}
}

// TestMaxDateReached: an AUTHORISED consent becomes REJECTED /
// CONSENT_MAX_DATE_REACHED at its expirationDateTime, across a restart; one
// without an end date never does.
func TestMaxDateReached(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		acct := demoAccounts(t, s)[0].ID
		id := create(t, s, body(demoCPF, accountsPerms, "2024-10-20T18:55:15Z", nil)).Data.ConsentID
		endless := create(t, s, body(demoCPF, accountsPerms, "", nil)).Data.ConsentID
		s.Clock.Advance(10 * time.Minute)
		authorise(t, s, id, acct)
		authorise(t, s, endless, acct)
		g, err := s.App.DataConsents.Grant(t.Context(), id)
		if err != nil || g.Status != "AUTHORISED" || !slices.Equal(g.AccountIDs, []string{acct}) || !slices.Equal(g.Permissions, accountsPerms) ||
			g.ApplicationID != s.App.Demo.ID || g.Document != demoCPF || !g.ExpiresAt.Equal(time.Date(2024, 10, 20, 18, 55, 15, 0, time.UTC)) {
			t.Fatalf("grant = %+v %v", g, err)
		}
		s.Clock.Advance(time.Hour)
		runDue(t, s)
		if st := storedStatus(t, s, id); st != "AUTHORISED" {
			t.Fatalf("after the authorisation window: %s", st)
		}
		s = s.Restart(t)
		s.Clock.Advance(5 * 24 * time.Hour)
		if n := runDue(t, s); n == 0 {
			t.Fatal("no job ran at expirationDateTime")
		}
		if st := storedStatus(t, s, id); st != "REJECTED" {
			t.Fatalf("after expirationDateTime: %s", st)
		}
		if st := storedStatus(t, s, endless); st != "AUTHORISED" {
			t.Fatalf("consent without end: %s", st)
		}
		r := get(t, s, id)
		if rej := r.Data.Rejection; rej == nil || rej.Reason.Code != dataconsents.ReasonConsentMaxDateReached || rej.RejectedBy != dataconsents.ByASPSP ||
			r.Data.StatusUpdateDateTime != "2024-10-20T18:55:15Z" {
			t.Errorf("max date = %+v %+v", r.Data, rej)
		}
	})
}

// TestRevocation: DELETE and Service.Revoke in each status, and what Grant
// answers afterwards.
func TestRevocation(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		svc := s.App.DataConsents
		acct := demoAccounts(t, s)[0].ID
		if _, err := svc.Grant(t.Context(), "urn:ponte:dc:unknown"); !errors.Is(err, dataconsents.ErrNotFound) {
			t.Errorf("grant of an unknown consent: %v", err)
		}
		if err := svc.Revoke(t.Context(), "urn:ponte:dc:unknown", "USER"); !errors.Is(err, dataconsents.ErrNotFound) {
			t.Errorf("revoke an unknown consent: %v", err)
		}
		for _, tc := range []struct {
			name      string
			authorise bool
			by        string // "" → DELETE by the receiver
			wantBy    dataconsents.RejectedBy
			want      dataconsents.ReasonCode
		}{
			{"DELETE awaiting", false, "", dataconsents.ByUser, dataconsents.ReasonCustomerManuallyRejected},
			{"DELETE authorised", true, "", dataconsents.ByUser, dataconsents.ReasonCustomerManuallyRevoked},
			{"user revokes", true, "USER", dataconsents.ByUser, dataconsents.ReasonCustomerManuallyRevoked},
			{"receiver revokes", true, "TPP", dataconsents.ByTPP, dataconsents.ReasonCustomerManuallyRevoked},
			{"holder revokes", true, "ASPSP", dataconsents.ByASPSP, dataconsents.ReasonInternalSecurityReason},
			{"user rejects before authorising", false, "USER", dataconsents.ByUser, dataconsents.ReasonCustomerManuallyRejected},
		} {
			id := create(t, s, happyBody).Data.ConsentID
			g, err := svc.Grant(t.Context(), id)
			if err != nil || g.Status != "AWAITING_AUTHORISATION" || len(g.AccountIDs) != 0 {
				t.Fatalf("%s: grant awaiting = %+v %v", tc.name, g, err)
			}
			if tc.authorise {
				authorise(t, s, id, acct)
				if g, _ := svc.Grant(t.Context(), id); g.Status != "AUTHORISED" || !slices.Equal(g.AccountIDs, []string{acct}) {
					t.Fatalf("%s: grant authorised = %+v", tc.name, g)
				}
			}
			if err := svc.Revoke(t.Context(), id, "SOMEONE"); !errors.Is(err, dataconsents.ErrRejectedBy) {
				t.Errorf("%s: unknown party: %v", tc.name, err)
			}
			if tc.by == "" {
				if r := call(t, s, "DELETE", consentsPath+"/"+id, headers(token(t, s)), "", false); r.Status != http.StatusNoContent {
					t.Fatalf("%s: DELETE %d %s", tc.name, r.Status, r.Body)
				}
			} else if err := svc.Revoke(t.Context(), id, tc.by); err != nil {
				t.Fatalf("%s: revoke: %v", tc.name, err)
			}
			r := get(t, s, id).Data
			if r.Status != "REJECTED" || r.Rejection == nil || r.Rejection.RejectedBy != tc.wantBy || r.Rejection.Reason.Code != tc.want {
				t.Errorf("%s: %+v %+v", tc.name, r, r.Rejection)
			}
			if g, err := svc.Grant(t.Context(), id); err != nil || g.Status != "REJECTED" {
				t.Errorf("%s: grant after = %+v %v", tc.name, g, err)
			}
			if err := svc.Revoke(t.Context(), id, "USER"); !errors.Is(err, dataconsents.ErrAlreadyRejected) {
				t.Errorf("%s: second revoke: %v", tc.name, err)
			}
			wantError(t, call(t, s, "DELETE", consentsPath+"/"+id, headers(token(t, s)), "", false), http.StatusUnprocessableEntity, dataconsents.CodeConsentimentoRejeitado)
		}
	})
}

// TestExtensions: renewals through POST /extends with an authorization_code
// token of the consent, listed newest first by GET /extensions; and each refusal.
func TestExtensions(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		in := oidctest.NewInitiator(t, s.App.AuthServer.Storage(), s.URL, s.App.Demo.ClientID)
		id := create(t, s, body(demoCPF, accountsPerms, "2025-04-15T18:55:15Z", nil)).Data.ConsentID
		tok, scope := journeyToken(t, s, in, id)
		if scope != "openid consents consent:"+id && scope != "consents consent:"+id {
			t.Errorf("scope %q", scope)
		}
		ext := func(tok, b string, h map[string]string) *apptest.Response {
			hd := headers(tok)
			hd[dataconsents.CustomerIPHeader], hd[dataconsents.UserAgentHeader] = "203.0.113.7", "Mozilla/5.0 (Linux)"
			for k, v := range h {
				if v == "" {
					delete(hd, k)
				} else {
					hd[k] = v
				}
			}
			invalid := h != nil && (h[dataconsents.CustomerIPHeader] == "" || h[dataconsents.UserAgentHeader] == "")
			return call(t, s, "POST", consentsPath+"/"+id+"/extends", hd, b, invalid)
		}
		user := func(cpf, exp string) string {
			b := `{"data":{"loggedUser":{"document":{"identification":"` + cpf + `","rel":"CPF"}}`
			if exp != "" {
				b += `,"expirationDateTime":"` + exp + `"`
			}
			return b + `}}`
		}
		// A client_credentials token with the scope consents is not enough.
		wantError(t, ext(token(t, s), user(demoCPF, "2025-09-01T00:00:00Z"), nil), http.StatusForbidden, "FORBIDDEN")
		for _, tc := range []struct {
			name, body string
			h          map[string]string
			status     int
			code       string
		}{
			{"no customer IP", user(demoCPF, "2025-09-01T00:00:00Z"), map[string]string{dataconsents.CustomerIPHeader: ""}, 400, dataconsents.CodeParametroNaoInformado},
			{"no user agent", user(demoCPF, "2025-09-01T00:00:00Z"), map[string]string{dataconsents.UserAgentHeader: ""}, 400, dataconsents.CodeParametroNaoInformado},
			{"another logged user", user("52998224725", "2025-09-01T00:00:00Z"), nil, 422, dataconsents.CodeErroNaoMapeado},
			{"earlier than the current expiration", user(demoCPF, "2025-04-01T00:00:00Z"), nil, 422, dataconsents.CodeDataExpiracaoInvalida},
			{"beyond 12 months", user(demoCPF, "2025-10-15T18:55:16Z"), nil, 422, dataconsents.CodeDataExpiracaoInvalida},
		} {
			r := ext(tok, tc.body, tc.h)
			wantError(t, r, tc.status, tc.code)
			if t.Failed() {
				t.Fatalf("case %s", tc.name)
			}
		}
		s.Clock.Advance(time.Minute)
		r := ext(tok, user(demoCPF, "2025-09-01T00:00:00Z"), nil)
		if r.Status != http.StatusCreated {
			t.Fatalf("extend: %d %s", r.Status, r.Body)
		}
		if g := get(t, s, id).Data; g.ExpirationDateTime != "2025-09-01T00:00:00Z" || g.Status != "AUTHORISED" {
			t.Fatalf("after extend: %+v", g)
		}
		s.Clock.Advance(time.Minute)
		// Then without end date.
		if r := ext(tok, user(demoCPF, ""), nil); r.Status != http.StatusCreated {
			t.Fatalf("extend without end: %d %s", r.Status, r.Body)
		}
		if g := get(t, s, id).Data; g.ExpirationDateTime != "" {
			t.Fatalf("after the endless extension: %+v", g)
		}
		// An endless consent cannot be extended again.
		wantError(t, ext(tok, user(demoCPF, "2025-09-01T00:00:00Z"), nil), http.StatusUnprocessableEntity, dataconsents.CodeDataExpiracaoInvalida)
		list := call(t, s, "GET", consentsPath+"/"+id+"/extensions", headers(token(t, s)), "", false)
		var out struct {
			Data []struct {
				ExpirationDateTime, PreviousExpirationDateTime, RequestDateTime, XFapiCustomerIpAddress, XCustomerUserAgent string
				LoggedUser                                                                                                  dataconsents.Party
			} `json:"data"`
			Meta struct{ TotalRecords, TotalPages int } `json:"meta"`
		}
		list.JSON(t, &out)
		if list.Status != 200 || len(out.Data) != 2 || out.Meta.TotalRecords != 2 || out.Meta.TotalPages != 1 ||
			out.Data[0].ExpirationDateTime != "" || out.Data[0].PreviousExpirationDateTime != "2025-09-01T00:00:00Z" ||
			out.Data[0].RequestDateTime != "2024-10-15T18:57:15Z" ||
			out.Data[1].ExpirationDateTime != "2025-09-01T00:00:00Z" || out.Data[1].PreviousExpirationDateTime != "2025-04-15T18:55:15Z" ||
			out.Data[1].XFapiCustomerIpAddress != "203.0.113.7" || out.Data[1].XCustomerUserAgent != "Mozilla/5.0 (Linux)" ||
			out.Data[1].LoggedUser.Document.Identification != demoCPF {
			t.Fatalf("extensions = %d %+v", list.Status, out)
		}
		// A revoked consent: ESTADO_CONSENTIMENTO_INVALIDO.
		if err := s.App.DataConsents.Revoke(t.Context(), id, "USER"); err != nil {
			t.Fatal(err)
		}
		wantError(t, ext(tok, user(demoCPF, ""), nil), http.StatusUnprocessableEntity, dataconsents.CodeEstadoConsentimentoInvalido)
	})
}
