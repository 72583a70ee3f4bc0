package itp_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const sessionsPath = itp.SessionsPath

// partner is a partner application with scope "app" and its token.
type partner struct {
	app    *auth.Application
	secret string
	token  string
}

// fixture is a running Ponte with one brand, one journey and one partner
// whose default journey is that one.
type fixture struct {
	srv     *apptest.Server
	brand   *itp.Brand
	journey *itp.Journey
	partner partner
}

var redirects = []string{"https://partner.example/callback", "http://localhost:8080/callback"}

// eachEngine runs fn against a fresh Ponte on every engine.
func eachEngine(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			fn(t, newFixture(t, apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})))
		})
	}
}

func newFixture(t testing.TB, srv *apptest.Server) *fixture {
	t.Helper()
	ctx := context.Background()
	svc := srv.App.ITP
	svc.Getenv = func(string) string { return "" } // no JOURNEY_DEFAULT_ALIAS from the test's environment
	brand, err := svc.AddBrand(ctx, itp.Brand{Name: "Banco Exemplo", Issuer: "https://auth.banco.example",
		APIBaseURL: "https://api.banco.example", ClientID: "ponte-at-banco"})
	if err != nil {
		t.Fatal(err)
	}
	journey, err := svc.CreateJourney(ctx, itp.Journey{Alias: "sweeping", Name: "Sweeping", BrandIDs: []string{brand.ID},
		Settings: []itp.Setting{
			{Key: itp.SettingPrioritiesBrands, Value: []byte(`["` + brand.ID + `"]`)},
			{Key: itp.SettingJourneyRules, Value: []byte(`["rule-journey"]`)},
		}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, brand: brand, journey: journey}
	f.partner = f.newPartner(t, "Parceiro", redirects...)
	if err := svc.SetDefaultJourney(ctx, f.partner.app.ID, "sweeping"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) newPartner(t testing.TB, name string, redirectURLs ...string) partner {
	t.Helper()
	a, secret, err := f.srv.App.Apps.Create(context.Background(), auth.NewApplication{Name: name, CompanyKey: "P" + name,
		Scopes: []string{itp.Scope, "payments"}, RedirectURLs: redirectURLs})
	if err != nil {
		t.Fatalf("create application with scope %q: %v", itp.Scope, err)
	}
	return partner{app: a, secret: secret, token: f.srv.TokenFor(t, a.ClientID, secret, itp.Scope)}
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func (f *fixture) create(t *testing.T, token, body string) *apptest.Response {
	t.Helper()
	return f.srv.Do(t, http.MethodPost, sessionsPath, bearer(token), body)
}

func (f *fixture) mustCreate(t *testing.T, body string) sessionResp {
	t.Helper()
	r := f.create(t, f.partner.token, body)
	if r.Status != http.StatusOK {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	var s sessionResp
	r.JSON(t, &s)
	return s
}

func (f *fixture) get(t *testing.T, token, id string) *apptest.Response {
	t.Helper()
	return f.srv.Do(t, http.MethodGet, sessionsPath+"/"+id, bearer(token), "")
}

func (f *fixture) mustGet(t *testing.T, id string) sessionResp {
	t.Helper()
	r := f.get(t, f.partner.token, id)
	if r.Status != http.StatusOK {
		t.Fatalf("get %s: %d %s", id, r.Status, r.Body)
	}
	var s sessionResp
	r.JSON(t, &s)
	return s
}

type sessionResp struct {
	ID                   string `json:"id"`
	JourneyID            string `json:"journeyId"`
	JourneySessionURL    string `json:"journeySessionUrl"`
	ApplicationClientID  string `json:"applicationClientId"`
	ApplicationID        string `json:"applicationId"`
	TokenID              string `json:"tokenId"`
	Status               string `json:"status"`
	PaymentInitiationAPI string `json:"paymentInitiationApi"`
	RedirectURL          string `json:"redirectUrl"`
	BrandID              string `json:"brandId"`
	ExternalID           string `json:"externalId"`
	ConsentID            string `json:"consentId"`
	Settings             []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"settings"`
	Tags          map[string]any `json:"tags"`
	StatusHistory []struct {
		UpdatedAt string `json:"updatedAt"`
		Status    string `json:"status"`
	} `json:"statusHistory"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
}

func (s sessionResp) statuses() []string {
	out := make([]string, len(s.StatusHistory))
	for i, h := range s.StatusHistory {
		out[i] = h.Status
	}
	return out
}

type errResp struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Details []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"details"`
}

// wantError checks an Open Keys error response.
func wantError(t *testing.T, r *apptest.Response, status int, title, message string) errResp {
	t.Helper()
	var e errResp
	r.JSON(t, &e)
	if r.Status != status || e.Error != title || e.Message != message {
		t.Errorf("got %d %s, want %d {%q, %q}", r.Status, r.Body, status, title, message)
	}
	return e
}

// refreshToken gets the partner a new token after the clock moved past the old one's expiry.
func (f *fixture) refreshToken(t *testing.T) {
	t.Helper()
	f.partner.token = f.srv.TokenFor(t, f.partner.app.ClientID, f.partner.secret, itp.Scope)
}
