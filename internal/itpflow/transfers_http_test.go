package itpflow_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// appTokens verifies the Open Keys tokens: each is one application with
// the scope app; "tok-noscope" has none.
type appTokens map[string]string

func (ts appTokens) VerifyAccessToken(_ context.Context, raw string) (*httpx.Principal, error) {
	if raw == "tok-noscope" {
		return &httpx.Principal{ApplicationID: "app-1", ClientID: "app-1"}, nil
	}
	app, ok := ts[raw]
	if !ok {
		return nil, httpx.ErrInvalidToken
	}
	return &httpx.Principal{ApplicationID: app, ClientID: app, Scopes: []string{itp.Scope}}, nil
}

type okAnswer struct {
	status  int
	raw     string
	Error   string `json:"error"`
	Message string `json:"message"`
	Details []struct{ Field, Message string }
	ID      string `json:"id"`
	Status  string `json:"status"`
	itpflow.TransferJSON
}

func send(t *testing.T, srv *httptest.Server, method, path, token, body string) okAnswer {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := okAnswer{status: res.StatusCode, raw: string(b)}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return out
}

const transferJSONBody = `{"journeySessionId":"sess-1","externalId":"order-9","amount":"25.00",
	"creditorAccount":{"ispb":"11222333","issuer":"0001","number":"9876543","accountType":"CACC"},
	"riskSignals":{"manual":{"deviceId":"d","osVersion":"17","userTimeZoneOffset":"-03","language":"pt","screenDimensions":{"height":1,"width":1},"accountTenure":"2023-01-01"}},
	"tags":{"order":"9"}}`

