package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/itpflow"
	"github.com/ponte-ofb/ponte/internal/ofwebhook"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// Issue 16 §5c end to end through the sandbox loop: Ponte-as-initiator
// registered its public URL as its webhook URI at the sandbox brand (Ponte's
// own holder side). When the holder settles the Pix payment, it notifies
// the initiator over HTTP; the initiator's receiving route reads the payment
// at the brand at once. The clock is held before the initiator's first
// scheduled read, so the payment can only reach ACSC through the webhook.
func TestOFWebhookDrivesBrickPayment(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			// The clock follows the wall clock through the journey (go-oidc
			// stamps the id token with it), then moves only when the test says.
			clk := clock.NewFake(time.Now())
			stopFollowing := apptest.FollowWallClock(t, clk)
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: clk})
			_, tok := brickFintech(t, s)
			decideBrickConsent(t, s, tok, brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID), true)
			stopFollowing()
			// The initiator creates the payment at the brand (its create job is due now).
			if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			db := s.App.DB.Read()
			var itpID, paymentID, brandConsentID string
			if err := db.QueryRowContext(t.Context(), `SELECT id, COALESCE(payment_id, ''), consent_id FROM itp_payments`).
				Scan(&itpID, &paymentID, &brandConsentID); err != nil || paymentID == "" {
				t.Fatalf("the initiator's payment: %q %v", paymentID, err)
			}
			jobRunAt := func(where string, args ...any) (int64, string) {
				t.Helper()
				var at int64
				var state string
				if err := db.QueryRowContext(t.Context(), `SELECT run_at, state FROM jobs WHERE `+where, args...).Scan(&at, &state); err != nil {
					t.Fatalf("job %s %v: %v", where, args, err)
				}
				return at, state
			}
			pollAt, _ := jobRunAt(`unique_key = $1`, itpflow.JobPaymentPoll+":"+itpID+":0")
			settleAt, _ := jobRunAt(`kind = 'payments.pix.settle' AND state = 'available'`)
			if settleAt >= pollAt {
				t.Fatalf("the holder settles at %d, after the initiator's first read at %d", settleAt, pollAt)
			}
			s.Clock.Set(time.UnixMilli(settleAt))
			status := func() string {
				var st string
				if err := db.QueryRowContext(t.Context(), `SELECT status FROM itp_payments WHERE id = $1`, itpID).Scan(&st); err != nil {
					t.Fatal(err)
				}
				return st
			}
			for i := 0; i < 20 && !itpflow.FinalPayment(status()); i++ {
				if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if st := status(); st != itpflow.PaymentACSC {
				t.Fatalf("the initiator's payment is %s, want ACSC through the webhook", st)
			}
			if now := s.Clock.Now().UnixMilli(); now >= pollAt {
				t.Fatalf("the clock (%d) reached the scheduled read (%d)", now, pollAt)
			}
			if _, state := jobRunAt(`unique_key = $1`, itpflow.JobPaymentPoll+":"+itpID+":0"); state != "available" {
				t.Errorf("the scheduled read ran (%s): the webhook was not what moved the payment", state)
			}
			if _, state := jobRunAt(`unique_key LIKE $1`, itpflow.JobPaymentPoll+":webhook:"+itpID+":%"); state != "completed" {
				t.Errorf("the notified read is %s", state)
			}
			// The holder's delivery log: the payment's ACSC and the consent's CONSUMED, each a 202.
			for _, c := range []struct{ id, path string }{
				{paymentID, "/open-banking/webhook/v1/payments/v4/pix/payments/" + paymentID},
				{brandConsentID, "/open-banking/webhook/v1/payments/v4/consents/" + brandConsentID},
			} {
				ds, err := ofwebhook.Deliveries(t.Context(), s.App.DB, c.id)
				if err != nil {
					t.Fatal(err)
				}
				if len(ds) != 1 || ds[0].URL != s.URL+c.path || ds[0].Status != ofwebhook.StatusDelivered || ds[0].LastStatusCode != 202 {
					t.Errorf("holder deliveries for %s: %+v", c.id, ds)
				}
			}

			// A consent the user cancels at the holder: REJECTED, notified too.
			decideBrickConsent(t, s, tok, brickConsentBody(s.Clock.Now(), s.App.SandboxBrandID), false)
			var rejected string
			if err := db.QueryRowContext(t.Context(), `SELECT id FROM payment_consents WHERE status = 'REJECTED'`).Scan(&rejected); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			ds, err := ofwebhook.Deliveries(t.Context(), s.App.DB, rejected)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || ds[0].ResourceStatus != "REJECTED" || ds[0].URL != s.URL+"/open-banking/webhook/v1/payments/v4/consents/"+rejected ||
				ds[0].Status != ofwebhook.StatusDelivered || ds[0].LastStatusCode != 202 {
				t.Errorf("holder deliveries for the rejected consent: %+v", ds)
			}
		})
	}
}

