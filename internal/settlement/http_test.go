package settlement_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// tokens maps bearer tokens to principals.
type tokens map[string]*httpx.Principal

func (m tokens) VerifyAccessToken(_ context.Context, raw string) (*httpx.Principal, error) {
	if p, ok := m[raw]; ok {
		return p, nil
	}
	return nil, httpx.ErrInvalidToken
}

type errorsBody struct {
	Errors []struct{ Code, Title, Detail string } `json:"errors"`
	Meta   struct {
		RequestDateTime string `json:"requestDateTime"`
	} `json:"meta"`
}

// TestReportRoute drives POST /admin/v1/settlements/{paymentId}: tokens and
// scope, validation listing every field, tenant isolation, idempotent
// reports and conflicts, in the Open Finance error shape.
func TestReportRoute(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newPartnerFixture(t, db)
		f.ask(t, f.transfer("h-1", "11110001", "22220002", 4321))
		f.ask(t, f.transfer("h-2", "11110001", "22220002", 100))
		mux := http.NewServeMux()
		(&settlement.Handler{Partner: f.partner, Clock: f.clock, Logger: slog.New(slog.DiscardHandler), Verifier: tokens{
			"holder":  {ApplicationID: holderApp, Scopes: []string{settlement.ScopeAdmin}},
			"other":   {ApplicationID: otherApp, Scopes: []string{settlement.ScopeAdmin}},
			"noscope": {ApplicationID: holderApp, Scopes: []string{"payments"}},
		}}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		post := func(token, id, body string) (int, []byte) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/admin/v1/settlements/"+id, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		wantError := func(name string, status int, body []byte, wantStatus int, code string, details ...string) {
			t.Helper()
			var e errorsBody
			if status != wantStatus || json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 || e.Errors[0].Code != code || e.Meta.RequestDateTime == "" {
				t.Errorf("%s: %d %s, want %d %s", name, status, body, wantStatus, code)
				return
			}
			if len(details) > 0 && len(e.Errors) != len(details) {
				t.Errorf("%s: %d errors, want %d: %s", name, len(e.Errors), len(details), body)
				return
			}
			for i, d := range details {
				if !strings.HasPrefix(e.Errors[i].Detail, d) {
					t.Errorf("%s: error %d is %q, want it to start with %q", name, i, e.Errors[i].Detail, d)
				}
			}
		}

		s, b := post("", "h-1", `{"status":"ACSC"}`)
		wantError("no token", s, b, 401, "UNAUTHORIZED")
		s, b = post("noscope", "h-1", `{"status":"ACSC"}`)
		wantError("no payments.admin", s, b, 403, "FORBIDDEN")
		s, b = post("holder", "h-1", `{"status":7,"rejectionReason":{"code":1}}`)
		wantError("types", s, b, 400, "PARAMETRO_INVALIDO", "status", "rejectionReason.code")
		s, b = post("holder", "h-1", `{}`)
		wantError("missing status", s, b, 400, "PARAMETRO_INVALIDO", "status is required")
		s, b = post("holder", "h-1", `{"status":"RJCT","rejectionReason":{"detail":"x"}}`)
		wantError("RJCT without code", s, b, 400, "PARAMETRO_INVALIDO", "rejectionReason.code")
		s, b = post("holder", "h-1", `{"status":"RJCT","rejectionReason":{"code":"NOPE"}}`)
		wantError("unknown code", s, b, 400, "PARAMETRO_INVALIDO", "rejectionReason.code must be a rejection code of the Payments v4 API")
		s, b = post("holder", "h-1", `not json`)
		wantError("not JSON", s, b, 400, "PARAMETRO_INVALIDO")
		s, b = post("other", "h-1", `{"status":"ACSC"}`)
		wantError("another partner's payment", s, b, 404, "NOT_FOUND")
		s, b = post("holder", "nope", `{"status":"ACSC"}`)
		wantError("unknown payment", s, b, 404, "NOT_FOUND")

		var first []byte
		for i := range 2 {
			s, b = post("holder", "h-1", `{"status":"ACSC"}`)
			var got map[string]any
			if s != 200 || json.Unmarshal(b, &got) != nil || got["status"] != "ACSC" || got["amount"] != "43.21" || got["paymentId"] != "h-1" ||
				got["kind"] != "pix-payment" || got["endToEndId"] == "" || got["rejectionReason"] != nil {
				t.Fatalf("report #%d: %d %s", i+1, s, b)
			}
			if i == 1 && string(b) != string(first) {
				t.Errorf("the same report answered differently:\n%s\n%s", first, b)
			}
			first = b
		}
		if _, settled, _ := f.rec.counts(); settled != 1 {
			t.Errorf("%d settled outcomes, want 1", settled)
		}
		s, b = post("holder", "h-1", `{"status":"RJCT","rejectionReason":{"code":"SALDO_INSUFICIENTE"}}`)
		wantError("another outcome", s, b, 409, "CONFLICT")

		s, b = post("holder", "h-2", `{"status":"PDNG","rejectionReason":{"code":"SALDO_INSUFICIENTE"}}`)
		wantError("PDNG with a reason", s, b, 400, "PARAMETRO_INVALIDO", "rejectionReason must be absent when status is PDNG")
		s, b = post("holder", "h-2", `{"status":"PDNG"}`)
		if s != 200 || !strings.Contains(string(b), `"status":"PDNG"`) {
			t.Errorf("hold: %d %s", s, b)
		}
		s, b = post("holder", "h-2", `{"status":"RJCT","rejectionReason":{"code":"SALDO_INSUFICIENTE","detail":"Saldo insuficiente na conta."}}`)
		var got struct {
			Status          string
			RejectionReason struct{ Code, Detail string }
		}
		if s != 200 || json.Unmarshal(b, &got) != nil || got.Status != "RJCT" || got.RejectionReason.Code != "SALDO_INSUFICIENTE" ||
			got.RejectionReason.Detail != "Saldo insuficiente na conta." {
			t.Errorf("rejection: %d %s", s, b)
		}
	})
}
