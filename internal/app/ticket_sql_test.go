package app

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/dataconsents"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestRequestURISQLDecidesAsCheckRequestURI holds the requestUri check that
// a ticket's statement makes on PostgreSQL (RequestURISQL) to the check in
// Go (CheckRequestURI) on the same rows: a pushed request of each kind of
// consent (payment, recurring, data sharing), with and without a logged
// user, none, one that exists nowhere, scopes split by tabs or holding an
// empty consent scope first, another client, another document, the id
// part, an expired request and one pushed 60 s ago; and "Meus
// compartilhamentos" (the partner application by client id or id, enabled
// or not, and its customer). A scope beyond ASCII is left to Go ("tx").
func TestRequestURISQLDecidesAsCheckRequestURI(t *testing.T) {
	t.Parallel()
	base := os.Getenv(storetest.EnvVar)
	if base == "" {
		t.Skip("PostgreSQL only: set " + storetest.EnvVar)
	}
	ctx := context.Background()
	db := storetest.Open(t, storetest.FreshSchema(t, base))
	clk := clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC))
	storage := oidc.NewStorage(db, clk)
	check := pushedRequests{requests: storage, apps: auth.NewApplications(db, clk), payments: &payments.Service{}, recurring: &recurring.Service{}, data: &dataconsents.Service{}}

	for _, q := range []string{
		`INSERT INTO applications (id, client_id, name, company_key, scopes, secret_hash, created_at, updated_at)
			VALUES ('app', 'app-client', 'App', 'APP', '', '', 0, 0)`,
		`INSERT INTO applications (id, client_id, name, company_key, scopes, secret_hash, disabled, created_at, updated_at) VALUES
			('partner', 'partner-client', 'Partner', 'PARTNER', '', '', 0, 0, 0), ('off', 'off-client', 'Off', 'OFF', '', '', 1, 0, 0)`,
		`INSERT INTO customers (id, application_id, document, name, created_at) VALUES
			('cust1', 'partner', '47742663023', 'Ana', 0), ('cust2', 'off', '47742663023', 'Ana', 0)`,
		`INSERT INTO payment_consents (id, application_id, status, request, created_at, expires_at, status_updated_at) VALUES
			('urn:ponte:p1', 'app', 'AWAITING_AUTHORISATION', '{"loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}}}', 0, 0, 0),
			('urn:ponte:p2', 'app', 'AWAITING_AUTHORISATION', '{"loggedUser":null}', 0, 0, 0)`,
		`INSERT INTO recurring_consents (id, application_id, status, request, start_at, created_at, status_updated_at) VALUES
			('urn:ponte:rc:r1', 'app', 'AWAITING_AUTHORISATION', '{"loggedUser":{"document":{"identification":"52998224725","rel":"CPF"}}}', 0, 0, 0)`,
		`INSERT INTO data_consents (id, application_id, status, document, permissions, created_at, status_updated_at) VALUES
			('urn:ponte:dc:d1', 'app', 'AWAITING_AUTHORISATION', '11144477735', 'ACCOUNTS_READ', 0, 0)`,
	} {
		if _, err := db.Read().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	push := func(name, scope string, lifetime int) string {
		uri := oidc.RequestURIPrefix + name
		err := storage.AuthnSessions().Save(ctx, &goidc.AuthnSession{ID: name, ClientID: "c1", PushedAuthReqID: uri,
			ExpiresAtTimestamp:      goidc.TimestampNow() + lifetime,
			AuthorizationParameters: goidc.AuthorizationParameters{Scopes: scope}})
		if err != nil {
			t.Fatal(err)
		}
		return uri
	}
	const (
		ok       = consentflow.VerdictAccepted
		notFound = consentflow.VerdictNotFound
		mismatch = consentflow.VerdictMismatch
		inTx     = consentflow.VerdictInTransaction
	)
	type tc struct {
		name, uri, client, document string
		want                        string // CheckRequestURI's verdict
		sql                         string // RequestURISQL's, when not want
	}
	cases := func() []tc {
		return []tc{
			{name: "no consent", uri: push("none", "openid payments", 600), client: "c1", document: "47742663023", want: ok},
			{name: "payment, its user", uri: push("pay", "openid payments consent:urn:ponte:p1", 600), client: "c1", document: "47742663023", want: ok},
			{name: "payment, another user", uri: oidc.RequestURIPrefix + "pay", client: "c1", document: "52998224725", want: mismatch},
			{name: "payment, the id part", uri: "pay", client: "c1", document: "47742663023", want: ok},
			{name: "payment, another client", uri: oidc.RequestURIPrefix + "pay", client: "c2", document: "47742663023", want: notFound},
			{name: "payment without a logged user", uri: push("nouser", "openid payments consent:urn:ponte:p2", 600), client: "c1", document: "52998224725", want: ok},
			{name: "recurring, its user", uri: push("rec", "openid recurring-payments recurring-consent:urn:ponte:rc:r1", 600), client: "c1", document: "52998224725", want: ok},
			{name: "recurring, another user", uri: oidc.RequestURIPrefix + "rec", client: "c1", document: "47742663023", want: mismatch},
			{name: "data sharing, its user", uri: push("data", "openid consents consent:urn:ponte:dc:d1", 600), client: "c1", document: "11144477735", want: ok},
			{name: "data sharing, another user", uri: oidc.RequestURIPrefix + "data", client: "c1", document: "47742663023", want: mismatch},
			{name: "a consent that exists nowhere", uri: push("missing", "openid payments consent:urn:ponte:gone", 600), client: "c1", document: "47742663023", want: notFound},
			{name: "tabs and an empty consent scope first", uri: push("tabs", "openid\tconsent: recurring-consent:\n\tconsent:urn:ponte:p1 consent:urn:ponte:dc:d1", 600), client: "c1", document: "52998224725", want: mismatch},
			{name: "the first consent scope wins", uri: push("first", "consent:urn:ponte:dc:d1  consent:urn:ponte:p1", 600), client: "c1", document: "11144477735", want: ok},
			{name: "a scope beyond ASCII", uri: push("nbsp", "openid\u00a0consent:urn:ponte:p1", 600), client: "c1", document: "52998224725", want: mismatch, sql: inTx},
			{name: "unknown", uri: oidc.RequestURIPrefix + "unknown", client: "c1", document: "47742663023", want: notFound},
		}
	}
	run := func(c tc) {
		t.Helper()
		err := db.Write(ctx, func(tx *sql.Tx) error { return check.CheckRequestURI(ctx, tx, c.uri, c.client, c.document) })
		got := ok
		switch {
		case errors.Is(err, consentflow.ErrRequestURINotFound):
			got = notFound
		case errors.Is(err, consentflow.ErrDocumentMismatch):
			got = mismatch
		case err != nil:
			t.Fatalf("%s: CheckRequestURI: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: CheckRequestURI says %s, the case %s", c.name, got, c.want)
		}
		want := c.want
		if c.sql != "" {
			want = c.sql
		}
		expr, args, sqlOK := check.RequestURISQL(ctx, c.uri, c.client, c.document, 1)
		verdict := inTx
		if sqlOK {
			if err := db.Pool().QueryRow(ctx, `SELECT (`+expr+`)::text`, args...).Scan(&verdict); err != nil {
				t.Fatalf("%s: RequestURISQL: %v", c.name, err)
			}
		}
		if verdict != want {
			t.Errorf("%s: RequestURISQL says %s, want %s", c.name, verdict, want)
		}
	}
	for _, c := range cases() {
		run(c)
	}
	mine := dataconsents.MySharingRequestURI
	for _, c := range []tc{
		{name: "my sharing: an unknown client", uri: mine, client: "nobody", document: "47742663023", want: notFound},
		{name: "my sharing: the partner's customer", uri: mine, client: "partner-client", document: "47742663023", want: ok},
		{name: "my sharing: the document with spaces", uri: mine, client: "partner-client", document: " 47742663023 ", want: ok},
		{name: "my sharing: not the partner's customer", uri: mine, client: "partner-client", document: "52998224725", want: mismatch},
		{name: "my sharing: the partner by its id", uri: mine, client: "partner", document: "47742663023", want: ok},
		{name: "my sharing: a disabled partner", uri: mine, client: "off-client", document: "47742663023", want: notFound},
	} {
		run(c)
	}

	// 59 s after the push the requests are live, at 60 s gone (pushed again
	// with a 30 s session: expired then).
	short := push("short", "openid payments", 30)
	clk.Advance(31 * time.Second)
	run(tc{name: "expired session", uri: short, client: "c1", document: "47742663023", want: notFound})
	clk.Advance(28 * time.Second)
	run(tc{name: "59 s after the push", uri: oidc.RequestURIPrefix + "pay", client: "c1", document: "47742663023", want: ok})
	clk.Advance(time.Second)
	run(tc{name: "60 s after the push", uri: oidc.RequestURIPrefix + "pay", client: "c1", document: "47742663023", want: notFound})
}
