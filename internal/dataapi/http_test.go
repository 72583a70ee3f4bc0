package dataapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

const accounts = dataapi.AccountsPath

func TestReadsMatchTheOfficialSpecifications(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, tok := f.consent(allPermissions, f.accounts)

		status, body := f.get(t, tok, dataapi.ResourcesPath)
		if status != http.StatusOK || len(dataList(body)) != 3 {
			t.Fatalf("resources: %d %v", status, body)
		}
		for _, r := range dataList(body) {
			if r["type"] != "ACCOUNT" || r["status"] != "AVAILABLE" || !slices.Contains(f.accounts, r["resourceId"].(string)) {
				t.Errorf("resource %v", r)
			}
		}
		status, body = f.get(t, tok, accounts)
		if status != http.StatusOK || len(dataList(body)) != 3 {
			t.Fatalf("accounts: %d %v", status, body)
		}
		var first map[string]any
		for _, a := range dataList(body) {
			if a["accountId"] == f.accounts[0] {
				first = a
			}
		}
		if first["accountId"] != f.accounts[0] || first["number"] != "00123456" || first["checkDigit"] != "7" ||
			first["type"] != "CONTA_DEPOSITO_A_VISTA" || first["branchCode"] != "0001" {
			t.Errorf("first account %v", first)
		}
		status, body = f.get(t, tok, accounts+"?accountType=CONTA_POUPANCA")
		if status != http.StatusOK || len(dataList(body)) != 1 || dataList(body)[0]["type"] != "CONTA_POUPANCA" {
			t.Errorf("accountType filter: %d %v", status, body)
		}
		for _, p := range []string{"", "/balances", "/overdraft-limits", "/transactions", "/transactions-current"} {
			for _, id := range f.accounts {
				if status, body := f.get(t, tok, accounts+"/"+id+p); status != http.StatusOK {
					t.Errorf("%s: %d %v", p, status, body)
				}
			}
		}
		_, body = f.get(t, tok, accounts+"/"+f.accounts[0]+"/balances")
		if got := body["data"].(map[string]any)["availableAmount"].(map[string]any)["amount"]; got != "5320.47" {
			t.Errorf("balance %v", got)
		}
		// The prepaid account has no limits: an empty data object.
		_, body = f.get(t, tok, accounts+"/"+f.accounts[2]+"/overdraft-limits")
		if len(body["data"].(map[string]any)) != 0 {
			t.Errorf("limits of an account without any: %v", body["data"])
		}
	})
}

// TestPermissionsOneByOne: each route needs its permission and no other.
func TestPermissionsOneByOne(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		id := f.accounts[0]
		for _, tc := range []struct{ path, perm string }{
			{dataapi.ResourcesPath, dataapi.PermResourcesRead},
			{accounts, dataapi.PermAccountsRead},
			{accounts + "/" + id, dataapi.PermAccountsRead},
			{accounts + "/" + id + "/balances", dataapi.PermBalancesRead},
			{accounts + "/" + id + "/transactions", dataapi.PermTransactionsRead},
			{accounts + "/" + id + "/transactions-current", dataapi.PermTransactionsRead},
			{accounts + "/" + id + "/overdraft-limits", dataapi.PermOverdraftLimitsRead},
		} {
			t.Run(strings.TrimPrefix(tc.path, "/open-banking/"), func(t *testing.T) {
				without := slices.DeleteFunc(slices.Clone(allPermissions), func(p string) bool { return p == tc.perm })
				_, tok := f.consent(without, f.accounts)
				if status, body := f.get(t, tok, tc.path); status != http.StatusForbidden || errorCode(body) != "FORBIDDEN" {
					t.Errorf("without %s: %d %v", tc.perm, status, body)
				}
				_, tok = f.consent([]string{tc.perm}, f.accounts)
				if status, body := f.get(t, tok, tc.path); status != http.StatusOK {
					t.Errorf("with only %s: %d %v", tc.perm, status, body)
				}
			})
		}
	})
}

