package ofwebhook_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/ofwebhook"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

var epoch = time.Date(2026, 12, 7, 14, 30, 5, 0, time.UTC)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// pki is a test certificate authority with a server certificate for
// 127.0.0.1 and a client certificate (Ponte's transport certificate).
type pki struct {
	roots  *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ip net.IP) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		if ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	p := &pki{roots: x509.NewCertPool()}
	p.roots.AddCert(ca)
	p.server = leaf(2, "initiator", x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	p.client = leaf(3, "ponte-transport", x509.ExtKeyUsageClientAuth, nil)
	return p
}

// got is one notification a receiver got.
type got struct {
	Path       string
	Header     http.Header
	Body       string
	ClientCert string // the verified client certificate's CN
}

// receiver is an initiator's HTTPS server that demands a client
// certificate issued by the test CA and answers with respond.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []got
}

func newReceiver(t testing.TB, p *pki, respond func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g := got{Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)}
		if len(r.TLS.VerifiedChains) > 0 {
			g.ClientCert = r.TLS.VerifiedChains[0][0].Subject.CommonName
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, g)
		n := len(rc.reqs)
		rc.mu.Unlock()
		code := respond(n)
		if code == http.StatusAccepted {
			w.Header().Set(ofwebhook.HeaderInteractionID, r.Header.Get(ofwebhook.HeaderInteractionID))
		}
		w.WriteHeader(code)
	}))
	rc.srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.roots,
		MinVersion: tls.VersionTLS12}
	rc.srv.Config.ErrorLog = nil
	rc.srv.StartTLS()
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []got {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]got(nil), rc.reqs...)
}

// recipients is a fixed table of webhook URIs by application.
type recipients map[string][]string

func (r recipients) WebhookURIs(_ context.Context, _ *sql.Tx, applicationID string) ([]string, error) {
	return r[applicationID], nil
}

type env struct {
	db    *store.DB
	clock *clock.Fake
	jobs  *jobs.Client
	n     *ofwebhook.Notifier
}

func newEnv(t testing.TB, db *store.DB, uris recipients, o ofwebhook.Options) *env {
	t.Helper()
	fc := clock.NewFake(epoch)
	o.DB, o.Clock = db, fc
	if o.Jitter == nil {
		o.Jitter = func() float64 { return 1 }
	}
	jq := jobs.New(db, jobs.Config{Clock: fc})
	ofwebhook.NewDeliverer(o).Register(jq)
	return &env{db: db, clock: fc, jobs: jq, n: &ofwebhook.Notifier{Clock: fc, Recipients: uris}}
}

func (e *env) notify(t testing.TB, ns ...ofwebhook.Notification) {
	t.Helper()
	if err := e.db.Write(context.Background(), func(tx *sql.Tx) error { return e.n.Notify(context.Background(), tx, ns...) }); err != nil {
		t.Fatalf("Notify: %v", err)
	}
}

func (e *env) runDue(t testing.TB) int {
	t.Helper()
	n, err := e.jobs.RunDue(context.Background())
	if err != nil {
		t.Fatalf("RunDue: %v", err)
	}
	return n
}

