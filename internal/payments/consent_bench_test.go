package payments_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// BenchmarkConsentCreateHTTPOnPostgres measures a whole POST /consents
// (plain JSON, the demo application) through the handler on PostgreSQL,
// serially: token verification, the cached caller, validation and the
// create's one statement.
func BenchmarkConsentCreateHTTPOnPostgres(b *testing.B) {
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		b.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	s := apptest.Start(b, apptest.Options{DatabaseURL: storetest.FreshSchema(b, base)})
	tok := s.Token(b, "payments")
	h := s.App.Handler()
	post := func(key string) {
		r := httptest.NewRequest(http.MethodPost, payments.ConsentsPath, strings.NewReader(happyBody))
		for k, v := range headers(tok, key) {
			r.Header.Set(k, v)
		}
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusCreated {
			b.Fatalf("POST /consents: %d %s", w.Code, w.Body)
		}
	}
	for i := range 4 {
		post(fmt.Sprint("warm-", i))
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		post(fmt.Sprint("bench-", i))
	}
}
