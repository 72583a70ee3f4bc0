package app_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestClientHangUp: a client that disconnects while its request waits on the
// database writer is a client cancellation — 499 in the access log and the
// metrics, nothing at ERROR — and the database holds the whole effect or
// none of it.
func TestClientHangUp(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			token := s.Token(t, "")

			// Hold the writer: SQLite's single group-committed writer runs
			// this transaction until release; on PostgreSQL it locks the
			// tickets table, so the request's INSERT waits behind it.
			held, release, blockerDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				blockerDone <- s.App.DB.Write(context.Background(), func(tx *sql.Tx) error {
					if s.App.DB.Engine() == store.Postgres {
						if _, err := tx.Exec(`LOCK TABLE consent_flow_tickets IN EXCLUSIVE MODE`); err != nil {
							return err
						}
					}
					close(held)
					<-release
					return nil
				})
			}()
			<-held

			// A server of the same app that says when the request arrived,
			// when the server saw its client go, and when it was answered.
			entered, gone, served := make(chan struct{}), make(chan struct{}), make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				go func() { <-r.Context().Done(); close(gone) }()
				s.App.Handler().ServeHTTP(w, r)
				close(served)
			}))
			defer srv.Close()

			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/openfinance/consent-flow/ticket",
				strings.NewReader(`{"requestUri":"urn:r","clientId":"c","documentNumber":"47742663023"}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("idempotencyKey", "hang-up-1")
			req.Header.Set(httpx.CorrelationHeader, "hang-up-request")
			clientErr := make(chan error, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				clientErr <- err
			}()
			<-entered
			cancel() // the client hangs up while the request waits on the writer
			if err := <-clientErr; !errors.Is(err, context.Canceled) {
				t.Fatalf("client: %v, want its cancellation", err)
			}
			<-gone
			close(release)
			if err := <-blockerDone; err != nil {
				t.Fatal(err)
			}
			<-served

			var access map[string]any
			for _, line := range s.Logs.Lines() {
				if line["correlation_id"] != "hang-up-request" {
					continue
				}
				if line["level"] == "ERROR" {
					t.Errorf("logged at ERROR: %v", line)
				}
				if line["msg"] == "request" {
					access = line
				}
			}
			if access == nil || access["status"] != float64(httpx.StatusClientClosedRequest) || access["level"] != "INFO" {
				t.Fatalf("access log line %v, want status 499 at INFO", access)
			}
			metrics := metricsText(t, s)
			if !strings.Contains(metrics, `ponte_http_requests_total{method="POST",route="POST /openfinance/consent-flow/ticket",status="499"} 1`) {
				t.Error("metrics do not count the request as 499")
			}
			if strings.Contains(metrics, `status="500"`) {
				t.Error("metrics count a 5xx")
			}

			// Whole or none: a ticket and its idempotency key are one row.
			var tickets, keyed int
			if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*), COUNT(idempotency_key) FROM consent_flow_tickets`).Scan(&tickets, &keyed); err != nil {
				t.Fatal(err)
			}
			if tickets > 1 || tickets != keyed {
				t.Errorf("%d tickets, %d with the key: a half-written request", tickets, keyed)
			}
		})
	}
}
