package webhooks_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/jobs"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/webhooks"
)

func TestDeliverySignedAndShaped(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		rc := newReceiver(t, always(http.StatusNoContent))
		filtered := newReceiver(t, always(http.StatusOK))
		sub, secret := e.subscribe(t, rc.URL())
		e.subscribe(t, filtered.URL(), "CARD_WAS_REMOVED_FROM_WALLET")
		other := newReceiver(t, always(http.StatusOK))
		if _, _, err := e.svc.Create(context.Background(), e.otherID, webhooks.CreateSubscription{URL: other.URL()}); err != nil {
			t.Fatal(err)
		}

		e.emit(t, webhooks.Event{
			Name: "CARD_WAS_ADDED_TO_WALLET", EntityID: "proxy-123", CorrelationID: "corr-1",
			Metadata: map[string]any{"source": "network"}, Data: map[string]any{"proxy": "proxy-123", "wallet": "ApplePay", "tokenStatus": "ACTIVE"},
		})
		if n := e.runDue(t); n != 1 {
			t.Fatalf("ran %d delivery jobs, want 1 (filter and tenant must exclude the others)", n)
		}
		if len(filtered.requests()) != 0 || len(other.requests()) != 0 {
			t.Errorf("a filtered-out or other tenant's subscription received the event")
		}
		reqs := rc.requests()
		if len(reqs) != 1 {
			t.Fatalf("receiver got %d requests", len(reqs))
		}
		r := reqs[0]
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content-type %q", ct)
		}
		if ts := r.Header.Get("webhook-timestamp"); ts != "1729018515" {
			t.Errorf("webhook-timestamp %q, want the attempt's Unix seconds", ts)
		}
		if err := verifySignature(secret, r.Header, r.Body, e.clk.Now()); err != nil {
			t.Errorf("independent verifier: %v", err)
		}
		if err := verifySignature(secret, r.Header, r.Body, e.clk.Now().Add(6*time.Minute)); err == nil {
			t.Error("verifier accepted a timestamp outside the 5-minute tolerance")
		}
		if err := verifySignature("whsec_"+strings.Repeat("A", 43)+"=", r.Header, r.Body, e.clk.Now()); err == nil {
			t.Error("verifier accepted another secret")
		}
		tampered := append([]byte(nil), r.Body...)
		tampered[len(tampered)-2] = ' '
		if err := verifySignature(secret, r.Header, tampered, e.clk.Now()); err == nil {
			t.Error("verifier accepted a tampered body")
		}

		var env map[string]any
		if err := json.Unmarshal(r.Body, &env); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range env {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if got := strings.Join(keys, ","); got != "companyKey,context,correlationId,data,entityId,idempotencyKey,metadata,name,timestamp,version" {
			t.Errorf("envelope fields: %s", got)
		}
		want := map[string]any{
			"entityId": "proxy-123", "companyKey": "ACESSO", "context": "Card", "name": "CARD_WAS_ADDED_TO_WALLET",
			"idempotencyKey": r.Header.Get("webhook-id"), "correlationId": "corr-1", "timestamp": "2024-10-15T18:55:15.000Z", "version": "1.0",
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s = %v, want %v", k, env[k], v)
			}
		}
		if d, _ := env["data"].(map[string]any); d["wallet"] != "ApplePay" {
			t.Errorf("data %v", env["data"])
		}
		ds := e.deliveries(t, webhooks.DeliveryFilter{SubscriptionID: sub.ID})
		if len(ds) != 1 {
			t.Fatalf("deliveries: %d", len(ds))
		}
		d := ds[0]
		if d.Status != webhooks.StatusDelivered || d.Attempts != 1 || d.LastStatusCode != 204 || d.EventID != r.Header.Get("webhook-id") ||
			!d.DeliveredAt.Equal(epoch) || len(d.Log) != 1 || d.Log[0].StatusCode != 204 || d.Log[0].Error != "" || d.EventName != "CARD_WAS_ADDED_TO_WALLET" {
			t.Errorf("delivery record: %+v", d)
		}
		if n := e.runDue(t); n != 0 {
			t.Errorf("a delivered event was sent again")
		}
	})
}

