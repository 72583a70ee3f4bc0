package cards_test

import (
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
)

// Proxies are per application: another partner may use the same card id,
// and neither sees the other's card.
func TestProxyIsPerApplication(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	other, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Other", CompanyKey: "OTHER",
		Scopes: []string{"card.admin.write", "card.admin.read", "card.pci.token.create"}})
	if err != nil {
		t.Fatal(err)
	}
	otherTok := s.TokenFor(t, other.ClientID, secret, "")
	if r := s.Do(t, "POST", "/admin/v1/cards", authz(otherTok), cardBody("sandbox-card-active", freshPAN(t), nil)); r.Status != 201 {
		t.Fatalf("other application, same proxy: %d %s", r.Status, r.Body)
	}
	var mine, theirs cardJSON
	s.Do(t, "GET", "/admin/v1/cards/sandbox-card-active", authz(s.Token(t, "")), "").JSON(t, &mine)
	s.Do(t, "GET", "/admin/v1/cards/sandbox-card-active", authz(otherTok), "").JSON(t, &theirs)
	if mine.LastFourDigits != "1471" || theirs.LastFourDigits == "1471" {
		t.Errorf("cards mixed between applications: mine %s, theirs %s", mine.LastFourDigits, theirs.LastFourDigits)
	}
	// The other partner's card is CREATING; the demo's is ACTIVE: each token request sees its own.
	if r := s.Do(t, "POST", tokenPath("sandbox-card-active", "GooglePay"), v1(otherTok), ""); r.Status != 409 {
		t.Errorf("other application's token request: %d, want 409 for its own CREATING card", r.Status)
	}
	if r := s.Do(t, "POST", tokenPath("sandbox-card-active", "GooglePay"), v1(s.Token(t, "")), ""); r.Status != 200 {
		t.Errorf("demo token request: %d", r.Status)
	}
}

// Google Pay needs an ISO alpha-3 country: anything that cannot become one is
// refused when the card is registered, not when a wallet payload is built.
func TestCountryMustMapToAlpha3(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	tok := s.Token(t, "")
	for country, want := range map[string]int{"Portugal": 400, "PRT": 201, "brazil": 201, "BR": 201} {
		body := cardBody("c-"+strings.ToLower(country), freshPAN(t), func(m map[string]any) {
			m["address"].(map[string]any)["country"] = country
		})
		r := s.Do(t, "POST", "/admin/v1/cards", authz(tok), body)
		if r.Status != want {
			t.Errorf("country %q: %d %s, want %d", country, r.Status, r.Body, want)
		}
		if want == 400 && !strings.Contains(string(r.Body), "address.country") {
			t.Errorf("country %q: error does not name address.country: %s", country, r.Body)
		}
	}
}

// The same certificate chain re-sent with other line endings is the same
// request: the stored payload comes back, not NONCE_ALREADY_USED.
func TestCertificateCompareAsParsed(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	tok := s.Token(t, "")
	d := newDevice(t, s, s.Clock.Now())
	nonce, sig := randomHex(t, 16), randomHex(t, 64)
	first := s.Do(t, "POST", tokenPath("sandbox-card-active", "ApplePay"), v1(tok), appleBody(nonce, sig, d.certPEM))
	crlf := strings.ReplaceAll(d.certPEM, "\n", "\r\n") + "\r\n"
	second := s.Do(t, "POST", tokenPath("sandbox-card-active", "ApplePay"), v1(tok), appleBody(nonce, sig, crlf))
	if first.Status != 200 || second.Status != 200 || string(first.Body) != string(second.Body) {
		t.Errorf("same chain, CRLF line endings: %d / %d, bodies equal %v", first.Status, second.Status, string(first.Body) == string(second.Body))
	}
}

// A notification naming another wallet than the token's is refused.
func TestNotificationWalletMismatch(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	pan := "5204247750001471"
	if r := notify(t, s, notification("n-1", "TOKEN_CREATED", "ApplePay", "tok-1", pan)); r.Status != 204 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if r := notify(t, s, notification("n-2", "TOKEN_ACTIVATED", "GooglePay", "tok-1", pan)); r.Status != 409 {
		t.Errorf("wallet mismatch: %d %s, want 409", r.Status, r.Body)
	}
	got := walletTokens(t, s, s.Token(t, ""), "sandbox-card-active")
	if len(got) != 1 || got[0].Status != "INACTIVE" || got[0].Wallet != "ApplePay" {
		t.Errorf("tokens after refused notification: %+v", got)
	}
}
