package dataapi_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// wantTransaction is the Accounts API's TransactionsData as the handler
// encoded it before the stored bodies (migration 00018): the reference the
// pages built from stored bodies must equal byte for byte.
type wantTransaction struct {
	TransactionID                  string `json:"transactionId"`
	CompletedAuthorisedPaymentType string `json:"completedAuthorisedPaymentType"`
	CreditDebitType                string `json:"creditDebitType"`
	TransactionName                string `json:"transactionName"`
	Type                           string `json:"type"`
	TransactionAmount              struct {
		Amount   string `json:"amount"`
		Currency string `json:"currency"`
	} `json:"transactionAmount"`
	TransactionDateTime string `json:"transactionDateTime"`
	PartieCnpjCpf       string `json:"partieCnpjCpf,omitempty"`
	PartiePersonType    string `json:"partiePersonType,omitempty"`
	PartieCompeCode     string `json:"partieCompeCode,omitempty"`
	PartieBranchCode    string `json:"partieBranchCode,omitempty"`
	PartieNumber        string `json:"partieNumber,omitempty"`
	PartieCheckDigit    string `json:"partieCheckDigit,omitempty"`
}

// wantPage encodes, as httpx.WriteJSON does (no HTML escapes), the page the stored columns give.
func wantPage(t *testing.T, f *fixture, accountID string, filter dataapi.TransactionFilter, size, page int) []byte {
	t.Helper()
	ts, err := f.svc.Transactions(context.Background(), accountID, filter, size, (page-1)*size)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]wantTransaction, len(ts))
	for i, x := range ts {
		w := wantTransaction{TransactionID: x.TransactionID, CompletedAuthorisedPaymentType: x.CompletedAuthorisedPaymentType,
			CreditDebitType: x.CreditDebitType, TransactionName: x.TransactionName, Type: x.Type,
			TransactionDateTime: x.TransactionDateTime.UTC().Format("2006-01-02T15:04:05.000Z"), PartieCnpjCpf: x.PartieCnpjCpf,
			PartiePersonType: x.PartiePersonType, PartieCompeCode: x.PartieCompeCode, PartieBranchCode: x.PartieBranchCode,
			PartieNumber: x.PartieNumber, PartieCheckDigit: x.PartieCheckDigit}
		w.TransactionAmount.Amount, w.TransactionAmount.Currency = x.Amount, x.Currency
		out[i] = w
	}
	b, err := httpx.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawPage reads one page and returns its data array as sent.
func rawPage(t *testing.T, f *fixture, token, pathAndQuery string) (json.RawMessage, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+pathAndQuery, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(dataapi.InteractionHeader, uuid.NewString())
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	validateExchange(t, req, resp.StatusCode, resp.Header, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", pathAndQuery, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	var raw struct {
		Data json.RawMessage `json:"data"`
	}
	var m map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("not JSON: %s", body)
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return raw.Data, m
}

// trickyImport has names encoding/json escapes: HTML characters, quotes,
// backslashes, control characters, U+2028 and non-ASCII letters.
const trickyImport = `{"transactions": [
 {"transactionId": "T-1", "completedAuthorisedPaymentType": "TRANSACAO_EFETIVADA", "creditDebitType": "DEBITO",
  "transactionName": "A&B <loja> \"aspas\" \\ barra\n\ttab\u0001\u2028 ação", "type": "PIX", "amount": "1.00",
  "transactionDateTime": "2026-03-09T10:00:00.123456Z", "partieCheckDigit": "<"},
 {"transactionId": "T-2", "completedAuthorisedPaymentType": "LANCAMENTO_FUTURO", "creditDebitType": "CREDITO",
  "transactionName": "SALÁRIO", "type": "FOLHA_PAGAMENTO", "amount": "4200.0000", "currency": "USD",
  "transactionDateTime": "2026-03-10T09:00:00-03:00", "partieCnpjCpf": "11222333000181", "partiePersonType": "PESSOA_JURIDICA"}
]}`

