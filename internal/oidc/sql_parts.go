package oidc

import (
	"strconv"
	"strings"
	"time"
)

// ClientNameSQL is ClientName as a scalar SQL expression (PostgreSQL) over
// clientID, an SQL expression: the registered client's name, empty when there
// is none. A statement that already runs for the client's sake (a
// consent-flow ticket's redemption) reads it without a round trip of its
// own. The data column is always Ponte's json.Marshal of a goidc.Client,
// whose embedded metadata keeps the name at the top level.
func ClientNameSQL(clientID string) string {
	return `COALESCE((SELECT data::jsonb ->> 'client_name' FROM oidc_clients WHERE id = ` + clientID + `), '')`
}

// PushedRequestSQL is PushedRequest and ConsentID as one query
// (PostgreSQL), for a statement that decides in the database (a
// consent-flow ticket's create): requestURI and clientID as PushedRequest
// takes them, placeholders numbered from first. The query has a row exactly
// when PushedRequest finds the request, with two columns: consent_id, the
// consent its scope names (ConsentID; NULL for none), and exact, false when
// the scope holds a character beyond ASCII, whose splitting into scopes
// (strings.Fields, Unicode spaces) only Go decides.
func (s *Storage) PushedRequestSQL(requestURI, clientID string, first int) (query string, args []any) {
	if !strings.HasPrefix(requestURI, RequestURIPrefix) {
		requestURI = RequestURIPrefix + requestURI
	}
	now := s.clock.Now()
	// PushedRequest refuses now - created_at >= RequestURILifetime, in
	// nanoseconds: created_at (ms) must be above this.
	oldest := (now.UnixNano() - (RequestURILifetime * time.Second).Nanoseconds()) / int64(time.Millisecond)
	p := func(i int) string { return "$" + strconv.Itoa(first+i) }
	scope := `COALESCE(data::jsonb ->> 'scope', '')`
	query = `SELECT (SELECT CASE WHEN starts_with(f, ` + p(4) + `::text) THEN substr(f, length(` + p(4) + `::text) + 1) ELSE substr(f, length(` + p(5) + `::text) + 1) END
		FROM regexp_split_to_table(` + scope + `, ` + p(6) + `::text) WITH ORDINALITY AS fields(f, n)
		WHERE (starts_with(f, ` + p(4) + `::text) AND length(f) > length(` + p(4) + `::text))
			OR (starts_with(f, ` + p(5) + `::text) AND length(f) > length(` + p(5) + `::text))
		ORDER BY n LIMIT 1) AS consent_id,
	` + scope + ` !~ ` + p(7) + `::text AS exact
	FROM oidc_authn_sessions
	WHERE pushed_auth_req_id = ` + p(0) + `::text AND expires_at > ` + p(1) + `::bigint AND client_id = ` + p(2) + `::text AND created_at > ` + p(3) + `::bigint`
	args = []any{requestURI, now.UnixMilli(), clientID, oldest, RecurringConsentScopePrefix, ConsentScopePrefix,
		// strings.Fields' ASCII spaces; any other byte past ASCII makes the
		// row inexact.
		"[ \t\n\v\f\r]+", "[^\x01-\x7f]"}
	return query, args
}