func TestConsentLifecycleOnALiveToken(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, tc := range []struct {
			name   string
			change func(*fixture, string)
		}{
			{"revoked", func(f *fixture, id string) { f.grants.update(id, func(g *dataapi.Grant) { g.Status = "REJECTED" }) }},
			{"awaiting authorisation", func(f *fixture, id string) {
				f.grants.update(id, func(g *dataapi.Grant) { g.Status = "AWAITING_AUTHORISATION" })
			}},
			{"expired", func(f *fixture, id string) {
				f.grants.update(id, func(g *dataapi.Grant) { g.ExpiresAt = f.clock.Now().Add(time.Minute) })
				f.clock.Advance(time.Minute)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				id, tok := f.consent(allPermissions, f.accounts)
				if status, _ := f.get(t, tok, accounts); status != http.StatusOK {
					t.Fatalf("before: %d", status)
				}
				tc.change(f, id)
				for _, p := range []string{dataapi.ResourcesPath, accounts, accounts + "/" + f.accounts[0] + "/transactions"} {
					if status, body := f.get(t, tok, p); status != http.StatusUnauthorized || errorCode(body) != "UNAUTHORIZED" {
						t.Errorf("%s after: %d %v", p, status, body)
					}
				}
			})
		}
		t.Run("unknown token", func(t *testing.T) {
			if status, _ := f.get(t, "not-a-token", accounts); status != http.StatusUnauthorized {
				t.Errorf("%d", status)
			}
		})
		t.Run("token without a consent scope", func(t *testing.T) {
			tok := f.tokens.issue(dataapi.Token{ApplicationID: f.receiver.ID, Scopes: []string{"openid", "accounts"}})
			if status, _ := f.get(t, tok, accounts); status != http.StatusForbidden {
				t.Errorf("%d", status)
			}
		})
		t.Run("another application's consent", func(t *testing.T) {
			id, _ := f.consent(allPermissions, f.accounts)
			if status, _ := f.get(t, f.tokenFor(id, f.holderB.ID), accounts); status != http.StatusUnauthorized {
				t.Errorf("%d", status)
			}
		})
		t.Run("certificate-bound token without the certificate", func(t *testing.T) {
			id, _ := f.consent(allPermissions, f.accounts)
			tok := f.tokens.issue(dataapi.Token{ApplicationID: f.receiver.ID, Scopes: []string{"accounts", "consent:" + id}, CertThumbprint: "abc"})
			if status, _ := f.get(t, tok, accounts); status != http.StatusUnauthorized {
				t.Errorf("%d", status)
			}
		})
	})
}

func TestPartialSelectionAndTenantIsolation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, tok := f.consent(allPermissions, f.accounts[1:2])
		_, body := f.get(t, tok, dataapi.ResourcesPath)
		if got := dataList(body); len(got) != 1 || got[0]["resourceId"] != f.accounts[1] || body["meta"].(map[string]any)["totalRecords"] != 1.0 {
			t.Errorf("resources of a one-account consent: %v", body)
		}
		_, body = f.get(t, tok, accounts)
		if got := dataList(body); len(got) != 1 || got[0]["accountId"] != f.accounts[1] {
			t.Errorf("accounts of a one-account consent: %v", body)
		}
		for _, id := range []string{f.accounts[0], f.accountB, "no-such-account"} {
			for _, p := range []string{"", "/balances", "/transactions"} {
				if status, body := f.get(t, tok, accounts+"/"+id+p); status != http.StatusForbidden {
					t.Errorf("%s%s outside the consent: %d %v", id, p, status, body)
				}
			}
		}
		// A consent of partner A's customer that names partner B's account
		// (the same person at another partner) still shares nothing of B.
		_, tok = f.consent(allPermissions, []string{f.accounts[0], f.accountB})
		_, body = f.get(t, tok, accounts)
		if got := dataList(body); len(got) != 1 || got[0]["accountId"] != f.accounts[0] {
			t.Errorf("accounts: %v", body)
		}
		_, body = f.get(t, tok, dataapi.ResourcesPath)
		if got := dataList(body); len(got) != 1 || got[0]["resourceId"] != f.accounts[0] {
			t.Errorf("resources: %v", body)
		}
		if status, body := f.get(t, tok, accounts+"/"+f.accountB+"/transactions"); status != http.StatusForbidden || errorCode(body) != "STATUS_RESOURCE_UNAVAILABLE" {
			t.Errorf("partner B's account: %d %v", status, body)
		}
	})
}