// TestTransfersHTTP: the Open Keys endpoints answer in the family's shape —
// 200 with the transfer (the same for a repeated externalId and body), 409
// for the externalId with another body, 422 with details, 400 naming the
// field, 404 for another application's session or transfer, 401 and 403
// for tokens.
func TestTransfersHTTP(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db)
		h.withPayments(t)
		tr := h.authoriseSweeping(t)
		mux := http.NewServeMux()
		(&itpflow.TransfersHandler{Transfers: tr, Verifier: appTokens{"tok-1": "app-1", "tok-2": "app-2"}, Logger: discard()}).Register(mux)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)

		first := send(t, srv, http.MethodPost, itpflow.TransfersPath, "tok-1", transferJSONBody)
		if first.status != http.StatusOK || first.ID == "" || first.Status != itpflow.PaymentPending || first.Amount != "25.00" ||
			first.ExternalID != "order-9" || first.JourneySessionID != "sess-1" || first.Date != "2024-10-15" || !strings.Contains(first.raw, `"tags":{"order":"9"}`) {
			t.Fatalf("create: %d %s", first.status, first.raw)
		}
		if again := send(t, srv, http.MethodPost, itpflow.TransfersPath, "tok-1", transferJSONBody); again.status != http.StatusOK || again.ID != first.ID {
			t.Errorf("repeat: %d %s", again.status, again.raw)
		}
		if got := send(t, srv, http.MethodGet, itpflow.TransfersPath+"/"+first.ID, "tok-1", ""); got.status != http.StatusOK || got.EndToEndID != first.EndToEndID {
			t.Errorf("read: %d %s", got.status, got.raw)
		}
		second := send(t, srv, http.MethodPost, itpflow.TransfersPath, "tok-1", strings.Replace(transferJSONBody, "order-9", "order-10", 1))
		if second.status != http.StatusOK {
			t.Fatalf("second: %d %s", second.status, second.raw)
		}
		type page struct {
			Data       []struct{ ID string }
			NextCursor string
		}
		list := func(token, query string) (int, page) {
			t.Helper()
			got := send(t, srv, http.MethodGet, itpflow.TransfersPath+query, token, "")
			var pg page
			_ = json.Unmarshal([]byte(got.raw), &pg)
			return got.status, pg
		}
		if code, pg := list("tok-1", "?journeySessionId=sess-1&limit=1"); code != 200 || len(pg.Data) != 1 || pg.Data[0].ID != second.ID || pg.NextCursor == "" {
			t.Errorf("first page: %d %+v", code, pg)
		} else if code, pg := list("tok-1", "?journeySessionId=sess-1&limit=1&cursor="+pg.NextCursor); code != 200 || len(pg.Data) != 1 || pg.Data[0].ID != first.ID || pg.NextCursor != "" {
			t.Errorf("second page: %d %+v", code, pg)
		}
		for query, want := range map[string]int{"?externalId=order-9": 1, "?status=ACSC": 0, "?status=PENDING,ACSC": 2, "?journeySessionId=other": 0} {
			if code, pg := list("tok-1", query); code != 200 || len(pg.Data) != want {
				t.Errorf("list%s: %d %d items, want %d", query, code, len(pg.Data), want)
			}
		}
		if code, pg := list("tok-2", ""); code != 200 || len(pg.Data) != 0 {
			t.Errorf("another application's list: %d %+v", code, pg)
		}
		tests := []struct {
			name, method, path, token, body string
			status                          int
			wantError, wantMessage, field   string
		}{
			{"externalId with another body", "POST", itpflow.TransfersPath, "tok-1", strings.Replace(transferJSONBody, "25.00", "26.00", 1),
				409, "Conflict", itpflow.MsgTransferExternalIDTaken, ""},
			{"bad amount", "POST", itpflow.TransfersPath, "tok-1", strings.Replace(transferJSONBody, `"25.00"`, `"25"`, 1),
				422, "Unprocessable Entity", "Validation failed", "amount"},
			{"amount not a string", "POST", itpflow.TransfersPath, "tok-1", strings.Replace(transferJSONBody, `"25.00"`, `25`, 1),
				400, "Validation Error", "Campo 'amount' inválido", ""},
			{"missing riskSignals", "POST", itpflow.TransfersPath, "tok-1", `{"journeySessionId":"sess-1","externalId":"x","amount":"1.00","creditorAccount":{"ispb":"11222333","issuer":"1","number":"1","accountType":"CACC"}}`,
				400, "Validation Error", "Campo 'riskSignals' inválido", ""},
			{"not JSON", "POST", itpflow.TransfersPath, "tok-1", `{`, 400, "Validation Error", "Campo 'body' inválido", ""},
			{"another application's session", "POST", itpflow.TransfersPath, "tok-2", transferJSONBody, 404, "Not Found", itp.MsgSessionNotFound, ""},
			{"another application's transfer", "GET", itpflow.TransfersPath + "/" + first.ID, "tok-2", "", 404, "Not Found", itpflow.MsgTransferNotFound, ""},
			{"no token", "POST", itpflow.TransfersPath, "", transferJSONBody, 401, "Unauthorized", itp.MsgUnauthorized, ""},
			{"token without app", "GET", itpflow.TransfersPath + "/" + first.ID, "tok-noscope", "", 403, "Forbidden", "", ""},
			{"list: unknown status", "GET", itpflow.TransfersPath + "?status=DONE", "tok-1", "", 422, "Unprocessable Entity", "Validation failed", "status"},
			{"list: bad cursor", "GET", itpflow.TransfersPath + "?cursor=!!", "tok-1", "", 422, "Unprocessable Entity", "Validation failed", "cursor"},
			{"list: limit 0", "GET", itpflow.TransfersPath + "?limit=0", "tok-1", "", 422, "Unprocessable Entity", "Validation failed", "limit"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := send(t, srv, tt.method, tt.path, tt.token, tt.body)
				if got.status != tt.status || got.Error != tt.wantError || (tt.wantMessage != "" && got.Message != tt.wantMessage) {
					t.Fatalf("%d %s; want %d %s %q", got.status, got.raw, tt.status, tt.wantError, tt.wantMessage)
				}
				if tt.field != "" && (len(got.Details) == 0 || got.Details[0].Field != tt.field) {
					t.Errorf("details = %+v, want field %s", got.Details, tt.field)
				}
			})
		}

		// Without its CNPJ as an initiator Ponte says so, and records nothing.
		tr.Payments.Initiator = itpflow.Initiator{}
		unconfigured := send(t, srv, http.MethodPost, itpflow.TransfersPath, "tok-1", strings.Replace(transferJSONBody, "order-9", "order-11", 1))
		if unconfigured.status != http.StatusServiceUnavailable || unconfigured.Message != itpflow.MsgInitiatorNotConfigured {
			t.Errorf("no initiator CNPJ: %d %s", unconfigured.status, unconfigured.raw)
		}
		if code, pg := list("tok-1", "?externalId=order-11"); code != 200 || len(pg.Data) != 0 {
			t.Errorf("a refused transfer was recorded: %d %+v", code, pg)
		}
	})
}
