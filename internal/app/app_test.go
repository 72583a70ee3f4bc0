package app_test

import (
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/api"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func TestOperations(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			if r := s.Do(t, "GET", "/healthz", nil, ""); r.Status != 200 {
				t.Errorf("healthz %d", r.Status)
			}
			r := s.Do(t, "GET", "/readyz", nil, "")
			if r.Status != 200 || !strings.Contains(string(r.Body), `"database":"`+e.Name+`"`) {
				t.Errorf("readyz %d %s", r.Status, r.Body)
			}
			// With the database gone, the process is still up but not ready.
			s.App.DB.Close()
			if r := s.Do(t, "GET", "/readyz", nil, ""); r.Status != 503 {
				t.Errorf("readyz without database: %d", r.Status)
			}
			if r := s.Do(t, "GET", "/healthz", nil, ""); r.Status != 200 {
				t.Errorf("healthz without database: %d", r.Status)
			}
		})
	}
}

func TestMetricsAndContractServed(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	tok := s.Token(t, "")
	body := `{"requestUri":"r","clientId":"c","documentNumber":"47742663023"}`
	s.Do(t, "POST", "/openfinance/consent-flow/ticket", map[string]string{"Authorization": "Bearer " + tok}, body)
	s.Do(t, "POST", "/openfinance/consent-flow/ticket", nil, body)
	s.Do(t, "GET", "/openfinance/consent-flow/ticket/0123456789abcdef0123456789abcdef", map[string]string{"Authorization": "Bearer " + tok}, "")
	m := metricsText(t, s)
	for _, want := range []string{
		`ponte_http_requests_total{method="POST",route="POST /openfinance/consent-flow/ticket",status="201"} 1`,
		`ponte_http_requests_total{method="POST",route="POST /openfinance/consent-flow/ticket",status="401"} 1`,
		// Labelled by pattern, not by path: ticket ids never become label values.
		`ponte_http_requests_total{method="GET",route="GET /openfinance/consent-flow/ticket/{ticketId}",status="404"} 1`,
		`ponte_http_request_duration_seconds_count{route="POST /openfinance/consent-flow/ticket"} 2`,
		`ponte_tickets_created_total 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, "0123456789abcdef") {
		t.Error("a ticket id leaked into metric labels")
	}
	r := s.Do(t, "GET", "/openapi.yaml", nil, "")
	if r.Status != 200 || string(r.Body) != string(api.OpenAPI) {
		t.Errorf("/openapi.yaml: %d, %d bytes", r.Status, len(r.Body))
	}
	root := s.Do(t, "GET", "/", nil, "")
	if root.Status != 200 || !strings.Contains(string(root.Body), `"mode":"sandbox"`) {
		t.Errorf("root: %d %s", root.Status, root.Body)
	}
}

// TestLogsCarryNoSecrets runs the whole ticket journey and checks the log:
// every request line has a correlation id; no client secret, access token,
// session cookie or document number appears.
func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	tok := s.Token(t, "")
	resp := s.Do(t, "POST", "/openfinance/consent-flow/ticket", map[string]string{"Authorization": "Bearer " + tok, "x-correlation-id": "corr-log-1"},
		`{"requestUri":"r","clientId":"c","documentNumber":"47742663023"}`)
	var tk struct {
		TicketID string `json:"ticketId"`
	}
	resp.JSON(t, &tk)
	page := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+tk.TicketID, nil, "")
	cookie := strings.TrimPrefix(strings.Split(page.Header.Get("Set-Cookie"), ";")[0], "ponte_holder_session=")
	logs := s.Logs.String()
	for name, secret := range map[string]string{"client secret": s.App.DemoSecret, "access token": tok, "session cookie": cookie,
		"document number": "47742663023", "ticket id": tk.TicketID} {
		if secret == "" || strings.Contains(logs, secret) {
			t.Errorf("%s found in the logs (or empty)", name)
		}
	}
	found := false
	for _, l := range s.Logs.Lines() {
		if l["msg"] == "request" && l["correlation_id"] == nil {
			t.Errorf("access log line without correlation_id: %v", l)
		}
		if l["correlation_id"] == "corr-log-1" && l["route"] == "POST /openfinance/consent-flow/ticket" {
			found = true
		}
	}
	if !found {
		t.Error("no access log line for the ticket request with its correlation id")
	}
}
