package settlement

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/ponte-ofb/ponte/internal/dataapi"
	"github.com/ponte-ofb/ponte/internal/store"
)

var _ BatchSettler = (*Ledger)(nil)

// settleChunk bounds the payments one reservation statement names.
const settleChunk = 500

// SettleBatch settles ts set-wise (BatchSettler): the held reservations
// become SETTLED in one statement per kind and time (the rows it changes are
// the transfers this call settles, so a retried batch settles nothing
// twice), then every account the batch touches is locked once, in id order,
// and moved once by the sum of its debits and credits, and its PIX
// statement rows are booked in multi-row statements. A transfer settled
// before is nil in results, one never reserved or released ErrNotReserved.
func (l *Ledger) SettleBatch(ctx context.Context, tx *sql.Tx, ts []Transfer) ([]error, error) {
	q := stepQ{db: l.DB, tx: tx, engine: l.Engine}
	results := make([]error, len(ts))
	type key struct {
		kind Kind
		at   int64
	}
	groups := map[key][]int{}
	var order []key
	for i := range ts {
		k := key{ts[i].Kind, ts[i].At.UnixMilli()}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	type moved struct {
		debtorID, creditorID string
		amount               int64
	}
	settled := make(map[int]moved, len(ts))
	for _, k := range order {
		idx := groups[k]
		for start := 0; start < len(idx); start += settleChunk {
			chunk := idx[start:min(start+settleChunk, len(idx))]
			byID := make(map[string]int, len(chunk))
			p := store.NewParams(l.Engine)
			head := fmt.Sprintf(`UPDATE ledger_reservations SET status = %s, updated_at = %s WHERE kind = %s AND status = %s AND payment_id IN (`,
				p.Add(reservationSettled), p.Add(k.at), p.Add(string(k.kind)), p.Add(reservationHeld))
			marks := make([]string, len(chunk))
			for j, i := range chunk {
				byID[ts[i].PaymentID] = i
				marks[j] = p.Add(ts[i].PaymentID)
			}
			rows, err := tx.QueryContext(ctx, head+strings.Join(marks, ", ")+`) RETURNING payment_id, debtor_account_id, creditor_account_id, amount_cents`, p.Args()...)
			if err != nil {
				return nil, fmt.Errorf("settlement: settle batch: %w", err)
			}
			for rows.Next() {
				var id string
				var m moved
				if err := rows.Scan(&id, &m.debtorID, &m.creditorID, &m.amount); err != nil {
					rows.Close()
					return nil, fmt.Errorf("settlement: settle batch: %w", err)
				}
				if i, ok := byID[id]; ok {
					settled[i] = m
				}
			}
			if err := rows.Close(); err != nil {
				return nil, fmt.Errorf("settlement: settle batch: %w", err)
			}
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("settlement: settle batch: %w", err)
			}
			// Those the statement did not change: settled before, or not held.
			var rest []int
			for _, i := range chunk {
				if _, ok := settled[i]; !ok {
					rest = append(rest, i)
				}
			}
			if err := l.priorStatuses(ctx, q, ts, k.kind, rest, results); err != nil {
				return nil, err
			}
		}
	}
	if len(settled) == 0 {
		return results, nil
	}
	// The money: one move per account, accounts locked in id order (no
	// deadlock with a concurrent step or batch on PostgreSQL).
	type delta struct {
		available, held int64
		book            []dataapi.Transaction
	}
	deltas := map[string]*delta{}
	at := func(id string) *delta {
		d := deltas[id]
		if d == nil {
			d = &delta{}
			deltas[id] = d
		}
		return d
	}
	for i := range ts {
		m, ok := settled[i]
		if !ok {
			continue
		}
		t := ts[i]
		d := at(m.debtorID)
		d.held -= m.amount
		d.book = append(d.book, statementEntry(t, m.amount, "DEBITO", "PIX ENVIADO", t.CreditorParty, t.Creditor))
		if m.creditorID != "" {
			c := at(m.creditorID)
			c.available += m.amount
			c.book = append(c.book, statementEntry(t, m.amount, "CREDITO", "PIX RECEBIDO", t.DebtorParty, t.Debtor))
		}
	}
	ids := make([]string, 0, len(deltas))
	for id := range deltas {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	accts := make(map[string]*ledgerAccount, len(ids))
	for _, id := range ids {
		a, err := lock(ctx, q, id)
		if err != nil {
			return nil, err
		}
		accts[id] = a
	}
	now := ts[0].At
	for _, id := range ids {
		d := deltas[id]
		if ok, err := l.move(ctx, q, id, accts[id], d.available, d.held, now); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("settlement: settle batch: account %s holds less than its reservations", id)
		}
		// A transaction already stored under the same id is kept, as Book
		// keeps it: the first of the batch goes in.
		seen := make(map[string]bool, len(d.book))
		book := d.book[:0]
		for _, e := range d.book {
			if !seen[e.TransactionID] {
				seen[e.TransactionID] = true
				book = append(book, e)
			}
		}
		if err := dataapi.BookAll(ctx, tx, l.Engine, id, book); err != nil {
			return nil, fmt.Errorf("settlement: book the batch on %s: %w", id, err)
		}
	}
	return results, nil
}

// priorStatuses fills results for the transfers of kind (indices idx) whose
// reservation the batch statement did not change: nil when it was settled
// before, ErrNotReserved otherwise.
func (l *Ledger) priorStatuses(ctx context.Context, q stepQ, ts []Transfer, kind Kind, idx []int, results []error) error {
	if len(idx) == 0 {
		return nil
	}
	p := store.NewParams(l.Engine)
	head := `SELECT payment_id FROM ledger_reservations WHERE kind = ` + p.Add(string(kind)) + ` AND status = ` + p.Add(reservationSettled) + ` AND payment_id IN (`
	marks := make([]string, len(idx))
	for j, i := range idx {
		marks[j] = p.Add(ts[i].PaymentID)
	}
	rows, err := q.tx.QueryContext(ctx, head+strings.Join(marks, ", ")+`)`, p.Args()...)
	if err != nil {
		return fmt.Errorf("settlement: reservations of the batch: %w", err)
	}
	defer rows.Close()
	done := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("settlement: reservations of the batch: %w", err)
		}
		done[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("settlement: reservations of the batch: %w", err)
	}
	for _, i := range idx {
		if !done[ts[i].PaymentID] {
			results[i] = ErrNotReserved
		}
	}
	return nil
}
