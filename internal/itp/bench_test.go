package itp_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// BenchmarkCreateSession runs journey-session creates (with an externalId
// and a tag) through Ponte's whole handler, 8 at a time, on each engine:
//
//	go test ./internal/itp -run '^$' -bench CreateSession -benchtime 3s
func BenchmarkCreateSession(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			f := newFixture(b, apptest.Start(b, apptest.Options{DatabaseURL: e.URL(b)}))
			h := f.srv.App.Handler()
			var n atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := `{"externalId":"b-` + strconv.FormatInt(n.Add(1), 10) + `","tags":{"k":"v"}}`
					req := httptest.NewRequest(http.MethodPost, sessionsPath, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+f.partner.token)
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("create: %d %s", rec.Code, rec.Body)
						return
					}
				}
			})
		})
	}
}
