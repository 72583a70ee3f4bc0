package settlement_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/settlement"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestLedgerConservesMoney runs thousands of concurrent transfers among four
// Ponte accounts, each reserved and then settled (some twice, concurrently)
// or released, every step in a transaction of its own, while a reader keeps
// checking the balances the Accounts API shows: none goes negative and their
// sum never changes. At the end each account holds exactly its initial
// balance minus what it settled out plus what it settled in, every settled
// transfer is booked once on each side and the ledger's cents match the text.
func TestLedgerConservesMoney(t *testing.T) {
	t.Parallel()
	const (
		transfers = 3000
		workers   = 8
		initial   = 200_000 // cents per account
	)
	numbers := []string{"11110001", "22220002", "33330003", "44440004"}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		balances := map[string]string{}
		for _, n := range numbers {
			balances[n] = fmt.Sprintf("%d.%02d", initial/100, initial%100)
		}
		f := newFixture(t, db, balances)
		ids := make([]any, len(numbers))
		for i, n := range numbers {
			ids[i] = f.accts[n].ID
		}
		p := store.NewParams(db.Engine())
		sumQuery := `SELECT available_amount, blocked_amount FROM account_balances WHERE account_id IN (` + p.List(ids...) + `)`
		args := p.Args()
		total := int64(initial * len(numbers))

		// The reader: one statement, one consistent snapshot each time.
		check := func() error {
			rows, err := db.Read().Query(sumQuery, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			var sum int64
			for rows.Next() {
				var a, b string
				if err := rows.Scan(&a, &b); err != nil {
					return err
				}
				ac, err1 := parseAmount(a)
				bc, err2 := parseAmount(b)
				if err := errors.Join(err1, err2); err != nil {
					return err
				}
				if ac < 0 || bc < 0 {
					return fmt.Errorf("negative balance: %s / %s", a, b)
				}
				sum += ac + bc
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if sum != total {
				return fmt.Errorf("sum of balances %d cents, want %d", sum, total)
			}
			return nil
		}
		stop := make(chan struct{})
		var checks atomic.Int64
		readerErr := make(chan error, 1)
		go func() {
			defer close(readerErr)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := check(); err != nil {
					readerErr <- err
					return
				}
				checks.Add(1)
				time.Sleep(200 * time.Microsecond) // leave the 2 CPUs to the writers
			}
		}()

		type outcome struct {
			from, to string
			cents    int64
			settled  bool
		}
		results := make([]outcome, transfers)
		work := make(chan int)
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 42))
				for i := range work {
					from, to := numbers[r.IntN(4)], numbers[r.IntN(4)]
					for to == from {
						to = numbers[r.IntN(4)]
					}
					cents := int64(1 + r.IntN(60_000))
					tr := f.transfer(fmt.Sprintf("cons-%d", i), from, to, cents)
					results[i] = outcome{from: from, to: to, cents: cents}
					err := f.reserve(t, tr)
					if errors.Is(err, settlement.ErrInsufficientFunds) {
						continue
					}
					if err != nil {
						errs <- fmt.Errorf("reserve %d: %w", i, err)
						return
					}
					switch r.IntN(10) {
					case 0, 1: // rejected after acceptance
						err = f.release(t, tr)
					case 2: // a retried job settles twice at once
						var inner sync.WaitGroup
						var e1, e2 error
						inner.Add(2)
						go func() { defer inner.Done(); _, e1 = f.settle(t, tr) }()
						go func() { defer inner.Done(); _, e2 = f.settle(t, tr) }()
						inner.Wait()
						err = errors.Join(e1, e2)
						results[i].settled = true
					case 3: // the batch path racing a single retry
						var inner sync.WaitGroup
						var e1, e2 error
						var res []error
						inner.Add(2)
						go func() { defer inner.Done(); res, e1 = f.settleBatch(t, tr) }()
						go func() { defer inner.Done(); _, e2 = f.settle(t, tr) }()
						inner.Wait()
						err = errors.Join(e1, e2)
						if err == nil && (len(res) != 1 || res[0] != nil) {
							err = fmt.Errorf("batch results %v, want one nil", res)
						}
						results[i].settled = true
					default:
						_, err = f.settle(t, tr)
						results[i].settled = true
					}
					if err != nil {
						errs <- fmt.Errorf("transfer %d: %w", i, err)
						return
					}
				}
			}()
		}
	feed:
		for i := range transfers {
			select {
			case work <- i:
			case err := <-errs:
				t.Error(err)
				break feed
			}
		}
		close(work)
		wg.Wait()
		close(stop)
		if err := <-readerErr; err != nil {
			t.Fatalf("reader: %v", err)
		}
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if err := check(); err != nil {
			t.Fatal(err)
		}

		want := map[string]int64{}
		settled := 0
		for _, n := range numbers {
			want[n] = initial
		}
		for _, o := range results {
			if o.settled {
				want[o.from] -= o.cents
				want[o.to] += o.cents
				settled++
			}
		}
		for _, n := range numbers {
			a, b := f.balances(t, n)
			if cents(t, a) != want[n] || b != "0.00" {
				t.Errorf("account %s: %s / %s, want %d cents available and nothing blocked", n, a, b, want[n])
			}
			var ledgerAvail, ledgerHeld int64
			if err := db.Read().QueryRow(`SELECT available_cents, held_cents FROM ledger_accounts WHERE account_id = $1`,
				f.accts[n].ID).Scan(&ledgerAvail, &ledgerHeld); err != nil {
				t.Fatal(err)
			}
			if ledgerAvail != want[n] || ledgerHeld != 0 {
				t.Errorf("ledger of %s: %d available, %d held; want %d, 0", n, ledgerAvail, ledgerHeld, want[n])
			}
		}
		// Each settled transfer booked exactly once per side, nothing else.
		var booked, distinct int
		if err := db.Read().QueryRow(`SELECT COUNT(*), COUNT(DISTINCT transaction_id) FROM account_transactions WHERE type = 'PIX'`).
			Scan(&booked, &distinct); err != nil {
			t.Fatal(err)
		}
		if booked != 2*settled || distinct != settled {
			t.Errorf("%d PIX rows (%d distinct ids), want %d rows for %d settled transfers", booked, distinct, 2*settled, settled)
		}
		t.Logf("%d transfers, %d settled, %d balance checks", transfers, settled, checks.Load())
	})
}

// parseAmount parses an amount the ledger wrote (two places).
func parseAmount(s string) (int64, error) {
	var whole, frac int64
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	if n, err := fmt.Sscanf(s, "%d.%02d", &whole, &frac); err != nil || n != 2 || len(s) < 4 || s[len(s)-3] != '.' {
		return 0, fmt.Errorf("amount %q is not a two-place decimal", s)
	}
	c := whole*100 + frac
	if neg {
		c = -c
	}
	return c, nil
}

func cents(t testing.TB, s string) int64 {
	t.Helper()
	c, err := parseAmount(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