// TestFlakyReceiverGetsEveryEventOnce: a receiver that fails for a while —
// sometimes after processing, the classic duplicate trap — then recovers,
// acknowledges every event exactly once per webhook-id and loses none.
func TestFlakyReceiverGetsEveryEventOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		const failures = 11
		rc := newReceiver(t, func(n int, r *http.Request) (int, map[string]string) {
			switch {
			case n >= failures:
				return http.StatusOK, nil
			case n%3 == 0:
				return http.StatusInternalServerError, nil // processed, then crashed before answering 2xx
			case n%3 == 1:
				return http.StatusServiceUnavailable, nil
			}
			return http.StatusBadGateway, nil
		})
		_, secret := e.subscribe(t, rc.URL())
		const events = 6
		for i := 0; i < events; i++ {
			e.emit(t, webhooks.Event{Name: "TICKET_WAS_USED", EntityID: "ticket-" + string(rune('a'+i)), Data: map[string]any{"status": "USED"}})
		}
		for round := 0; round < 12; round++ {
			e.runDue(t)
			e.clk.Advance(25 * time.Hour)
		}
		reqs := rc.requests()
		if len(reqs) != events+failures {
			t.Errorf("receiver got %d requests, want %d (one per event plus each failure)", len(reqs), events+failures)
		}
		bodies := map[string]string{}
		for _, r := range reqs {
			id := r.Header.Get("webhook-id")
			if prev, ok := bodies[id]; ok && prev != string(r.Body) {
				t.Errorf("webhook-id %s carried two different bodies", id)
			}
			bodies[id] = string(r.Body)
			var env struct{ IdempotencyKey string }
			_ = json.Unmarshal(r.Body, &env)
			if env.IdempotencyKey != id {
				t.Errorf("idempotencyKey %q != webhook-id %q", env.IdempotencyKey, id)
			}
		}
		if len(bodies) != events {
			t.Fatalf("%d distinct webhook-ids, want %d", len(bodies), events)
		}
		rc.mu.Lock()
		for id := range bodies {
			if rc.acked[id] != 1 || rc.process[id] != 1 {
				t.Errorf("webhook-id %s: acknowledged %d times, processed %d times; want 1 and 1", id, rc.acked[id], rc.process[id])
			}
		}
		rc.mu.Unlock()
		// Each attempt was signed afresh with its own timestamp.
		for _, r := range reqs {
			ts := r.Header.Get("webhook-timestamp")
			if err := verifySignatureAt(secret, r, ts); err != nil {
				t.Errorf("attempt with timestamp %s: %v", ts, err)
			}
		}
		for _, d := range e.deliveries(t, webhooks.DeliveryFilter{}) {
			if d.Status != webhooks.StatusDelivered || d.Attempts != len(d.Log) {
				t.Errorf("delivery %s: %s after %d attempts (%d logged)", d.ID, d.Status, d.Attempts, len(d.Log))
			}
		}
	})
}

// verifySignatureAt verifies as a receiver whose clock read the attempt's own timestamp.
func verifySignatureAt(secret string, r request, ts string) error {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return err
	}
	return verifySignature(secret, r.Header, r.Body, time.Unix(sec, 0))
}

func TestBackoffScheduleAndRetryAfter(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		rc := newReceiver(t, always(http.StatusInternalServerError))
		e.subscribe(t, rc.URL())
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e1"})
		if n := e.runDue(t); n != 1 {
			t.Fatalf("first attempt: %d", n)
		}
		id := e.deliveries(t, webhooks.DeliveryFilter{})[0].ID
		for i, wait := range webhooks.RetrySchedule {
			d := e.delivery(t, id)
			if d.Status != webhooks.StatusFailed || !d.NextAttemptAt.Equal(e.clk.Now().Add(wait)) || d.Attempts != i+1 || d.LastStatusCode != 500 {
				t.Fatalf("after attempt %d: %s next %v (want now+%s), attempts %d", i+1, d.Status, d.NextAttemptAt, wait, d.Attempts)
			}
			e.clk.Advance(wait - time.Millisecond)
			if n := e.runDue(t); n != 0 {
				t.Fatalf("attempt %d ran before its backoff of %s", i+2, wait)
			}
			e.clk.Advance(time.Millisecond)
			if n := e.runDue(t); n != 1 {
				t.Fatalf("attempt %d did not run at its backoff of %s", i+2, wait)
			}
		}
		d := e.delivery(t, id)
		if d.Status != webhooks.StatusExhausted || d.Attempts != webhooks.MaxAttempts || len(d.Log) != webhooks.MaxAttempts || !d.NextAttemptAt.IsZero() && d.JSON().NextAttemptAt != nil {
			t.Errorf("after the last attempt: %+v", d)
		}
		for i, a := range d.Log {
			if a.Attempt != i+1 || a.StatusCode != 500 || a.Error != "HTTP 500" {
				t.Errorf("log entry %d: %+v", i, a)
			}
		}
		if span := d.Log[len(d.Log)-1].AttemptedAt.Sub(d.Log[0].AttemptedAt); span < 72*time.Hour || span > 76*time.Hour {
			t.Errorf("retries span %s, want about three days", span)
		}
		e.clk.Advance(72 * time.Hour)
		if n := e.runDue(t); n != 0 {
			t.Errorf("an exhausted delivery was attempted again")
		}
	})
}

