package cluster_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"
)

// TestConcurrentSandboxStart: four sandbox instances started at the same
// moment on one empty database all seed it (migrations, demo application
// and customers, sandbox cards, Ponte's own brand and journey) and all
// start; the seed exists once, and every instance serves with it.
func TestConcurrentSandboxStart(t *testing.T) {
	c := newCluster(t, 4) // newCluster starts them concurrently and checks their demo credentials agree
	db, err := sql.Open("pgx", c.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		query string
		want  int
	}{
		{`SELECT count(*) FROM applications WHERE sandbox_demo = 1`, 1},
		{`SELECT count(*) FROM itp_brands`, 1},
		{`SELECT count(*) FROM itp_journeys WHERE alias = 'sandbox'`, 1},
		{`SELECT count(*) FROM (SELECT application_id, proxy FROM cards GROUP BY application_id, proxy HAVING count(*) > 1) d`, 0},
		{`SELECT count(*) FROM (SELECT application_id, document FROM customers GROUP BY application_id, document HAVING count(*) > 1) d`, 0},
	} {
		if got := count(t, db, tc.query); got != tc.want {
			t.Errorf("%s = %d, want %d", tc.query, got, tc.want)
		}
	}
	client := newClient(1)
	for _, in := range c.Instances {
		tok, err := token(t.Context(), client, in.URL, c.ClientID, c.ClientSecret, "")
		if err != nil {
			t.Fatalf("%s: %v", in.Name, err)
		}
		status, body, err := send(t.Context(), client, http.MethodPost, in.URL+"/openfinance/consent-flow/ticket", tok,
			fmt.Appendf(nil, `{"requestUri":"%s","clientId":"%s","documentNumber":"47742663023"}`, uuid.NewString(), uuid.NewString()),
			map[string]string{"idempotencyKey": uuid.NewString()})
		if err != nil || status != http.StatusCreated {
			t.Errorf("%s: ticket %d %s %v", in.Name, status, body, err)
		}
	}
}
