package recurring

// LoggedUserDocumentSQL is LoggedUserDocument as a scalar SQL expression
// (PostgreSQL) over consentID, an SQL expression: the logged user's CPF,
// empty when the consent names none, NULL when there is no such recurring
// consent. A consent-flow ticket's create checks it in its own statement.
func LoggedUserDocumentSQL(consentID string) string {
	return `(SELECT COALESCE(request::jsonb #>> '{loggedUser,document,identification}', '') FROM recurring_consents WHERE id = ` + consentID + `)`
}