// TestOFWebhookReceiverRefuses: notifications that break the official
// contract are refused with a 400 (or 415) in the Open Finance shape and
// queue nothing; a well-formed one about an id that is none of Ponte's
// payments gets the same 202 as any other and queues nothing either.
func TestOFWebhookReceiverRefuses(t *testing.T) {
	t.Parallel()
	const (
		pixPath  = "/open-banking/webhook/v1/payments/v4/pix/payments/"
		body     = `{"data":{"timestamp":"2026-12-07T14:30:00Z"}}`
		interact = "0b1c2d3e-4f50-4617-8283-949596979899"
	)
	cases := []struct {
		name, path, interaction, contentType, body string
		status                                     int
		detail                                     string
	}{
		{"version", "/open-banking/webhook/v1/payments/4/pix/payments/p-1", interact, "", body, 400, "versionApi"},
		{"version 0", "/open-banking/webhook/v1/payments/v0/pix/payments/p-1", interact, "", body, 400, "versionApi"},
		{"payment id", pixPath + "-p", interact, "", body, 400, "paymentId"},
		{"consent id", "/open-banking/webhook/v1/payments/v4/consents/c-1", interact, "", body, 400, "consentId"},
		{"recurring consent id", "/open-banking/webhook/v1/automatic-payments/v2/recurring-consents/rc-1", interact, "", body, 400, "recurringConsentId"},
		{"no interaction id", pixPath + "p-1", "", "", body, 400, "x-webhook-interaction-id"},
		{"bad interaction id", pixPath + "p-1", "-x", "", body, 400, "x-webhook-interaction-id"},
		{"no body", pixPath + "p-1", interact, "", "", 415, ""},
		{"text body", pixPath + "p-1", interact, "text/plain", body, 415, ""},
		{"not JSON", pixPath + "p-1", interact, "", `{"data":`, 400, "body"},
		{"no data", pixPath + "p-1", interact, "", `{}`, 400, "data is required"},
		{"no timestamp", pixPath + "p-1", interact, "", `{"data":{}}`, 400, "data.timestamp is required"},
		{"fraction", pixPath + "p-1", interact, "", `{"data":{"timestamp":"2026-12-07T14:30:00.123Z"}}`, 400, "data.timestamp"},
		{"offset", pixPath + "p-1", interact, "", `{"data":{"timestamp":"2026-12-07T14:30:00-03:00"}}`, 400, "data.timestamp"},
		{"number", pixPath + "p-1", interact, "", `{"data":{"timestamp":1733581800}}`, 400, "body"},
		{"extra field", pixPath + "p-1", interact, "", `{"data":{"timestamp":"2026-12-07T14:30:00Z","status":"ACSC"}}`, 400, "body"},
		{"extra top field", pixPath + "p-1", interact, "", `{"data":{"timestamp":"2026-12-07T14:30:00Z"},"meta":{}}`, 400, "body"},
		{"event type", pixPath + "p-1", interact, "", `{"data":{"timestamp":"2026-12-07T14:30:00Z","eventType":"OTHER"}}`, 400, "data.eventType"},
		{"trailing", pixPath + "p-1", interact, "", body + `{}`, 400, "body"},
		{"unknown payment", pixPath + "p-1", interact, "", body, 202, ""},
		{"unknown consent, 1.3.0 event type", "/open-banking/webhook/v1/automatic-payments/v2/recurring-consents/urn:bank:rc-1", interact, "",
			`{"data":{"timestamp":"2026-12-07T14:30:00Z","eventType":"STATE_CHANGED"}}`, 202, ""},
		{"unknown recurring payment", "/open-banking/webhook/v1/automatic-payments/v10/pix/recurring-payments/rp-1", interact, "", body, 202, ""},
	}
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			jobCount := func() int {
				var n int
				if err := s.App.DB.Read().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM jobs WHERE kind = $1`, itpflow.JobPaymentPoll).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			before := jobCount()
			for _, c := range cases {
				h := map[string]string{}
				if c.interaction != "" {
					h["x-webhook-interaction-id"] = c.interaction
				}
				if c.contentType != "" {
					h["Content-Type"] = c.contentType
				}
				r := s.Do(t, "POST", c.path, h, c.body)
				if r.Status != c.status {
					t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.status)
					continue
				}
				if c.status == http.StatusAccepted {
					if got := r.Header.Get("x-webhook-interaction-id"); got != c.interaction || len(r.Body) != 0 {
						t.Errorf("%s: 202 echoing %q with body %q", c.name, got, r.Body)
					}
					continue
				}
				var out struct {
					Errors []struct{ Code, Title, Detail string } `json:"errors"`
					Meta   struct {
						RequestDateTime string `json:"requestDateTime"`
					} `json:"meta"`
				}
				if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Errors) == 0 || out.Meta.RequestDateTime == "" ||
					!strings.Contains(out.Errors[0].Detail, c.detail) {
					t.Errorf("%s: body %s, want an Open Finance error naming %q", c.name, r.Body, c.detail)
				}
			}
			if after := jobCount(); after != before {
				t.Errorf("refused and unknown notifications queued %d reads", after-before)
			}
		})
	}
}

// hookReceiver is an initiator's webhook endpoint on loopback: it records
// each notification and answers 202, echoing x-webhook-interaction-id.
type hookReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []hookRequest
}

type hookRequest struct {
	Path, Interaction, ContentType, Body string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{Path: r.URL.Path, Interaction: r.Header.Get("x-webhook-interaction-id"),
			ContentType: r.Header.Get("Content-Type"), Body: string(body)})
		h.mu.Unlock()
		w.Header().Set("x-webhook-interaction-id", r.Header.Get("x-webhook-interaction-id"))
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) got() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

// TestOFWebhookHolderTransitions: an initiator that registered a webhook
// URI is notified by the holder of its recurring consent's REVOKED (its own
// PATCH) and of another one's REJECTED (the user cancelled at the holder),
// at the exact paths, with the event's time and a UUID interaction id; the
// approval from AWAITING_AUTHORISATION notifies nothing.
func TestOFWebhookHolderTransitions(t *testing.T) {
	t.Parallel()
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)})
			hooks := newHookReceiver(t)
			storage := s.App.AuthServer.Storage()
			in := oidctest.NewInitiator(t, storage, s.URL, s.App.Demo.ClientID)
			jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &in.Key.PublicKey, KeyID: in.KeyID, Algorithm: string(jose.PS256), Use: "sig"}}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := storage.RegisterInitiator(t.Context(), oidc.Initiator{ClientID: in.ClientID, Name: "Test initiator " + in.ClientID,
				JWKS: jwks, RedirectURIs: []string{in.RedirectURI}, WebhookURIs: []string{hooks.srv.URL + "/itp"}}); err != nil {
				t.Fatal(err)
			}

			// Approved, then revoked by the initiator.
			j, id, token := startSweepingJourney(t, s, in)
			if r := j.step(t, id, "login", loginBody(token)); r.Status != 200 {
				t.Fatalf("login: %d %s", r.Status, r.Body)
			}
			if r := j.step(t, id, "consent", approveBody); r.Status != 200 {
				t.Fatalf("approve: %d %s", r.Status, r.Body)
			}
			if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := hooks.got(); len(got) != 0 {
				t.Fatalf("an approval from AWAITING_AUTHORISATION was notified: %+v", got)
			}
			r := s.Do(t, "PATCH", recurring.ConsentsPath+"/"+j.consentID, map[string]string{
				"Authorization": "Bearer " + s.Token(t, recurring.Scope), "x-fapi-interaction-id": uuid.NewString(), "x-idempotency-key": uuid.NewString()},
				`{"data":{"status":"REVOKED","revocation":{"revokedBy":"USUARIO","revokedFrom":"INICIADORA","reason":{"code":"REVOGADO_USUARIO","detail":"O usuário pediu a revogação."}}}}`)
			if r.Status != 200 {
				t.Fatalf("revoke: %d %s", r.Status, r.Body)
			}
			// Cancelled by the user at the holder.
			j2, id2, token2 := startSweepingJourney(t, s, in)
			if r := j2.step(t, id2, "login", loginBody(token2)); r.Status != 200 {
				t.Fatalf("login 2: %d %s", r.Status, r.Body)
			}
			if r := j2.step(t, id2, "cancel", `{"device":`+device+`}`); r.Status != 200 {
				t.Fatalf("cancel: %d %s", r.Status, r.Body)
			}
			for range 3 {
				if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			want := map[string]string{
				"/itp/open-banking/webhook/v1/automatic-payments/v2/recurring-consents/" + j.consentID:  "REVOKED",
				"/itp/open-banking/webhook/v1/automatic-payments/v2/recurring-consents/" + j2.consentID: "REJECTED",
			}
			got := hooks.got()
			if len(got) != len(want) {
				t.Fatalf("the initiator got %d notifications, want %d: %+v", len(got), len(want), got)
			}
			for _, g := range got {
				status, ok := want[g.Path]
				if !ok {
					t.Errorf("notification at %s", g.Path)
					continue
				}
				consentID := g.Path[strings.LastIndex(g.Path, "/")+1:]
				c, err := s.App.Recurring.Get(t.Context(), s.App.Demo.ID, consentID)
				if err != nil || string(c.Status) != status {
					t.Fatalf("consent %s: %+v %v, want %s", consentID, c, err, status)
				}
				wantBody := `{"data":{"timestamp":"` + c.StatusUpdatedAt.UTC().Format("2006-01-02T15:04:05Z") + `"}}`
				if g.Body != wantBody || g.ContentType != "application/json" || !uuidRE.MatchString(g.Interaction) {
					t.Errorf("%s notification: %+v, want body %s", status, g, wantBody)
				}
			}
		})
	}
}

// TestOFWebhookDrivesSweepingTransfer is TestOFWebhookDrivesBrickPayment
// for an Open Keys sweeping transfer: the holder notifies the recurring
// payment's ACSC and the initiator reads it at once, with the clock held
// before the initiator's first scheduled read.
func TestOFWebhookDrivesSweepingTransfer(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			clk := clock.NewFake(time.Now()) // follows the wall clock through the journey, as above
			stopFollowing := apptest.FollowWallClock(t, clk)
			s := apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t), Clock: clk})
			fintech, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Fintech", CompanyKey: "FINTECH",
				Scopes: []string{"app"}, RedirectURLs: []string{fintechDone}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.App.ITP.CreateJourney(t.Context(), itp.Journey{Alias: "sweeping", Name: "Sweeping",
				Settings: []itp.Setting{{Key: "SWEEPING_CONFIGURATION", Value: json.RawMessage(`{"transactionLimit":"500.00","periodicLimits":{"day":{"quantityLimit":3}}}`)}}}); err != nil {
				t.Fatal(err)
			}
			f := &sessionFlow{s: s, tok: map[string]string{"Authorization": "Bearer " + s.TokenFor(t, fintech.ClientID, secret, "")},
				user: apptest.NewSandboxUser("47742663023", "1234567"), clientID: fintech.ClientID, secret: secret}
			id, pageURL := f.create(t, "sweep-wh")
			back := f.user.Decide(t, s, f.confirm(t, pageURL), true)
			if resp, page := f.callback(t, back); resp.StatusCode != 303 {
				t.Fatalf("callback: %d %s", resp.StatusCode, page)
			}
			stopFollowing()
			r := s.Do(t, "POST", itpflow.TransfersPath, f.tok, fmt.Sprintf(sweepingTransfer, id, "t-wh", "12.34"))
			var tr transferRead
			r.JSON(t, &tr)
			if r.Status != 200 || tr.ID == "" {
				t.Fatalf("transfer: %d %s", r.Status, r.Body)
			}
			db := s.App.DB.Read()
			status := func() (string, string) {
				var st, pid string
				if err := db.QueryRowContext(t.Context(), `SELECT status, COALESCE(payment_id, '') FROM itp_payments WHERE id = $1`, tr.ID).Scan(&st, &pid); err != nil {
					t.Fatal(err)
				}
				return st, pid
			}
			var pollAt int64 = -1
			for i := 0; i < 20; i++ {
				if st, _ := status(); itpflow.FinalPayment(st) {
					break
				}
				if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
					t.Fatal(err)
				}
				if pollAt < 0 {
					_ = db.QueryRowContext(t.Context(), `SELECT run_at FROM jobs WHERE unique_key = $1`, itpflow.JobPaymentPoll+":"+tr.ID+":0").Scan(&pollAt)
				}
			}
			st, paymentID := status()
			if st != itpflow.PaymentACSC {
				t.Fatalf("the transfer is %s, want ACSC through the webhook", st)
			}
			if pollAt < 0 || s.Clock.Now().UnixMilli() >= pollAt {
				t.Fatalf("the clock (%d) is not before the scheduled read (%d)", s.Clock.Now().UnixMilli(), pollAt)
			}
			var state string
			if err := db.QueryRowContext(t.Context(), `SELECT state FROM jobs WHERE unique_key = $1`, itpflow.JobPaymentPoll+":"+tr.ID+":0").Scan(&state); err != nil || state != "available" {
				t.Errorf("the scheduled read: %s %v (it must not have run)", state, err)
			}
			ds, err := ofwebhook.Deliveries(t.Context(), s.App.DB, paymentID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || ds[0].ResourceStatus != "ACSC" ||
				ds[0].URL != s.URL+"/open-banking/webhook/v1/automatic-payments/v2/pix/recurring-payments/"+paymentID ||
				ds[0].Status != ofwebhook.StatusDelivered || ds[0].LastStatusCode != 202 {
				t.Errorf("holder deliveries for the sweeping payment: %+v", ds)
			}
		})
	}
}
