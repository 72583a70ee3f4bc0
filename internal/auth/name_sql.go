package auth

// EnabledNameSQL is a scalar SQL expression over applicationID, an SQL
// expression holding an application's id: the name of that application if
// it is enabled, NULL otherwise — what a reader of Get shows for an enabled
// application, for a statement that already runs for its sake (a
// consent-flow ticket's redemption names its partner) without a round trip
// of its own. Ids and client ids are different values, so the id alone
// finds the row Get finds.
func EnabledNameSQL(applicationID string) string {
	return `(SELECT name FROM applications WHERE id = ` + applicationID + ` AND disabled = 0)`
}

// EnabledIDSQL is a scalar SQL expression over idOrClientID, an SQL
// expression: the id of the application Get finds for it (by client_id,
// else by id) if that application is enabled, NULL otherwise.
func EnabledIDSQL(idOrClientID string) string {
	return `(SELECT CASE WHEN disabled = 0 THEN id END FROM (
		SELECT id, disabled, 0 AS rank FROM applications WHERE client_id = ` + idOrClientID + `
		UNION ALL SELECT id, disabled, 1 FROM applications WHERE id = ` + idOrClientID + `) found ORDER BY rank LIMIT 1)`
}
