package settlement_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/officialspec"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// grants is a consent store with one consent sharing the accounts of ids.
type grants struct{ ids []string }

func (g grants) Grant(_ context.Context, id string) (*dataapi.Grant, error) {
	if id != "c-1" {
		return nil, dataapi.ErrGrantNotFound
	}
	return &dataapi.Grant{ConsentID: id, ApplicationID: "app-receiver", Document: maria, Status: dataapi.ConsentAuthorised,
		Permissions: []string{dataapi.PermAccountsRead, dataapi.PermBalancesRead, dataapi.PermTransactionsRead}, AccountIDs: g.ids}, nil
}

type dataTokens struct{}

func (dataTokens) VerifyToken(_ context.Context, raw string) (*dataapi.Token, error) {
	if raw != "data-token" {
		return nil, dataapi.ErrInvalidToken
	}
	return &dataapi.Token{ApplicationID: "app-receiver", ClientID: "app-receiver", Scopes: []string{"openid", dataapi.ScopeAccounts, "consent:c-1"}}, nil
}

// TestLedgerThroughAccountsAPI: a settled payment is in the debtor's
// balances and transactions as the Accounts API 2.4.2 serves them over
// HTTP, the moment its transaction commits, in the official schemas' shape.
func TestLedgerThroughAccountsAPI(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, map[string]string{"11110001": "250.00", "22220002": "0.00"})
		debtor := f.accts["11110001"].ID
		svc := dataapi.NewService(db, f.clock, grants{ids: []string{debtor}})
		mux := http.NewServeMux()
		(&dataapi.Handler{Service: svc, Tokens: dataTokens{}, Institution: dataapi.SandboxInstitution, BaseURL: "https://ponte.example.com",
			Logger: slog.New(slog.DiscardHandler)}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		get := func(path string) map[string]any {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+dataapi.AccountsPath+"/"+debtor+path, nil)
			req.Header.Set("Authorization", "Bearer data-token")
			req.Header.Set(dataapi.InteractionHeader, "6f2c8a0e-5d7b-4c1e-9a3f-2b4d6e8f0a1c")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var m map[string]any
			if resp.StatusCode != 200 || json.Unmarshal(b, &m) != nil {
				t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
			}
			return m
		}
		tr := f.transfer("api-1", "11110001", "22220002", 7550)
		if err := f.reserve(t, tr); err != nil {
			t.Fatal(err)
		}
		bal := get("/balances")["data"].(map[string]any)
		if amt(bal, "availableAmount") != "174.50" || amt(bal, "blockedAmount") != "75.50" {
			t.Errorf("balances after the reservation: %v", bal)
		}
		if _, err := f.settle(t, tr); err != nil {
			t.Fatal(err)
		}
		bal = get("/balances")["data"].(map[string]any)
		if amt(bal, "availableAmount") != "174.50" || amt(bal, "blockedAmount") != "0.00" {
			t.Errorf("balances after settlement: %v", bal)
		}
		page := get("/transactions?fromBookingDate=2026-12-06&toBookingDate=2026-12-08")
		data, _ := page["data"].([]any)
		if len(data) != 1 {
			t.Fatalf("transactions: %v", page)
		}
		tx := data[0].(map[string]any)
		if tx["transactionId"] != tr.EndToEndID || tx["creditDebitType"] != "DEBITO" || tx["type"] != "PIX" ||
			amt(tx, "transactionAmount") != "75.50" || tx["transactionDateTime"] != "2026-12-07T12:00:00.000Z" {
			t.Errorf("transaction: %v", tx)
		}
		if doc := officialspec.Load(t, "accounts-2.4.2.yml"); doc != nil {
			for schema, v := range map[string]any{"AccountBalancesData": bal, "AccountTransactionsData": tx} {
				if err := doc.Components.Schemas[schema].Value.VisitJSON(v); err != nil {
					t.Errorf("%s does not match the official schema: %v\n%v", schema, err, v)
				}
			}
		}
	})
}

// amt reads an Accounts API amount object's amount.
func amt(m map[string]any, field string) string {
	a, _ := m[field].(map[string]any)
	s, _ := a["amount"].(string)
	return s
}
