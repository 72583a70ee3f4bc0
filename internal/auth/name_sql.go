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
