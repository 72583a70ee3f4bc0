package dataapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const importJSON = `{
  "account": {"compeCode": "123", "brandName": "Banco Beta", "companyCnpj": "11444777000161"},
  "balances": {"availableAmount": "-12.50", "blockedAmount": "0.00", "automaticallyInvestedAmount": "100.0000"},
  "overdraftLimits": {"overdraftContractedLimit": "500.00", "overdraftUsedLimit": "12.50"},
  "transactions": [
    {"transactionId": "B-1", "completedAuthorisedPaymentType": "TRANSACAO_EFETIVADA", "creditDebitType": "DEBITO",
     "transactionName": "PIX ENVIADO", "type": "PIX", "amount": "12.50", "transactionDateTime": "2026-03-09T10:00:00Z",
     "partieCnpjCpf": "12345678909", "partiePersonType": "PESSOA_NATURAL"}
  ]
}`

const importCSV = "transactionId,completedAuthorisedPaymentType,creditDebitType,transactionName,type,amount,transactionDateTime\n" +
	"B-1,TRANSACAO_EFETIVADA,DEBITO,PIX ENVIADO (corrigido),PIX,13.50,2026-03-09T10:00:00Z\n" +
	"B-2,TRANSACAO_EFETIVADA,CREDITO,\"SALARIO, MARCO\",FOLHA_PAGAMENTO,4200.00,2026-03-10T09:00:00-03:00\n"

func TestImport(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		post := func(t *testing.T, scopes []string, contentType, body string) (int, map[string]any) {
			t.Helper()
			tok, err := f.admin.Issue(f.holderB, scopes)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/admin/v1/customers/"+dataapi.SandboxDocument+"/accounts/55554444/data", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", contentType)
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
				t.Fatal(err)
			}
			return resp.StatusCode, m
		}
		if status, body := post(t, []string{dataapi.ScopeAdminWrite}, "application/json", importJSON); status != http.StatusOK ||
			body["accountId"] != f.accountB || body["transactions"] != 1.0 {
			t.Fatalf("JSON import: %d %v", status, body)
		}
		if status, body := post(t, []string{dataapi.ScopeAdminWrite}, "text/csv", importCSV); status != http.StatusOK || body["transactions"] != 2.0 {
			t.Fatalf("CSV import: %d %v", status, body)
		}
		// Re-importing is idempotent: B-1 was replaced, not duplicated.
		if status, _ := post(t, []string{dataapi.ScopeAdminWrite}, "text/csv", importCSV); status != http.StatusOK {
			t.Fatal("re-import")
		}
		f.grants.put(dataapi.Grant{ConsentID: "urn:ponte:b", ApplicationID: f.receiver.ID, Document: dataapi.SandboxDocument,
			Status: dataapi.ConsentAuthorised, Permissions: allPermissions, AccountIDs: []string{f.accountB}, ExpiresAt: f.clock.Now().AddDate(0, 1, 0)})
		tok := f.tokenFor("urn:ponte:b", f.receiver.ID)
		_, body := f.get(t, tok, dataapi.AccountsPath+"/"+f.accountB+"/transactions?fromBookingDate=2026-03-01&toBookingDate=2026-03-10")
		got := dataList(body)
		if len(got) != 2 || got[0]["transactionId"] != "B-2" || got[1]["transactionAmount"].(map[string]any)["amount"] != "13.50" {
			t.Errorf("transactions after import: %v", got)
		}
		_, body = f.get(t, tok, dataapi.AccountsPath)
		if a := dataList(body)[0]; a["compeCode"] != "123" || a["brandName"] != "Banco Beta" {
			t.Errorf("profile: %v", a)
		}
		_, body = f.get(t, tok, dataapi.AccountsPath+"/"+f.accountB+"/balances")
		if got := body["data"].(map[string]any)["availableAmount"].(map[string]any)["amount"]; got != "-12.50" {
			t.Errorf("balances: %v", got)
		}

		for _, tc := range []struct {
			name, contentType, body string
			scopes                  []string
			status                  int
		}{
			{"without the scope", "application/json", importJSON, []string{"payments"}, http.StatusForbidden},
			{"bad amount", "application/json", strings.Replace(importJSON, `"12.50", "transactionDateTime"`, `"12.5", "transactionDateTime"`, 1), []string{dataapi.ScopeAdminWrite}, http.StatusBadRequest},
			{"unknown field", "application/json", `{"transactions":[],"x":1}`, []string{dataapi.ScopeAdminWrite}, http.StatusBadRequest},
			{"unknown CSV column", "text/csv", "transactionId,colour\nA,red\n", []string{dataapi.ScopeAdminWrite}, http.StatusBadRequest},
			{"repeated id", "text/csv", importCSV + "B-2,TRANSACAO_EFETIVADA,CREDITO,X,PIX,1.00,2026-03-10T09:00:00Z\n", []string{dataapi.ScopeAdminWrite}, http.StatusBadRequest},
			{"XML", "application/xml", "<x/>", []string{dataapi.ScopeAdminWrite}, http.StatusUnsupportedMediaType},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if status, body := post(t, tc.scopes, tc.contentType, tc.body); status != tc.status {
					t.Errorf("%d %v, want %d", status, body, tc.status)
				}
			})
		}
		// Partner A cannot import into partner B's customer's account.
		if _, err := f.svc.Import(context.Background(), f.holderA.ID, dataapi.SandboxDocument, "55554444", &dataapi.ImportData{
			Balances: &dataapi.Balances{AvailableAmount: "1.00", BlockedAmount: "0.00", AutomaticallyInvestedAmount: "0.00"}}); err != dataapi.ErrAccountNotFound {
			t.Errorf("import into another partner's account: %v", err)
		}
	})
}

// TestEnsureSandboxIsIdempotent: instances starting together on one database
// seed the data set once.
func TestEnsureSandboxIsIdempotent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				svc := dataapi.NewService(db, f.clock, f.grants)
				errs <- svc.EnsureSandbox(context.Background(), f.cs, f.holderA.ID)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]int{f.accounts[0]: 1600, f.accounts[1]: 300, f.accounts[2]: 300}
		for id, n := range want {
			var got int
			if err := db.Read().QueryRow(`SELECT COUNT(*) FROM account_transactions WHERE account_id = $1`, id).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != n {
				t.Errorf("account %s: %d transactions, want %d", id, got, n)
			}
		}
		list, err := f.cs.Accounts(context.Background(), f.holderA.ID, dataapi.SandboxDocument)
		if err != nil || len(list) != 3 {
			t.Errorf("sandbox accounts: %d %v", len(list), err)
		}
	})
}