// TestTransactionPagesFromStoredBodies: pages built from the stored bodies
// are byte for byte what encoding/json makes of the columns, on every page,
// with and without a credit/debit filter, and after a re-import; rows
// stored before migration 00018 (no body) are encoded on first read and
// served identically.
func TestTransactionPagesFromStoredBodies(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		d, err := dataapi.ParseJSON(strings.NewReader(trickyImport))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Import(ctx, f.holderB.ID, dataapi.SandboxDocument, "55554444", d); err != nil {
			t.Fatal(err)
		}
		f.grants.put(dataapi.Grant{ConsentID: "urn:ponte:hot", ApplicationID: f.receiver.ID, Document: dataapi.SandboxDocument,
			Status: dataapi.ConsentAuthorised, Permissions: allPermissions, AccountIDs: []string{f.accountB}, ExpiresAt: f.clock.Now().AddDate(0, 1, 0)})
		tokB := f.tokenFor("urn:ponte:hot", f.receiver.ID)
		_, tokA := f.consent(allPermissions, f.accounts)

		brt := time.FixedZone("BRT", -3*3600)
		now := f.clock.Now().In(brt)
		today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, brt)
		from, to := today.AddDate(-1, 0, 0), today.AddDate(0, 1, 0)
		check := func(t *testing.T) {
			t.Helper()
			for _, c := range []struct {
				account, token, creditDebit string
				size, page                  int
			}{
				{f.accounts[0], tokA, "", 1000, 1}, {f.accounts[0], tokA, "", 1000, 2}, {f.accounts[0], tokA, "", 1000, 3},
				{f.accounts[0], tokA, "DEBITO", 97, 4}, {f.accounts[0], tokA, "CREDITO", 1000, 1},
				{f.accountB, tokB, "", 25, 1}, {f.accountB, tokB, "DEBITO", 1, 1}, {f.accountB, tokB, "", 1, 2},
			} {
				q := url.Values{"fromBookingDate": {from.Format("2006-01-02")}, "toBookingDate": {to.Format("2006-01-02")},
					"page-size": {strconv.Itoa(c.size)}, "page": {strconv.Itoa(c.page)}}
				if c.creditDebit != "" {
					q.Set("creditDebitIndicator", c.creditDebit)
				}
				got, _ := rawPage(t, f, c.token, dataapi.AccountsPath+"/"+c.account+"/transactions?"+q.Encode())
				want := wantPage(t, f, c.account, dataapi.TransactionFilter{From: from, To: to, CreditDebit: c.creditDebit}, c.size, c.page)
				if string(got) != string(want) {
					t.Errorf("%s %s page %d of %d:\n got %.400s\nwant %.400s", c.account, c.creditDebit, c.page, c.size, got, want)
				}
			}
		}
		check(t)

		// A re-import replaces the stored body with the columns.
		d, err = dataapi.ParseJSON(strings.NewReader(strings.Replace(trickyImport, `"4200.0000"`, `"4300.00"`, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Import(ctx, f.holderB.ID, dataapi.SandboxDocument, "55554444", d); err != nil {
			t.Fatal(err)
		}
		_, m := rawPage(t, f, tokB, dataapi.AccountsPath+"/"+f.accountB+"/transactions?fromBookingDate=2026-03-01&toBookingDate=2026-03-10")
		if got := dataList(m); len(got) != 2 || got[0]["transactionAmount"].(map[string]any)["amount"] != "4300.00" {
			t.Errorf("after re-import: %v", got)
		}
		check(t)

		// Rows from before migration 00018: no body.
		if err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE account_transactions SET body = NULL`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		check(t)
		var missing int
		if err := db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM account_transactions WHERE body IS NULL`).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		if missing != 300+300 { // the two accounts never read
			t.Errorf("%d transactions without body after reading two accounts' pages, want 600", missing)
		}
		// The sandbox seed encodes its accounts' missing bodies at start-up.
		if err := f.svc.EnsureSandbox(ctx, f.cs, f.holderA.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM account_transactions WHERE body IS NULL`).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		if missing != 0 {
			t.Errorf("%d transactions without body after EnsureSandbox", missing)
		}
		check(t)
	})
}
