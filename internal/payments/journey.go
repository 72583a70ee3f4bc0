package payments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/ofb"
)

// JourneyKind puts Payments v4 consents in the holder's consent journey
// (authorize → ticket → WebView → approve or cancel): it implements
// consentflow.ConsentKind, as recurring and data-sharing consents do from their
// own packages, so the journey knows no kind of consent.
type JourneyKind struct{ Service *Service }

var _ consentflow.ConsentKind = JourneyKind{}

// Find implements consentflow.ConsentKind.
func (k JourneyKind) Find(ctx context.Context, q consentflow.Querier, id string) (*consentflow.ConsentView, error) {
	c, err := getConsent(ctx, q, id)
	if errors.Is(err, ErrNotFound) {
		return nil, consentflow.ErrConsentNotFound
	}
	if err != nil {
		return nil, err
	}
	v := &consentflow.ConsentView{ID: c.ID, Kind: "payment", ApplicationID: c.ApplicationID, ExpiresAt: c.ExpiresAt,
		Awaiting: c.Status == StatusAwaitingAuthorisation}
	if u := c.Request.LoggedUser; u != nil && u.Document != nil {
		v.Document = u.Document.Identification
	}
	if a := c.Request.DebtorAccount; a != nil {
		v.FixedAccount = &consentflow.Account{ISPB: a.ISPB, Issuer: a.Issuer, Number: a.Number, AccountType: a.AccountType}
	}
	pv := &consentflow.PaymentView{}
	if cr := c.Request.Creditor; cr != nil {
		pv.CreditorName, pv.CreditorDoc = cr.Name, ofb.MaskDocument(cr.CPFCNPJ)
	}
	if pay := c.Request.Payment; pay != nil {
		pv.Amount, pv.When, pv.Method = consentflow.FormatBRL(pay.Amount), describeSchedule(pay), paymentMethod(pay)
	}
	v.Payment = pv
	return v, nil
}

// Approve implements consentflow.ConsentKind.
func (k JourneyKind) Approve(ctx context.Context, tx *sql.Tx, id string, a consentflow.Account) error {
	debtor := &Account{ISPB: a.ISPB, Issuer: a.Issuer, Number: a.Number, AccountType: a.AccountType}
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

// brDate renders an ISO date (2024-10-15) as 15/10/2024; other text is kept.
func brDate(iso string) string {
	d, err := time.Parse("2006-01-02", iso)
	if err != nil {
		return iso
	}
	return d.Format("02/01/2006")
}

var weekdays = map[string]string{
	"SEGUNDA_FEIRA": "segunda-feira", "TERCA_FEIRA": "terça-feira", "QUARTA_FEIRA": "quarta-feira",
	"QUINTA_FEIRA": "quinta-feira", "SEXTA_FEIRA": "sexta-feira", "SABADO": "sábado", "DOMINGO": "domingo",
}

// describeSchedule says when a payment is made, as the WebView shows it.
func describeSchedule(p *Payment) string {
	qty := func(q *int) int {
		if q == nil {
			return 0
		}
		return *q
	}
	sc := p.Schedule
	switch {
	case sc == nil && p.Date != "":
		return "Pagamento único em " + brDate(p.Date)
	case sc == nil:
		return "Pagamento único"
	case sc.Single != nil:
		return "Agendado para " + brDate(sc.Single.Date)
	case sc.Daily != nil:
		return fmt.Sprintf("%d pagamentos diários a partir de %s", qty(sc.Daily.Quantity), brDate(sc.Daily.StartDate))
	case sc.Weekly != nil:
		return fmt.Sprintf("%d pagamentos semanais às %ss a partir de %s", qty(sc.Weekly.Quantity), weekdays[sc.Weekly.DayOfWeek], brDate(sc.Weekly.StartDate))
	case sc.Monthly != nil:
		day := 0
		if sc.Monthly.DayOfMonth != nil {
			day = *sc.Monthly.DayOfMonth
		}
		return fmt.Sprintf("%d pagamentos mensais no dia %d a partir de %s", qty(sc.Monthly.Quantity), day, brDate(sc.Monthly.StartDate))
	case sc.Custom != nil:
		dates := make([]string, len(sc.Custom.Dates))
		for i, d := range sc.Custom.Dates {
			dates[i] = brDate(d)
		}
		return fmt.Sprintf("%d pagamentos em %s", len(dates), strings.Join(dates, ", "))
	}
	return ""
}

// paymentMethod names how a payment is made, as the WebView shows it.
func paymentMethod(p *Payment) string {
	kind := p.Type
	if kind == "PIX" {
		kind = "Pix"
	}
	if p.Details == nil {
		return kind
	}
	names := map[string]string{
		"MANU": "dados da conta", "DICT": "chave Pix", "QRDN": "QR code dinâmico", "QRES": "QR code estático", "INIC": "iniciador",
	}
	if n, ok := names[p.Details.LocalInstrument]; ok {
		return kind + " por " + n
	}
	return kind
}