func TestTransactionPagination(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, tok := f.consent(allPermissions, f.accounts)
		now := f.clock.Now().In(time.FixedZone("BRT", -3*3600))
		q := url.Values{"fromBookingDate": {now.AddDate(-1, 0, 0).Format("2006-01-02")}, "toBookingDate": {now.AddDate(0, 1, 0).Format("2006-01-02")}}
		for _, size := range []int{1000, 97} {
			q.Set("page-size", strconv.Itoa(size))
			var ids []string
			var last time.Time
			next := accounts + "/" + f.accounts[0] + "/transactions?" + q.Encode()
			pages := 0
			for next != "" {
				status, body := f.get(t, tok, next)
				if status != http.StatusOK {
					t.Fatalf("page %d: %d %v", pages+1, status, body)
				}
				pages++
				for _, tr := range dataList(body) {
					at, err := time.Parse("2006-01-02T15:04:05.000Z", tr["transactionDateTime"].(string))
					if err != nil {
						t.Fatal(err)
					}
					if len(ids) > 0 && at.After(last) {
						t.Fatalf("not newest first at %s", tr["transactionId"])
					}
					last = at
					ids = append(ids, tr["transactionId"].(string))
				}
				links := body["links"].(map[string]any)
				next = ""
				if n, ok := links["next"].(string); ok {
					next = strings.TrimPrefix(n, "https://ponte.example.com")
				}
				if pages > 1 && links["prev"] == nil {
					t.Errorf("page %d without prev", pages)
				}
			}
			sorted := slices.Clone(ids)
			slices.Sort(sorted)
			if len(slices.Compact(sorted)) != len(ids) {
				t.Errorf("page-size %d: duplicates", size)
			}
			if len(ids) != 1600 {
				t.Errorf("page-size %d: walked %d transactions in %d pages, want 1600", size, len(ids), pages)
			}
		}
		// The same page twice is the same page.
		p := accounts + "/" + f.accounts[0] + "/transactions?" + q.Encode() + "&page=3"
		_, a := f.get(t, tok, p)
		_, b := f.get(t, tok, p)
		if dataList(a)[0]["transactionId"] != dataList(b)[0]["transactionId"] {
			t.Error("page 3 changed between reads")
		}
		if status, body := f.get(t, tok, accounts+"/"+f.accounts[0]+"/transactions?page-size=1001"); status != http.StatusUnprocessableEntity {
			t.Errorf("page-size 1001: %d %v", status, body)
		}
	})
}

func TestTransactionDateFilters(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, tok := f.consent(allPermissions, f.accounts)
		brt := time.FixedZone("BRT", -3*3600)
		today := f.clock.Now().In(brt)
		day := func(d int) string { return today.AddDate(0, 0, d).Format("2006-01-02") }
		base := accounts + "/" + f.accounts[0]
		count := func(path string) int {
			n := 0
			for next := path; next != ""; {
				status, body := f.get(t, tok, next)
				if status != http.StatusOK {
					t.Fatalf("%s: %d %v", next, status, body)
				}
				n += len(dataList(body))
				next, _ = body["links"].(map[string]any)["next"].(string)
				next = strings.TrimPrefix(next, "https://ponte.example.com")
			}
			return n
		}
		week := count(base + "/transactions-current?page-size=1000")
		full := count(base + "/transactions-current?page-size=1000&fromBookingDate=" + day(-6) + "&toBookingDate=" + day(0))
		if week == 0 || full < week {
			t.Errorf("current default (today) %d, last 7 days %d", week, full)
		}
		credits := count(base + "/transactions-current?page-size=1000&creditDebitIndicator=CREDITO&fromBookingDate=" + day(-6) + "&toBookingDate=" + day(0))
		debits := count(base + "/transactions-current?page-size=1000&creditDebitIndicator=DEBITO&fromBookingDate=" + day(-6) + "&toBookingDate=" + day(0))
		if credits+debits != full || credits == 0 || debits == 0 {
			t.Errorf("credits %d + debits %d != %d", credits, debits, full)
		}
		future := count(base + "/transactions?fromBookingDate=" + day(1) + "&toBookingDate=" + day(30))
		if future != 4 {
			t.Errorf("future entries: %d, want 4", future)
		}
		for _, tc := range []struct {
			query  string
			status int
		}{
			{"/transactions-current?fromBookingDate=" + day(-7) + "&toBookingDate=" + day(0), 422},
			{"/transactions?fromBookingDate=" + day(-400) + "&toBookingDate=" + day(0), 422},
			{"/transactions?fromBookingDate=" + day(0) + "&toBookingDate=" + day(400), 422},
			{"/transactions?fromBookingDate=" + day(0) + "&toBookingDate=" + day(-1), 422},
			{"/transactions?fromBookingDate=" + day(0), 400},
			{"/transactions?fromBookingDate=2026-13-01&toBookingDate=2026-13-02", 400},
			{"/transactions?creditDebitIndicator=AMBOS", 400},
		} {
			if status, body := f.get(t, tok, base+tc.query); status != tc.status {
				t.Errorf("%s: %d %v, want %d", tc.query, status, body, tc.status)
			}
		}
	})
}

func TestInteractionID(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, tok := f.consent(allPermissions, f.accounts)
		for _, id := range []string{"", "not-a-uuid"} {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+accounts, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if id != "" {
				req.Header.Set(dataapi.InteractionHeader, id)
			}
			if status, _ := f.do(t, req); status != http.StatusBadRequest {
				t.Errorf("interaction id %q: %d", id, status)
			}
		}
	})
}
