package payments

// LoggedUserDocumentSQL is LoggedUserDocument as a scalar SQL expression
// (PostgreSQL) over consentID, an SQL expression: the logged user's CPF,
// empty when the consent names none, NULL when there is no such payment
// consent. A consent-flow ticket's create checks it in its own statement.
func LoggedUserDocumentSQL(consentID string) string {
	return `(SELECT COALESCE(request::jsonb #>> '{loggedUser,document,identification}', '') FROM payment_consents WHERE id = ` + consentID + `)`
}