func TestJitterAndRetryAfter(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, func(o *webhooks.Options) { o.Jitter = func() float64 { return 1.1 } })
		cases := []struct {
			status     int
			retryAfter string
			wantWait   time.Duration
		}{
			{500, "", 5500 * time.Millisecond},                             // schedule with +10 % jitter
			{503, "120", 120 * time.Second},                                // Retry-After longer than the schedule wins
			{429, "1", 5500 * time.Millisecond},                            // shorter than the schedule: the schedule wins
			{429, "172800", 5500 * time.Millisecond},                       // two days: unreasonable, ignored
			{500, "120", 5500 * time.Millisecond},                          // only 429/503 are honoured
			{503, epoch.Add(time.Hour).Format(http.TimeFormat), time.Hour}, // HTTP date
		}
		for _, c := range cases {
			rc := newReceiver(t, func(int, *http.Request) (int, map[string]string) {
				return c.status, map[string]string{"Retry-After": c.retryAfter}
			})
			sub, _ := e.subscribe(t, rc.URL())
			e.emit(t, webhooks.Event{Name: "X", EntityID: "e"})
			e.runDue(t)
			d := e.deliveries(t, webhooks.DeliveryFilter{SubscriptionID: sub.ID})[0]
			if got := d.NextAttemptAt.Sub(e.clk.Now()); got != c.wantWait {
				t.Errorf("%d Retry-After %q: next attempt in %s, want %s", c.status, c.retryAfter, got, c.wantWait)
			}
			if err := e.svc.Delete(context.Background(), e.appID, sub.ID); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestGoneDisablesSubscription(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		gone := newReceiver(t, always(http.StatusGone))
		ok := newReceiver(t, always(http.StatusOK))
		goneSub, _ := e.subscribe(t, gone.URL())
		okSub, _ := e.subscribe(t, ok.URL())
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e1"})
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e2"})
		e.runDue(t)
		e.clk.Advance(time.Hour)
		e.runDue(t)

		s, err := e.svc.Get(context.Background(), e.appID, goneSub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Disabled || !strings.Contains(s.DisabledReason, "410") || s.JSON(e.clk.Now()).Status != webhooks.SubscriptionDisabled {
			t.Errorf("after 410: %+v", s)
		}
		if n := len(gone.requests()); n < 1 || n > 2 {
			t.Errorf("the 410 endpoint got %d requests", n)
		}
		for _, d := range e.deliveries(t, webhooks.DeliveryFilter{SubscriptionID: goneSub.ID}) {
			if d.Status != webhooks.StatusCancelled || d.LastError == "" {
				t.Errorf("delivery to the gone endpoint: %s %q", d.Status, d.LastError)
			}
			if _, err := e.svc.RetryDelivery(context.Background(), e.appID, d.ID); !errors.Is(err, webhooks.ErrNotRetryable) {
				t.Errorf("retry of a cancelled delivery: %v", err)
			}
		}
		for _, d := range e.deliveries(t, webhooks.DeliveryFilter{SubscriptionID: okSub.ID}) {
			if d.Status != webhooks.StatusDelivered {
				t.Errorf("the healthy subscription's delivery: %s", d.Status)
			}
		}
		before := len(gone.requests())
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e3"})
		e.runDue(t)
		if len(gone.requests()) != before || len(e.deliveries(t, webhooks.DeliveryFilter{SubscriptionID: goneSub.ID})) != 2 {
			t.Error("a disabled subscription still receives events")
		}
	})
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		target := newReceiver(t, always(http.StatusOK))
		redirector := newReceiver(t, func(int, *http.Request) (int, map[string]string) {
			return http.StatusTemporaryRedirect, map[string]string{"Location": target.URL()}
		})
		e.subscribe(t, redirector.URL())
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e1"})
		e.runDue(t)
		if len(redirector.requests()) != 1 || len(target.requests()) != 0 {
			t.Fatalf("redirector got %d, target got %d requests: the redirect was followed", len(redirector.requests()), len(target.requests()))
		}
		d := e.deliveries(t, webhooks.DeliveryFilter{})[0]
		if d.Status != webhooks.StatusFailed || d.LastStatusCode != 307 || !strings.Contains(d.LastError, "redirects are not followed") {
			t.Errorf("after a redirect: %+v", d)
		}
	})
}

