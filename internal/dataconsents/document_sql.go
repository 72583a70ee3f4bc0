package dataconsents

// LoggedUserDocumentSQL is LoggedUserDocument as a scalar SQL expression
// (PostgreSQL) over consentID, an SQL expression: the consent's CPF, NULL
// when there is no such data-sharing consent. A consent-flow ticket's
// create checks it in its own statement.
func LoggedUserDocumentSQL(consentID string) string {
	return `(SELECT document FROM data_consents WHERE id = ` + consentID + `)`
}
