package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/bench/internal/loadgen"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/store"
)

// settlement queues payments until -queued wait for the worker (those the
// HTTP phase created count), runs Ponte's job worker until none is left and
// checks that each was settled once and that no money appeared or vanished.
func (b *bench) settlement(ctx context.Context, f flags, engine string, out *engineResult) error {
	db := b.a.DB.Read()
	waiting, err := count(ctx, db, `SELECT COUNT(*) FROM pix_payments WHERE status = 'ACCP'`)
	if err != nil {
		return err
	}
	need := max(0, f.queued-waiting)
	fmt.Printf("\n  settlement: %d payments already waiting (HTTP phase), queueing %d more through the service layer (%d workers)\n",
		waiting, need, f.setupWorkers)
	t0 := time.Now()
	var last time.Time
	if _, err := parallel(ctx, need, f.setupWorkers, func(int) (struct{}, error) { return struct{}{}, b.queue(ctx) }); err != nil {
		return fmt.Errorf("queue payments: %w", err)
	}
	last = time.Now()
	fmt.Printf("  setup: %d consents created, authorised and paid (ACCP, reserved) in %s (%.0f/s)\n", need,
		time.Since(t0).Round(time.Millisecond), float64(need)/time.Since(t0).Seconds())

	// The worker's job for a second runs a second after it ends.
	if d := time.Until(last.Add(2100 * time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
	before, err := snapshot(ctx, b)
	if err != nil {
		return err
	}
	fmt.Printf("  before: %d ACCP, %d ACSC; jobs due: %s\n", before.accp, before.acsc, dueJobs(ctx, b))

	stop := prof.Start("settle-" + strings.ToLower(engine))
	cpu0, start := processCPU(), time.Now()
	runs := 0
	for {
		n, err := b.a.Jobs.RunDue(ctx)
		if err != nil {
			stop()
			return fmt.Errorf("run jobs: %w", err)
		}
		runs += n
		left, err := count(ctx, db, `SELECT COUNT(*) FROM pix_payments WHERE status = 'ACCP'`)
		if err != nil {
			stop()
			return err
		}
		if left == 0 || n == 0 {
			break
		}
	}
	took, cpu := time.Since(start), processCPU()-cpu0
	stop()
	after, err := snapshot(ctx, b)
	if err != nil {
		return err
	}
	out.settled, out.settleTook, out.settleCPU = after.acsc-before.acsc, took, cpu
	per := time.Duration(0)
	if out.settled > 0 {
		per = cpu / time.Duration(out.settled)
	}
	fmt.Printf("  %d settled (ACSC) by %d worker jobs in %s: %.0f settled/s, process CPU %s per payment (target ≥ 5000/s: %s)\n",
		out.settled, runs, took.Round(time.Millisecond), float64(out.settled)/took.Seconds(), per.Round(time.Microsecond),
		loadgen.Met(float64(out.settled)/took.Seconds() >= 5000))
	out.checked = verify(before, after)
	if out.checked != nil {
		fmt.Printf("  CHECK FAILED: %v\n", out.checked)
	} else {
		fmt.Printf("  checked: %d left ACCP, every ACSC payment has one SETTLED reservation, one DEBITO row on Maria's account and one CREDITO row on João's;\n"+
			"           Maria's blocked −%s, João's available +%s, their sum unchanged (%s)\n",
			after.accp, cents(before.mariaBlocked-after.mariaBlocked), cents(after.joaoAvail-before.joaoAvail), cents(after.sum()))
	}
	return nil
}

// queue creates one payment exactly as POST /pix/payments leaves it (ACCP,
// amount reserved, settlement job enqueued), through the service calls the
// HTTP handlers and the WebView make: consent created, authorised with
// Maria's account, payment created with an idempotency key.
func (b *bench) queue(ctx context.Context) error {
	var req payments.ConsentRequest
	raw, _ := json.Marshal(consentData())
	if err := json.Unmarshal(raw, &req); err != nil {
		return err
	}
	app := b.a.Demo.ID
	resp, err := b.a.Payments.Create(ctx, payments.CreateInput{ApplicationID: app, Request: req, IdempotencyKey: uuid.NewString()})
	if err != nil {
		return err
	}
	var created struct{ Data struct{ ConsentID string } }
	if err := json.Unmarshal(resp.Body, &created); err != nil || resp.Status != http.StatusCreated {
		return fmt.Errorf("create consent: %d %s", resp.Status, resp.Body)
	}
	if _, err := b.a.Payments.Authorise(ctx, created.Data.ConsentID,
		&payments.Account{ISPB: sandboxISPB, Issuer: "0001", Number: mariaAccount, AccountType: "CACC"}); err != nil {
		return fmt.Errorf("authorise: %w", err)
	}
	var item payments.PixPaymentRequest
	raw, _ = json.Marshal(pixItem())
	if err := json.Unmarshal(raw, &item); err != nil {
		return err
	}
	resp, err = b.a.Payments.CreatePixPayments(ctx, payments.CreatePixPaymentsInput{ApplicationID: app, ConsentID: created.Data.ConsentID,
		Items: []payments.PixPaymentRequest{item}, IdempotencyKey: uuid.NewString()})
	if err != nil {
		return err
	}
	if resp.Status != http.StatusCreated || !strings.Contains(string(resp.Body), `"status":"ACCP"`) {
		return fmt.Errorf("create payment: %d %s", resp.Status, resp.Body)
	}
	return nil
}

// state is what the checks compare before and after the worker.
type state struct {
	accp, acsc                                    int
	settledReservations, debits, credits, dupRows int
	mariaAvail, mariaBlocked, joaoAvail, joaoBlkd int64
}

func (s state) sum() int64 { return s.mariaAvail + s.mariaBlocked + s.joaoAvail + s.joaoBlkd }

func snapshot(ctx context.Context, b *bench) (state, error) {
	db := b.a.DB.Read()
	var s state
	var err error
	if b.a.DB.Engine() == store.Postgres {
		// The tables grew from nothing during the run: without fresh
		// statistics the planner scans account_transactions once per payment.
		if _, err := db.ExecContext(ctx, `ANALYZE pix_payments, account_transactions, ledger_reservations, accounts`); err != nil {
			return s, err
		}
	}
	for _, q := range []struct {
		dst   *int
		query string
	}{
		{&s.accp, `SELECT COUNT(*) FROM pix_payments WHERE status = 'ACCP'`},
		{&s.acsc, `SELECT COUNT(*) FROM pix_payments WHERE status = 'ACSC'`},
		{&s.settledReservations, `SELECT COUNT(*) FROM ledger_reservations r JOIN pix_payments p ON p.id = r.payment_id
			WHERE r.kind = 'pix-payment' AND r.status = 'SETTLED' AND p.status = 'ACSC'`},
		// From each ACSC payment to its statement row by the row's primary
		// key (account, endToEndId).
		{&s.debits, `SELECT COUNT(*) FROM pix_payments p JOIN account_transactions t
			ON t.account_id = (SELECT id FROM accounts WHERE number = '` + mariaAccount + `') AND t.transaction_id = p.end_to_end_id
			WHERE p.status = 'ACSC' AND t.credit_debit_type = 'DEBITO'`},
		{&s.credits, `SELECT COUNT(*) FROM pix_payments p JOIN account_transactions t
			ON t.account_id = (SELECT id FROM accounts WHERE number = '` + joaoAccount + `') AND t.transaction_id = p.end_to_end_id
			WHERE p.status = 'ACSC' AND t.credit_debit_type = 'CREDITO'`},
		// An endToEndId booked more than once on one account (impossible by
		// the primary key, but the check does not rely on it).
		{&s.dupRows, `SELECT COUNT(*) FROM (SELECT account_id, transaction_id FROM account_transactions
			GROUP BY account_id, transaction_id HAVING COUNT(*) > 1) d`},
	} {
		if *q.dst, err = count(ctx, db, q.query); err != nil {
			return s, err
		}
	}
	if s.mariaAvail, s.mariaBlocked, err = balances(ctx, db, mariaAccount); err != nil {
		return s, err
	}
	if s.joaoAvail, s.joaoBlkd, err = balances(ctx, db, joaoAccount); err != nil {
		return s, err
	}
	return s, nil
}

// verify checks that every payment waiting was settled, once: as many
// settled reservations, debit and credit rows as ACSC payments, Maria's
// blocked balance down and João's available balance up by exactly the
// settled amount, the sum of the two accounts unchanged.
func verify(before, after state) error {
	settled := int64(after.acsc - before.acsc)
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(after.accp == 0, "%d payments still ACCP", after.accp)
	check(int(settled) == before.accp, "%d settled, %d were waiting", settled, before.accp)
	check(after.settledReservations == after.acsc, "%d SETTLED reservations for %d ACSC payments", after.settledReservations, after.acsc)
	check(after.debits == after.acsc, "%d debit rows for %d ACSC payments", after.debits, after.acsc)
	check(after.credits == after.acsc, "%d credit rows for %d ACSC payments", after.credits, after.acsc)
	check(after.dupRows == 0, "%d endToEndIds booked twice on one account", after.dupRows)
	check(before.mariaBlocked-after.mariaBlocked == settled*amountCents, "Maria's blocked balance fell by %s, settled %s",
		cents(before.mariaBlocked-after.mariaBlocked), cents(settled*amountCents))
	check(after.mariaAvail == before.mariaAvail, "Maria's available balance moved at settlement: %s → %s", cents(before.mariaAvail), cents(after.mariaAvail))
	check(after.joaoAvail-before.joaoAvail == settled*amountCents, "João's available balance rose by %s, settled %s",
		cents(after.joaoAvail-before.joaoAvail), cents(settled*amountCents))
	check(after.sum() == before.sum(), "sum of balances %s → %s", cents(before.sum()), cents(after.sum()))
	return errors.Join(errs...)
}

// balances reads an account's balances as the Accounts API shows them
// (account_balances, which the ledger rewrites in each settlement's
// transaction), in cents; an account never touched has none (zero).
func balances(ctx context.Context, db dbQuery, number string) (avail, blocked int64, err error) {
	var a, b string
	err = db.QueryRowContext(ctx, `SELECT COALESCE(MAX(b.available_amount), '0.00'), COALESCE(MAX(b.blocked_amount), '0.00')
		FROM accounts a LEFT JOIN account_balances b ON b.account_id = a.id WHERE a.number = $1`, number).Scan(&a, &b)
	if err != nil {
		return 0, 0, fmt.Errorf("balances of %s: %w", number, err)
	}
	if avail, err = parseCents(a); err != nil {
		return 0, 0, err
	}
	blocked, err = parseCents(b)
	return avail, blocked, err
}

func parseCents(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(whole, "-")
	w, err := strconv.ParseInt(strings.TrimPrefix(whole, "-"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	f, err := strconv.ParseInt((frac + "00")[:2], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	v := w*100 + f
	if neg {
		v = -v
	}
	return v, nil
}

func cents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

func count(ctx context.Context, db dbQuery, query string) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, query).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", strings.Join(strings.Fields(query), " "), err)
	}
	return n, nil
}

// dueJobs lists the jobs waiting to run, by kind.
func dueJobs(ctx context.Context, b *bench) string {
	rows, err := b.a.DB.Read().QueryContext(ctx, `SELECT kind, COUNT(*) FROM jobs WHERE state = 'available' AND run_at <= $1 GROUP BY kind ORDER BY kind`,
		time.Now().UnixMilli())
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var kind string
		var n int
		if err := rows.Scan(&kind, &n); err != nil {
			return err.Error()
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", kind, n))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