func deliveries(t testing.TB, db *store.DB, id string) []*ofwebhook.Delivery {
	t.Helper()
	ds, err := ofwebhook.Deliveries(context.Background(), db, id)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestNotifyOverMutualTLS: each transition the convention lists reaches
// the initiator's HTTPS server, which verifies Ponte's client certificate,
// at the exact path with the exact body and a fresh interaction id.
func TestNotifyOverMutualTLS(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rc := newReceiver(t, p, func(int) int { return http.StatusAccepted })
		base := rc.srv.URL + "/kong3"
		e := newEnv(t, db, recipients{"itp": {base}}, ofwebhook.Options{Sandbox: true, Certificate: &p.client, RootCAs: p.roots})
		at := epoch.Add(-3 * time.Second).Add(400 * time.Millisecond) // the fraction is dropped
		cases := []struct {
			resource ofwebhook.Resource
			id       string
			status   string
			path     string
		}{
			{ofwebhook.PixPayment, "pay-1", "ACSC", "/kong3/open-banking/webhook/v1/payments/v4/pix/payments/pay-1"},
			{ofwebhook.PaymentConsent, "urn:ponte:c-1", "REJECTED", "/kong3/open-banking/webhook/v1/payments/v4/consents/urn:ponte:c-1"},
			{ofwebhook.RecurringPayment, "rp-1", "ACSC", "/kong3/open-banking/webhook/v1/automatic-payments/v2/pix/recurring-payments/rp-1"},
			{ofwebhook.RecurringConsent, "urn:ponte:rc-1", "REVOKED", "/kong3/open-banking/webhook/v1/automatic-payments/v2/recurring-consents/urn:ponte:rc-1"},
		}
		for _, c := range cases {
			e.notify(t, ofwebhook.Notification{ApplicationID: "itp", Resource: c.resource, ID: c.id, Status: c.status, At: at})
		}
		if n := e.runDue(t); n != len(cases) {
			t.Fatalf("ran %d jobs, want %d", n, len(cases))
		}
		reqs := rc.got()
		if len(reqs) != len(cases) {
			t.Fatalf("receiver got %d requests, want %d", len(reqs), len(cases))
		}
		byPath := map[string]got{}
		for _, r := range reqs {
			byPath[r.Path] = r
		}
		for _, c := range cases {
			r, ok := byPath[c.path]
			if !ok {
				t.Errorf("%s %s: nothing posted to %s (got %v)", c.resource, c.status, c.path, reqs)
				continue
			}
			if r.Body != `{"data":{"timestamp":"2026-12-07T14:30:02Z"}}` {
				t.Errorf("%s: body %s", c.path, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type %q", c.path, ct)
			}
			id := r.Header.Get(ofwebhook.HeaderInteractionID)
			if !uuidPattern.MatchString(id) {
				t.Errorf("%s: x-webhook-interaction-id %q is not a UUID", c.path, id)
			}
			if r.ClientCert != "ponte-transport" {
				t.Errorf("%s: client certificate %q, want Ponte's transport certificate", c.path, r.ClientCert)
			}
			ds := deliveries(t, db, c.id)
			if len(ds) != 1 || ds[0].Status != ofwebhook.StatusDelivered || len(ds[0].Log) != 1 ||
				ds[0].Log[0].StatusCode != http.StatusAccepted || ds[0].Log[0].InteractionID != id {
				t.Errorf("%s: delivery log %+v", c.path, ds)
			}
		}
		// The same change recorded again (a replayed transaction) is not sent twice.
		e.notify(t, ofwebhook.Notification{ApplicationID: "itp", Resource: ofwebhook.PixPayment, ID: "pay-1", Status: "ACSC", At: at})
		if n := e.runDue(t); n != 0 || len(deliveries(t, db, "pay-1")) != 1 {
			t.Errorf("a repeated change ran %d jobs", n)
		}
	})
}

