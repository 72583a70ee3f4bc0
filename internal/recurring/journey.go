package recurring

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// JourneyKind puts recurring consents for sweeping in the holder's consent
// journey (authorize → ticket → WebView → approve or cancel): it implements
// consentflow.ConsentKind. Find knows only ids with IDPrefix, so payment consents
// and recurring consents never shadow each other.
type JourneyKind struct{ Service *Service }

var _ consentflow.ConsentKind = JourneyKind{}

// Find implements consentflow.ConsentKind.
func (k JourneyKind) Find(ctx context.Context, q consentflow.Querier, id string) (*consentflow.ConsentView, error) {
	if !strings.HasPrefix(id, IDPrefix) {
		return nil, consentflow.ErrConsentNotFound
	}
	c, err := getConsent(ctx, q, id)
	if errors.Is(err, ErrNotFound) {
		return nil, consentflow.ErrConsentNotFound
	}
	if err != nil {
		return nil, err
	}
	awaiting := c.Status == StatusAwaitingAuthorisation || c.Status == StatusPartiallyAccepted
	v := &consentflow.ConsentView{ID: c.ID, Kind: "sweeping", ApplicationID: c.ApplicationID, Awaiting: awaiting,
		ExpiresAt: c.DueAt, Sweeping: sweepingView(c)}
	if !awaiting {
		v.ExpiresAt = c.StatusUpdatedAt
	}
	if u := c.Request.LoggedUser; u != nil && u.Document != nil {
		v.Document = u.Document.Identification
	}
	if a := c.Request.DebtorAccount; a != nil {
		// The initiator's suggestion: it picks the holder partner; the user
		// may still choose another account (see Approve).
		v.FixedAccount = &consentflow.Account{ISPB: a.ISPB, Issuer: a.Issuer, Number: a.Number, AccountType: a.AccountType}
	}
	return v, nil
}

// Approve implements consentflow.ConsentKind. As the specification says of
// debtorAccount ("Mesmo se enviado pela ITP, o usuário pagador pode alterar
// durante a autorização do consentimento"), the user may authorise with
// another account than the one the initiator sent: consentflow.ErrAccountNotAllowed
// is returned only for an account the consent cannot use.
func (k JourneyKind) Approve(ctx context.Context, tx *sql.Tx, id string, a consentflow.Account) error {
	debtor := &payments.Account{ISPB: a.ISPB, Issuer: a.Issuer, Number: a.Number, AccountType: a.AccountType}
	switch _, err := k.Service.AuthoriseTx(ctx, tx, id, debtor); {
	case errors.Is(err, ErrDebtorAccount):
		return consentflow.ErrAccountNotAllowed
	case errors.Is(err, ErrExpired):
		return consentflow.ErrInteractionExpired
	case errors.Is(err, ErrInvalidTransition), errors.Is(err, ErrNotFound):
		return consentflow.ErrConsentNotAwaiting
	default:
		return err
	}
}

// Reject implements consentflow.ConsentKind: the user's refusal, REJEITADO_USUARIO.
func (k JourneyKind) Reject(ctx context.Context, tx *sql.Tx, id string) error {
	switch _, err := k.Service.RejectTx(ctx, tx, id, RejectRejeitadoUsuario); {
	case err == nil, errors.Is(err, ErrInvalidTransition), errors.Is(err, ErrNotFound):
		return nil
	default:
		return err
	}
}

// sweepingView describes c's creditors, limits and validity in Portuguese.
func sweepingView(c *Consent) *consentflow.SweepingView {
	v := &consentflow.SweepingView{Start: brDateTime(c.StartAt)}
	if !c.ExpiresAt.IsZero() {
		v.Expiry = brDateTime(c.ExpiresAt)
	}
	for _, cr := range c.Request.Creditors {
		if cr != nil {
			v.Creditors = append(v.Creditors, cr.Name+" ("+ofb.MaskDocument(cr.CPFCNPJ)+")")
		}
	}
	rc := c.Request.RecurringConfiguration
	if rc == nil || rc.Sweeping == nil {
		return v
	}
	sw := rc.Sweeping
	if sw.TotalAllowedAmount != "" {
		v.TotalLimit = consentflow.FormatBRL(sw.TotalAllowedAmount)
	}
	if sw.TransactionLimit != "" {
		v.TransactionLimit = consentflow.FormatBRL(sw.TransactionLimit)
	}
	if p := sw.PeriodicLimits; p != nil {
		for _, pl := range []struct {
			label string
			limit *Limit
		}{{"Por dia", p.Day}, {"Por semana", p.Week}, {"Por mês", p.Month}, {"Por ano", p.Year}} {
			if s := describeLimit(pl.limit); s != "" {
				v.PeriodLimits = append(v.PeriodLimits, pl.label+": "+s)
			}
		}
	}
	return v
}

// describeLimit renders a periodic limit: "até R$ 100,00 em até 2 transferências".
func describeLimit(l *Limit) string {
	if l == nil {
		return ""
	}
	var parts []string
	if l.TransactionLimit != "" {
		parts = append(parts, "até "+consentflow.FormatBRL(l.TransactionLimit))
	}
	if q := l.QuantityLimit; q != nil {
		unit := "transferências"
		if *q == 1 {
			unit = "transferência"
		}
		parts = append(parts, fmt.Sprintf("até %d %s", *q, unit))
	}
	return strings.Join(parts, " em ")
}

// brDateTime renders an instant as Brazilians read it, in Brasília time:
// "15/10/2024 às 15:55".
func brDateTime(t time.Time) string {
	return t.In(brasilia).Format("02/01/2006 às 15:04")
}