func TestTimeoutAndErrorTextCarryNoSecrets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, func(o *webhooks.Options) { o.Timeout = 200 * time.Millisecond })
		slow := newReceiver(t, func(int, *http.Request) (int, map[string]string) {
			time.Sleep(time.Second)
			return http.StatusOK, nil
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String() + "/hooks?token=partner-token-s3cr3t"
		ln.Close()
		slowSub, slowSecret := e.subscribe(t, slow.URL())
		closedSub, closedSecret := e.subscribe(t, closed)
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e1"})
		e.runDue(t)
		sd := e.deliveries(t, webhooks.DeliveryFilter{SubscriptionID: slowSub.ID})[0]
		if sd.Status != webhooks.StatusFailed || sd.LastError != "timed out after 200ms" || sd.Log[0].StatusCode != 0 {
			t.Errorf("slow receiver: %+v", sd)
		}
		cd := e.deliveries(t, webhooks.DeliveryFilter{SubscriptionID: closedSub.ID})[0]
		if cd.Status != webhooks.StatusFailed || !strings.Contains(cd.LastError, "connection refused") {
			t.Errorf("closed port: %+v", cd)
		}
		var logged []string
		rows, err := db.Read().Query(`SELECT error FROM webhook_delivery_attempts UNION ALL SELECT last_error FROM webhook_deliveries`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			logged = append(logged, s)
		}
		all := strings.Join(logged, "\n")
		for _, secret := range []string{"partner-token-s3cr3t", strings.TrimPrefix(slowSecret, "whsec_"), strings.TrimPrefix(closedSecret, "whsec_"), "/hooks"} {
			if strings.Contains(all, secret) {
				t.Errorf("delivery log contains %q:\n%s", secret, all)
			}
		}
	})
}

func TestSSRFRefusedWhenSubscribing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, func(o *webhooks.Options) {
			o.Sandbox = false
			o.Resolver = resolverFunc(func(host string) []string {
				switch host {
				case "evil.example":
					return []string{"127.0.0.1"}
				case "partner.example":
					return []string{"93.184.216.34"}
				}
				return nil
			})
		})
		for _, url := range []string{
			"http://127.0.0.1/hooks", "https://127.0.0.1/hooks", "https://10.0.0.1/hooks", "https://169.254.169.254/latest/meta-data/",
			"https://[::1]/hooks", "https://evil.example/hooks", "http://partner.example/hooks",
		} {
			_, _, err := e.svc.Create(context.Background(), e.appID, webhooks.CreateSubscription{URL: url})
			var verr *webhooks.ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) != 1 || verr.Fields[0].Field != "url" {
				t.Errorf("production subscription to %s: %v, want a validation error naming url", url, err)
			}
		}
		if _, _, err := e.svc.Create(context.Background(), e.appID, webhooks.CreateSubscription{URL: "https://partner.example/hooks"}); err != nil {
			t.Errorf("a public https URL was refused: %v", err)
		}
	})
}