// TestNotifyRetried: a receiver answering 500 gets the notification again on
// the schedule, with a new interaction id, until it answers 202.
func TestNotifyRetried(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rc := newReceiver(t, p, func(n int) int {
			if n == 1 {
				return http.StatusInternalServerError
			}
			return http.StatusAccepted
		})
		e := newEnv(t, db, recipients{"itp": {rc.srv.URL}}, ofwebhook.Options{Sandbox: true, Certificate: &p.client, RootCAs: p.roots})
		e.notify(t, ofwebhook.Notification{ApplicationID: "itp", Resource: ofwebhook.PixPayment, ID: "pay-2", Status: "RJCT", At: epoch})
		e.runDue(t)
		d := deliveries(t, db, "pay-2")[0]
		if d.Status != ofwebhook.StatusFailed || d.LastStatusCode != 500 || !d.NextAttemptAt.Equal(epoch.Add(5*time.Second)) {
			t.Fatalf("after a 500: %+v", d)
		}
		if n := e.runDue(t); n != 0 {
			t.Fatalf("the retry ran before its time (%d jobs)", n)
		}
		e.clock.Advance(5 * time.Second)
		e.runDue(t)
		d = deliveries(t, db, "pay-2")[0]
		reqs := rc.got()
		if d.Status != ofwebhook.StatusDelivered || len(d.Log) != 2 || len(reqs) != 2 {
			t.Fatalf("after the retry: %+v, %d requests", d, len(reqs))
		}
		if a, b := reqs[0].Header.Get(ofwebhook.HeaderInteractionID), reqs[1].Header.Get(ofwebhook.HeaderInteractionID); a == b || reqs[0].Body != reqs[1].Body {
			t.Errorf("retry: interaction ids %q, %q (must differ), bodies %s, %s (must match)", a, b, reqs[0].Body, reqs[1].Body)
		}
		if d.Log[0].StatusCode != 500 || d.Log[0].Error != "HTTP 500" || d.Log[1].StatusCode != 202 {
			t.Errorf("attempt log %+v", d.Log)
		}
	})
}

// TestNotifyNothing: an initiator without webhook URIs gets nothing, and
// nothing is queued for it.
func TestNotifyNothing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, recipients{"itp": {"https://itp.example"}}, ofwebhook.Options{})
		e.notify(t, ofwebhook.Notification{ApplicationID: "other", Resource: ofwebhook.PixPayment, ID: "pay-3", Status: "ACSC", At: epoch})
		if ds := deliveries(t, db, "pay-3"); len(ds) != 0 {
			t.Errorf("deliveries for an initiator without webhook URIs: %+v", ds)
		}
		var n int
		if err := db.Read().QueryRow(`SELECT COUNT(*) FROM jobs WHERE kind = $1`, ofwebhook.JobKind).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d jobs queued (%v)", n, err)
		}
		if err := db.Write(context.Background(), func(tx *sql.Tx) error {
			return e.n.Notify(context.Background(), tx, ofwebhook.Notification{ApplicationID: "itp", Resource: ofwebhook.PixPayment})
		}); err == nil {
			t.Error("a notification without id or status was accepted")
		}
	})
}

// TestNotifyGuarded: outside the sandbox the address policy of the partner
// webhooks applies: loopback and private addresses are refused on the
// socket, whatever the URL says, and http is refused; nothing is sent.
func TestNotifyGuarded(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rc := newReceiver(t, p, func(int) int { return http.StatusAccepted })
		cases := []struct {
			name, url, want string
		}{
			{"loopback", rc.srv.URL, "loopback address not allowed"},
			{"private", "https://10.1.2.3:8443", "private address not allowed"},
			{"metadata", "https://169.254.169.254", "link-local address not allowed"},
			{"http", "http://itp.example", "http URLs are allowed only in sandbox mode"},
		}
		uris := recipients{}
		for _, c := range cases {
			uris[c.name] = []string{c.url}
		}
		e := newEnv(t, db, uris, ofwebhook.Options{Certificate: &p.client, RootCAs: p.roots, Timeout: 2 * time.Second})
		for _, c := range cases {
			e.notify(t, ofwebhook.Notification{ApplicationID: c.name, Resource: ofwebhook.PixPayment, ID: "pay-" + c.name, Status: "ACSC", At: epoch})
		}
		e.runDue(t)
		for _, c := range cases {
			ds := deliveries(t, db, "pay-"+c.name)
			if len(ds) != 1 || ds[0].Status != ofwebhook.StatusFailed || ds[0].LastStatusCode != 0 || !strings.Contains(ds[0].LastError, c.want) {
				t.Errorf("%s: %+v, want a refusal naming %q", c.name, ds[0], c.want)
			}
		}
		if reqs := rc.got(); len(reqs) != 0 {
			t.Errorf("the loopback receiver got %d requests outside the sandbox", len(reqs))
		}
	})
}
