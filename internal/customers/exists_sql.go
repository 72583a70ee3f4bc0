package customers

// ExistsSQL is CustomerTx's "found" as an SQL condition over appID and
// document, SQL expressions (the document already trimmed): for a
// statement that checks it without a round trip of its own (a consent-flow
// ticket's create).
func ExistsSQL(appID, document string) string {
	return `EXISTS (SELECT 1 FROM customers WHERE application_id = ` + appID + ` AND document = ` + document + `)`
}