// TestRebindingRefusedAtDelivery: the host resolved to a public address when
// subscribing and to loopback when delivering; the dial-time check refuses it.
func TestRebindingRefusedAtDelivery(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rc := newReceiver(t, always(http.StatusOK))
		_, port, _ := net.SplitHostPort(rc.srv.Listener.Addr().String())
		var lookups atomic.Int32
		e := newEnv(t, db, func(o *webhooks.Options) {
			o.Sandbox = false
			o.Resolver = resolverFunc(func(host string) []string {
				if host != "rebind.example" {
					return nil
				}
				if lookups.Add(1) == 1 {
					return []string{"93.184.216.34"}
				}
				return []string{"127.0.0.1"}
			})
		})
		e.subscribe(t, "https://rebind.example:"+port+"/hooks")
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e1"})
		e.runDue(t)
		if n := len(rc.requests()); n != 0 {
			t.Fatalf("the rebinding host reached the loopback receiver (%d requests)", n)
		}
		if lookups.Load() < 2 {
			t.Fatalf("delivery did not resolve the host again")
		}
		d := e.deliveries(t, webhooks.DeliveryFilter{})[0]
		if d.Status != webhooks.StatusFailed || !strings.Contains(d.LastError, "refused to connect to 127.0.0.1") || !strings.Contains(d.LastError, "loopback") {
			t.Errorf("rebinding delivery: %s %q", d.Status, d.LastError)
		}
	})
}

func TestRotationSignsWithBothSecretsFor24h(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		rc := newReceiver(t, always(http.StatusOK))
		sub, oldSecret := e.subscribe(t, rc.URL())
		e.clk.Advance(time.Hour)
		rotated, newSecret, err := e.svc.RotateSecret(context.Background(), e.appID, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if newSecret == oldSecret || !strings.HasPrefix(newSecret, "whsec_") {
			t.Fatalf("rotation returned %q", newSecret)
		}
		if j := rotated.JSON(e.clk.Now()); j.PreviousSecretExpiresAt == nil || time.Time(*j.PreviousSecretExpiresAt) != e.clk.Now().Add(24*time.Hour) {
			t.Errorf("previousSecretExpiresAt: %+v", j.PreviousSecretExpiresAt)
		}
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e1"})
		e.runDue(t)
		r := rc.requests()[0]
		sigs := strings.Fields(r.Header.Get("webhook-signature"))
		if len(sigs) != 2 {
			t.Fatalf("during the overlap: %d signatures, want 2", len(sigs))
		}
		for _, secret := range []string{newSecret, oldSecret} {
			if err := verifySignature(secret, r.Header, r.Body, e.clk.Now()); err != nil {
				t.Errorf("during the overlap, %s…: %v", secret[:10], err)
			}
		}
		first := r.Header.Clone()
		first.Set("webhook-signature", sigs[0])
		if verifySignature(newSecret, first, r.Body, e.clk.Now()) != nil {
			t.Error("the first signature is not the new secret's")
		}

		e.clk.Advance(24 * time.Hour)
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e2"})
		e.runDue(t)
		r = rc.requests()[1]
		if n := len(strings.Fields(r.Header.Get("webhook-signature"))); n != 1 {
			t.Errorf("after the overlap: %d signatures, want 1", n)
		}
		if err := verifySignature(newSecret, r.Header, r.Body, e.clk.Now()); err != nil {
			t.Errorf("new secret after the overlap: %v", err)
		}
		if err := verifySignature(oldSecret, r.Header, r.Body, e.clk.Now()); err == nil {
			t.Error("the old secret still verifies after 24 h")
		}
		if s, _ := e.svc.Get(context.Background(), e.appID, sub.ID); s.JSON(e.clk.Now()).PreviousSecretExpiresAt != nil {
			t.Error("previousSecretExpiresAt still shown after the overlap")
		}
	})
}

