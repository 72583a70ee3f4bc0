package app

import (
	"context"
	"strconv"
	"strings"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

// pageNames lets a WebView redemption on PostgreSQL read, in its own
// statement, the names the page shows: the initiator's registered name
// (the authorization server's clients) and the holder partner's (Ponte's
// applications), where the page read each itself (issue 17 §2: the whole
// request in one round trip).
type pageNames struct{}

// InitiatorNameSQL implements consentflow.PageNames.
func (pageNames) InitiatorNameSQL(clientID string) string { return oidc.ClientNameSQL(clientID) }

// PartnerNameSQL implements consentflow.PageNames.
func (pageNames) PartnerNameSQL(applicationID string) string {
	return auth.EnabledNameSQL(applicationID)
}

// RequestURISQL implements consentflow.RequestURIStatement: CheckRequestURI
// as one expression of the ticket's insert on PostgreSQL — the pushed
// request (oidc.Storage.PushedRequestSQL), then the logged user's document
// of the consent it names, looked for as a payment, a recurring, then a
// data-sharing consent; for "Meus compartilhamentos", the partner
// application and its customer. A scope only Go splits exactly stays in the
// transaction.
func (p pushedRequests) RequestURISQL(_ context.Context, requestURI, clientID, documentNumber string, first int) (string, []any, bool) {
	verdict := func(v string) string { return "'" + v + "'" }
	if requestURI == dataconsents.MySharingRequestURI {
		// mySharing: an enabled partner application that serves the
		// document as a customer.
		client, document := "$"+strconv.Itoa(first)+"::text", "$"+strconv.Itoa(first+1)+"::text"
		expr := `SELECT CASE
		WHEN app.id IS NULL THEN ` + verdict(consentflow.VerdictNotFound) + `
		WHEN NOT ` + customers.ExistsSQL("app.id", document) + ` THEN ` + verdict(consentflow.VerdictMismatch) + `
		ELSE ` + verdict(consentflow.VerdictAccepted) + ` END
	FROM (SELECT ` + auth.EnabledIDSQL(client) + ` AS id) app`
		return expr, []any{clientID, strings.TrimSpace(documentNumber)}, true
	}
	pushed, args := p.requests.PushedRequestSQL(requestURI, clientID, first)
	document := "$" + strconv.Itoa(first+len(args)) + "::text"
	args = append(args, documentNumber)
	expr := `SELECT CASE
		WHEN pushed.exact IS NULL THEN ` + verdict(consentflow.VerdictNotFound) + `
		WHEN NOT pushed.exact THEN ` + verdict(consentflow.VerdictInTransaction) + `
		WHEN pushed.consent_id IS NULL THEN ` + verdict(consentflow.VerdictAccepted) + `
		WHEN want.document IS NULL THEN ` + verdict(consentflow.VerdictNotFound) + `
		WHEN want.document <> '' AND want.document <> ` + document + ` THEN ` + verdict(consentflow.VerdictMismatch) + `
		ELSE ` + verdict(consentflow.VerdictAccepted) + ` END
	FROM (SELECT 1) one
	LEFT JOIN (` + pushed + `) pushed ON true
	LEFT JOIN LATERAL (SELECT COALESCE(` + payments.LoggedUserDocumentSQL("pushed.consent_id") + `,
		` + recurring.LoggedUserDocumentSQL("pushed.consent_id") + `,
		` + dataconsents.LoggedUserDocumentSQL("pushed.consent_id") + `) AS document) want ON true`
	return expr, args, true
}
