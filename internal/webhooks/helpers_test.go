package webhooks_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/vault"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

var epoch = time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)

// verifySignature is an independent Standard Webhooks verifier, written from
// the specification (not with the production Sign): it recomputes
// HMAC-SHA256(key, id.timestamp.body) under the whsec_ secret, requires the
// timestamp within 5 minutes of now, and compares each v1 signature in
// constant time.
func verifySignature(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Unix() - sec; d > 300 || d < -300 {
		return fmt.Errorf("timestamp %d outside the 5-minute tolerance of %d", sec, now.Unix())
	}
	encoded, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return errors.New("secret without whsec_ prefix")
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, id+"."+ts+".")
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && subtle.ConstantTimeCompare(got, want) == 1 {
			return nil
		}
	}
	return errors.New("no signature matches")
}

// request is what a receiver got.
type request struct {
	Header http.Header
	Body   []byte
	Status int // what the receiver answered
}

// receiver is a partner endpoint on 127.0.0.1. respond decides each answer
// (n counts requests from 0); processed records the webhook-ids it handled,
// deduplicated as a correct consumer would.
type receiver struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []request
	respond func(n int, r *http.Request) (status int, header map[string]string)
	acked   map[string]int // 2xx answers per webhook-id
	process map[string]int // side effects per webhook-id (after dedupe)
}

func newReceiver(t testing.TB, respond func(n int, r *http.Request) (int, map[string]string)) *receiver {
	rc := &receiver{t: t, respond: respond, acked: map[string]int{}, process: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func always(status int) func(int, *http.Request) (int, map[string]string) {
	return func(int, *http.Request) (int, map[string]string) { return status, nil }
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	n := len(rc.reqs)
	rc.mu.Unlock()
	status, hdr := rc.respond(n, r)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, request{Header: r.Header.Clone(), Body: body, Status: status})
	id := r.Header.Get("webhook-id")
	if status >= 200 && status < 300 {
		rc.acked[id]++
	}
	if status >= 200 && status < 300 || status == 500 { // a 500 after processing: the classic duplicate trap
		if rc.process[id] == 0 {
			rc.process[id] = 1
		}
	}
	rc.mu.Unlock()
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
}

func (rc *receiver) URL() string { return rc.srv.URL + "/hooks" }

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

// env is a webhook stack on one database: an application, a vault, a job
// client with the deliverer registered, the service and the emitter.
type env struct {
	db      *store.DB
	clk     *clock.Fake
	jobs    *jobs.Client
	svc     *webhooks.Service
	emitter *webhooks.Emitter
	appID   string
	otherID string
	opts    webhooks.Options
}

func newEnv(t testing.TB, db *store.DB, tweak func(*webhooks.Options)) *env {
	t.Helper()
	clk := clock.NewFake(epoch)
	apps := auth.NewApplications(db, clk)
	mk := func(key string) string {
		a, _, err := apps.Create(context.Background(), auth.NewApplication{Name: key, CompanyKey: key, Scopes: []string{"webhooks.read", "webhooks.write"}})
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	o := webhooks.Options{DB: db, Vault: v, Clock: clk, Sandbox: true, Jitter: func() float64 { return 1 }, Timeout: 2 * time.Second}
	if tweak != nil {
		tweak(&o)
	}
	e := &env{db: db, clk: clk, appID: mk("ACESSO"), otherID: mk("OTHER"), opts: o}
	e.jobs = jobs.New(db, jobs.Config{Clock: clk, Owner: "test"})
	webhooks.NewDeliverer(o).Register(e.jobs)
	e.svc = webhooks.NewService(o)
	e.emitter = webhooks.NewEmitter(clk)
	return e
}

func (e *env) subscribe(t testing.TB, url string, events ...string) (*webhooks.Subscription, string) {
	t.Helper()
	s, secret, err := e.svc.Create(context.Background(), e.appID, webhooks.CreateSubscription{URL: url, Events: events})
	if err != nil {
		t.Fatalf("subscribe %s: %v", url, err)
	}
	return s, secret
}

func (e *env) emit(t testing.TB, ev webhooks.Event) {
	t.Helper()
	if ev.ApplicationID == "" {
		ev.ApplicationID = e.appID
	}
	if ev.Context == "" {
		ev.Context = "Card"
	}
	if ev.EntityID == "" {
		ev.EntityID = "card-1"
	}
	err := e.db.Write(context.Background(), func(tx *sql.Tx) error { return e.emitter.Emit(context.Background(), tx, ev) })
	if err != nil {
		t.Fatalf("emit: %v", err)
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

func (e *env) deliveries(t testing.TB, f webhooks.DeliveryFilter) []*webhooks.Delivery {
	t.Helper()
	p, err := e.svc.Deliveries(context.Background(), e.appID, f)
	if err != nil {
		t.Fatal(err)
	}
	return p.Deliveries
}

func (e *env) delivery(t testing.TB, id string) *webhooks.Delivery {
	t.Helper()
	d, err := e.svc.Delivery(context.Background(), e.appID, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// resolverFunc lets a test decide answers per lookup.
type resolverFunc func(host string) []string

func (f resolverFunc) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ips := f(host)
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ips {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}