func TestManualRetry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		var healthy atomic.Bool
		rc := newReceiver(t, func(int, *http.Request) (int, map[string]string) {
			if healthy.Load() {
				return http.StatusOK, nil
			}
			return http.StatusInternalServerError, nil
		})
		e.subscribe(t, rc.URL())
		e.emit(t, webhooks.Event{Name: "X", EntityID: "exhaust-me"})
		for i := 0; i < webhooks.MaxAttempts+2; i++ {
			e.runDue(t)
			e.clk.Advance(25 * time.Hour)
		}
		d := e.deliveries(t, webhooks.DeliveryFilter{})[0]
		if d.Status != webhooks.StatusExhausted {
			t.Fatalf("status %s after every attempt", d.Status)
		}
		healthy.Store(true)
		retried, err := e.svc.RetryDelivery(context.Background(), e.appID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if retried.Status != webhooks.StatusPending || !retried.NextAttemptAt.Equal(e.clk.Now()) {
			t.Errorf("after retry: %+v", retried)
		}
		if _, err := e.svc.RetryDelivery(context.Background(), e.appID, d.ID); !errors.Is(err, webhooks.ErrNotRetryable) {
			t.Errorf("second retry of a pending delivery: %v", err)
		}
		if n := e.runDue(t); n != 1 {
			t.Fatalf("retry ran %d jobs", n)
		}
		d = e.delivery(t, d.ID)
		if d.Status != webhooks.StatusDelivered || d.Attempts != webhooks.MaxAttempts+1 {
			t.Errorf("after the manual retry: %s, %d attempts", d.Status, d.Attempts)
		}
		ids := map[string]bool{}
		for _, r := range rc.requests() {
			ids[r.Header.Get("webhook-id")] = true
		}
		if len(ids) != 1 || !ids[d.EventID] {
			t.Errorf("webhook-ids across attempts and the retry: %v", ids)
		}

		// A failed delivery: the retry brings its next attempt forward.
		healthy.Store(false)
		e.emit(t, webhooks.Event{Name: "X", EntityID: "retry-early"})
		e.runDue(t)
		d = e.deliveries(t, webhooks.DeliveryFilter{Status: webhooks.StatusFailed})[0]
		healthy.Store(true)
		if _, err := e.svc.RetryDelivery(context.Background(), e.appID, d.ID); err != nil {
			t.Fatal(err)
		}
		if n := e.runDue(t); n != 1 {
			t.Fatalf("retry brought forward ran %d jobs without the clock moving", n)
		}
		if d := e.delivery(t, d.ID); d.Status != webhooks.StatusDelivered || d.Attempts != 2 {
			t.Errorf("brought-forward delivery: %s after %d", d.Status, d.Attempts)
		}
		if _, err := e.svc.RetryDelivery(context.Background(), e.appID, d.ID); !errors.Is(err, webhooks.ErrNotRetryable) {
			t.Errorf("retry of a delivered delivery: %v", err)
		}
		if _, err := e.svc.RetryDelivery(context.Background(), e.otherID, d.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("retry by another application: %v", err)
		}
	})
}

func TestDeleteCancelsAndTenantsAreIsolated(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		rc := newReceiver(t, always(http.StatusOK))
		sub, _ := e.subscribe(t, rc.URL())
		ctx := context.Background()
		if _, err := e.svc.Get(ctx, e.otherID, sub.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("other tenant Get: %v", err)
		}
		if _, _, err := e.svc.RotateSecret(ctx, e.otherID, sub.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("other tenant rotate: %v", err)
		}
		if err := e.svc.Delete(ctx, e.otherID, sub.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("other tenant delete: %v", err)
		}
		if list, _ := e.svc.List(ctx, e.otherID); len(list) != 0 {
			t.Errorf("other tenant lists %d subscriptions", len(list))
		}
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e1"})
		if p, _ := e.svc.Deliveries(ctx, e.otherID, webhooks.DeliveryFilter{}); len(p.Deliveries) != 0 {
			t.Errorf("other tenant sees deliveries")
		}
		if err := e.svc.Delete(ctx, e.appID, sub.ID); err != nil {
			t.Fatal(err)
		}
		e.runDue(t)
		if len(rc.requests()) != 0 {
			t.Error("a deleted subscription received its pending delivery")
		}
		d := e.deliveries(t, webhooks.DeliveryFilter{})[0]
		if d.Status != webhooks.StatusCancelled || d.LastError != "subscription deleted" {
			t.Errorf("pending delivery after delete: %+v", d)
		}
		if _, err := e.svc.Get(ctx, e.appID, sub.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("Get after delete: %v", err)
		}
		if err := e.svc.Delete(ctx, e.appID, sub.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
		var sealed string
		if err := db.Read().QueryRow(`SELECT secret_sealed FROM webhook_subscriptions WHERE id = $1`, sub.ID).Scan(&sealed); err != nil || sealed != "" {
			t.Errorf("deleted subscription keeps its sealed secret: %q %v", sealed, err)
		}
	})
}

