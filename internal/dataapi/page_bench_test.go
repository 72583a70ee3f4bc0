package dataapi

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// BenchmarkTransactionPage reads the sandbox checking account's first page
// of 1,000 transactions on SQLite: from the stored bodies (the API's path)
// and, for comparison, from the columns encoded with encoding/json (the
// path before migration 00018).
func BenchmarkTransactionPage(b *testing.B) {
	ctx := context.Background()
	db := storetest.Open(b, "sqlite:"+filepath.Join(b.TempDir(), "ponte.db"))
	clk := clock.NewFake(time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC))
	app, _, err := auth.NewApplications(db, clk).Create(ctx, auth.NewApplication{Name: "bench holder", CompanyKey: "BNCH", Scopes: []string{ScopeAdminWrite}})
	if err != nil {
		b.Fatal(err)
	}
	cs := customers.NewService(db, clk)
	if _, err := cs.EnsureSandbox(ctx, app.ID); err != nil {
		b.Fatal(err)
	}
	svc := NewService(db, clk, nil)
	if err := svc.EnsureSandbox(ctx, cs, app.ID); err != nil {
		b.Fatal(err)
	}
	list, err := customerAccounts(ctx, db.Read(), app.ID, SandboxDocument)
	if err != nil {
		b.Fatal(err)
	}
	var checking string
	for _, a := range list {
		if a.Number == "1234567" {
			checking = a.ID
		}
	}
	today := time.Date(2026, 3, 10, 0, 0, 0, 0, brazil)
	f := TransactionFilter{From: today.AddDate(-1, 0, 0), To: today.AddDate(0, 1, 0)}
	for _, page := range []int{1, 2} {
		b.Run("bodies/page"+string(rune('0'+page)), func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				var more bool
				if buf, more, err = svc.appendTransactionPage(ctx, buf[:0], checking, f, 1000, (page-1)*1000); err != nil || more != (page == 1) {
					b.Fatal(err, more)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
		b.Run("columns/page"+string(rune('0'+page)), func(b *testing.B) {
			for b.Loop() {
				ts, err := svc.Transactions(ctx, checking, f, 1001, (page-1)*1000)
				if err != nil {
					b.Fatal(err)
				}
				data := make([]transactionData, len(ts))
				for i := range ts {
					data[i] = transactionJSON(&ts[i])
				}
				if _, err := json.Marshal(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
