package app_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestPCMReportRoundTrips: a PCM report on PostgreSQL takes one round trip
// for the whole request once warm (token verification cached, the
// statement prepared): app's ownership query over the four kinds of
// consent, the event and its outbox row are one statement. A repeated
// report is answered by that statement too.
func TestPCMReportRoundTrips(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	s := apptest.Start(t, apptest.Options{DatabaseURL: storetest.FreshSchema(t, base), Clock: wallClock(t)})
	today := s.Clock.Now().In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02")
	body := strings.ReplaceAll(consentBody, "2024-10-15", today)
	consents := []string{
		createConsent(t, s, s.Token(t, "payments"), body),
		createConsent(t, s, s.Token(t, "payments"), body),
	}
	token := s.Token(t, pcm.ScopeReport)
	report := func(consentID, step string) (int, int64) {
		ctx, n := store.CountRoundTrips(t.Context())
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/journey/v1/consents/"+url.PathEscape(consentID)+"/report",
			strings.NewReader(`{"step":"`+step+`","data":{"platform":"APP","os":"ANDROID","osVersion":"14"}}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		s.App.Handler().ServeHTTP(rec, req)
		return rec.Code, n.N()
	}
	// Warm up on the first consent.
	for range 3 {
		if code, _ := report(consents[0], pcm.StepAuthenticated); code != http.StatusCreated {
			t.Fatalf("warm-up report: %d", code)
		}
	}
	for _, c := range []struct {
		name, consent string
		status        int
	}{
		{"fresh", consents[1], http.StatusCreated},
		{"repeated", consents[1], http.StatusCreated},
		{"not the caller's", "urn:ponte:unknown", http.StatusNotFound},
	} {
		code, n := report(c.consent, pcm.StepAuthenticated)
		if code != c.status || n != 1 {
			t.Errorf("%s: %d, %d round trips; want %d, 1", c.name, code, n, c.status)
		}
	}
}