func TestSecretsSealedAtRest(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		sub, secret := e.subscribe(t, "http://127.0.0.1:9/hooks")
		_, rotated, err := e.svc.RotateSecret(context.Background(), e.appID, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		var cur, prev string
		if err := db.Read().QueryRow(`SELECT secret_sealed, previous_secret_sealed FROM webhook_subscriptions WHERE id = $1`, sub.ID).Scan(&cur, &prev); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{secret, rotated} {
			raw := strings.TrimPrefix(s, "whsec_")
			if strings.Contains(cur, raw) || strings.Contains(prev, raw) || !strings.HasPrefix(cur, "v2:") || !strings.HasPrefix(prev, "v2:") {
				t.Errorf("secret stored in clear or unsealed: %q %q", cur, prev)
			}
		}
	})
}

func TestEmitGuardsAndTransactions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		rc := newReceiver(t, always(http.StatusOK))
		e.subscribe(t, rc.URL())
		ctx := context.Background()
		emit := func(ev webhooks.Event) error {
			return db.Write(ctx, func(tx *sql.Tx) error { return e.emitter.Emit(ctx, tx, ev) })
		}
		base := webhooks.Event{ApplicationID: e.appID, Context: "Card", Name: "CARD_WAS_ADDED_TO_WALLET", EntityID: "proxy-1"}

		for _, data := range []map[string]any{
			{"pan": "5555555555554444"},
			{"card": map[string]any{"number": "4111 1111 1111 1111"}},
			{"n": 4111111111111111},
		} {
			ev := base
			ev.Data = data
			if err := emit(ev); !errors.Is(err, webhooks.ErrCardData) {
				t.Errorf("Emit with %v: %v, want ErrCardData", data, err)
			}
		}
		ev := base
		ev.Metadata = map[string]any{"leak": "5555555555554444"}
		if err := emit(ev); !errors.Is(err, webhooks.ErrCardData) {
			t.Errorf("card number in metadata: %v", err)
		}
		for _, bad := range []webhooks.Event{
			{ApplicationID: e.appID, Context: "Card", Name: "", EntityID: "x"},
			{ApplicationID: e.appID, Context: "", Name: "X", EntityID: "x"},
			{ApplicationID: e.appID, Context: "Card", Name: "X", EntityID: ""},
			{ApplicationID: "", Context: "Card", Name: "X", EntityID: "x"},
			{ApplicationID: e.appID, Context: "Card", Name: "X", EntityID: "x", ID: "has.dot"},
			{ApplicationID: "no-such-app", Context: "Card", Name: "X", EntityID: "x"},
		} {
			if err := emit(bad); err == nil {
				t.Errorf("invalid event accepted: %+v", bad)
			}
		}
		// Rolled back with the caller's transaction: nothing is delivered.
		errRollback := errors.New("state change failed")
		err := db.Write(ctx, func(tx *sql.Tx) error {
			if err := e.emitter.Emit(ctx, tx, base); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		var events, deliveries, jobRows int
		_ = db.Read().QueryRow(`SELECT COUNT(*) FROM webhook_events`).Scan(&events)
		_ = db.Read().QueryRow(`SELECT COUNT(*) FROM webhook_deliveries`).Scan(&deliveries)
		_ = db.Read().QueryRow(`SELECT COUNT(*) FROM jobs`).Scan(&jobRows)
		if events+deliveries+jobRows != 0 {
			t.Errorf("refused or rolled-back events left rows: %d events, %d deliveries, %d jobs", events, deliveries, jobRows)
		}
		// The same event id twice: recorded and delivered once.
		ev = base
		ev.ID = "card-added-proxy-1-v1"
		if err := emit(ev); err != nil {
			t.Fatal(err)
		}
		if err := emit(ev); err != nil {
			t.Fatal(err)
		}
		e.runDue(t)
		if reqs := rc.requests(); len(reqs) != 1 || reqs[0].Header.Get("webhook-id") != "card-added-proxy-1-v1" {
			t.Errorf("event emitted twice with one id: %d requests", len(reqs))
		}
		// An application without subscriptions: nothing stored.
		if err := emit(webhooks.Event{ApplicationID: e.otherID, Context: "Card", Name: "X", EntityID: "x"}); err != nil {
			t.Fatal(err)
		}
		_ = db.Read().QueryRow(`SELECT COUNT(*) FROM webhook_events`).Scan(&events)
		if events != 1 {
			t.Errorf("%d events stored, want 1", events)
		}
		// The correlation id defaults to the request's.
		ctxReq := httpxCorrelated(t)
		err = db.Write(ctxReq, func(tx *sql.Tx) error {
			ev := base
			ev.EntityID = "proxy-2"
			return e.emitter.Emit(ctxReq, tx, ev)
		})
		if err != nil {
			t.Fatal(err)
		}
		e.runDue(t)
		var env struct{ CorrelationID string }
		_ = json.Unmarshal(rc.requests()[1].Body, &env)
		if env.CorrelationID != "corr-from-request" {
			t.Errorf("correlationId %q, want the request's", env.CorrelationID)
		}
	})
}

// httpxCorrelated returns a context carrying a request correlation id, as
// httpx.Correlate gives handlers.
func httpxCorrelated(t *testing.T) context.Context {
	var ctx context.Context
	h := httpx.Correlate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ctx = r.Context() }))
	req, _ := http.NewRequest("GET", "/", nil)
	req.Header.Set(httpx.CorrelationHeader, "corr-from-request")
	h.ServeHTTP(nopWriter{}, req)
	return context.WithoutCancel(ctx)
}

type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}

func TestDeliveryLogPagination(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		rc := newReceiver(t, always(http.StatusOK))
		sub, _ := e.subscribe(t, rc.URL())
		for i := 0; i < 7; i++ {
			e.emit(t, webhooks.Event{Name: "X", EntityID: "e" + string(rune('0'+i))})
			e.clk.Advance(time.Second)
		}
		e.runDue(t)
		e.emit(t, webhooks.Event{Name: "Y", EntityID: "pending-one"})
		var seen []*webhooks.Delivery
		cursor := ""
		pages := 0
		for {
			p, err := e.svc.Deliveries(context.Background(), e.appID, webhooks.DeliveryFilter{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			seen = append(seen, p.Deliveries...)
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if pages != 3 || len(seen) != 8 {
			t.Fatalf("%d pages, %d deliveries; want 3 and 8", pages, len(seen))
		}
		for i := 1; i < len(seen); i++ {
			if seen[i].CreatedAt.After(seen[i-1].CreatedAt) {
				t.Errorf("not newest first at %d", i)
			}
		}
		if seen[0].EventName != "Y" {
			t.Errorf("newest first: %s", seen[0].EventName)
		}
		if got := e.deliveries(t, webhooks.DeliveryFilter{Status: webhooks.StatusPending}); len(got) != 1 || got[0].EventName != "Y" {
			t.Errorf("status filter: %d", len(got))
		}
		if got := e.deliveries(t, webhooks.DeliveryFilter{EventID: seen[3].EventID}); len(got) != 1 || got[0].ID != seen[3].ID {
			t.Errorf("event filter: %d", len(got))
		}
		if got := e.deliveries(t, webhooks.DeliveryFilter{SubscriptionID: sub.ID, Status: webhooks.StatusDelivered}); len(got) != 7 {
			t.Errorf("subscription+status filter: %d", len(got))
		}
		for _, f := range []webhooks.DeliveryFilter{{Status: "nope"}, {Limit: 500}, {Cursor: "!!"}} {
			if _, err := e.svc.Deliveries(context.Background(), e.appID, f); err == nil {
				t.Errorf("filter %+v accepted", f)
			}
		}
	})
}

// TestStaleJobAfterDelivery: a delivery job that runs again after its
// delivery succeeded (a crash between recording and completing) sends nothing.
func TestStaleJobAfterDelivery(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		rc := newReceiver(t, always(http.StatusOK))
		e.subscribe(t, rc.URL())
		e.emit(t, webhooks.Event{Name: "X", EntityID: "e1"})
		e.runDue(t)
		d := e.deliveries(t, webhooks.DeliveryFilter{})[0]
		if err := db.Write(context.Background(), func(tx *sql.Tx) error {
			return jobs.Retry(context.Background(), tx, e.clk.Now(), d.JobID)
		}); err != nil {
			t.Fatal(err)
		}
		e.runDue(t)
		if n := len(rc.requests()); n != 1 {
			t.Errorf("a settled delivery was sent again (%d requests)", n)
		}
	})
}
