package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
)

type received struct {
	header http.Header
	body   []byte
}

// TestEventsReachSubscribers follows two events from their state change to a
// partner's receiver: a ticket redeemed by the WebView and a card entering a
// wallet. Signatures are checked with code of the test's own; the payloads
// are thin (no document or card number).
func TestEventsReachSubscribers(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	var (
		mu  sync.Mutex
		got []received
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Clone(), b})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	tok := s.Token(t, "")
	sub := s.Do(t, "POST", "/webhooks/v1/subscriptions", map[string]string{"Authorization": "Bearer " + tok},
		fmt.Sprintf(`{"url":%q,"events":["CONSENT_FLOW_TICKET_WAS_USED","CARD_WAS_ADDED_TO_WALLET"]}`, receiver.URL))
	var subscription struct {
		Secret string `json:"secret"`
	}
	sub.JSON(t, &subscription)
	if sub.Status != 201 || !strings.HasPrefix(subscription.Secret, "whsec_") {
		t.Fatalf("subscribe: %d %s", sub.Status, sub.Body)
	}

	// A ticket, redeemed.
	var tk struct {
		TicketID string `json:"ticketId"`
	}
	s.Do(t, "POST", "/openfinance/consent-flow/ticket", map[string]string{"Authorization": "Bearer " + tok},
		`{"requestUri":"r","clientId":"c","documentNumber":"47742663023"}`).JSON(t, &tk)
	if r := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+tk.TicketID, nil, ""); r.Status != 200 {
		t.Fatalf("redeem: %d", r.Status)
	}
	// A card entering a wallet, as the token network reports it.
	secret, err := os.ReadFile(filepath.Join(s.Options.DataDir, "sandbox-network-secret"))
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range []string{"TOKEN_CREATED", "TOKEN_ACTIVATED"} {
		body := fmt.Sprintf(`{"notificationId":"n-%d","eventType":%q,"wallet":"ApplePay","tokenUniqueReference":"DWSPMC000000000132d72d4fcb2f4136a0532d3093ff1a45","accountNumber":"5204247750001471"}`, i, ev)
		ts := fmt.Sprint(s.Clock.Now().Unix())
		m := hmac.New(sha256.New, []byte(strings.TrimSpace(string(secret))))
		m.Write([]byte(ts + "." + body))
		r := s.Do(t, "POST", "/cards-pci/network/notifications", map[string]string{
			"x-network-timestamp": ts, "x-network-signature": "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))}, body)
		if r.Status != 204 {
			t.Fatalf("notification %s: %d %s", ev, r.Status, r.Body)
		}
	}
	if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("receiver got %d deliveries, want 2", len(got))
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(subscription.Secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]map[string]any{}
	for _, d := range got {
		id, ts := d.header.Get("webhook-id"), d.header.Get("webhook-timestamp")
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + ts + "." + string(d.body)))
		want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		if !strings.Contains(" "+d.header.Get("webhook-signature")+" ", " "+want+" ") {
			t.Errorf("signature %q does not verify", d.header.Get("webhook-signature"))
		}
		for _, secret := range []string{"47742663023", "5204247750001471", "520424775000"} {
			if strings.Contains(string(d.body), secret) {
				t.Errorf("event carries sensitive data %s: %s", secret, d.body)
			}
		}
		var env map[string]any
		if err := json.Unmarshal(d.body, &env); err != nil {
			t.Fatal(err)
		}
		if env["idempotencyKey"] != id || env["companyKey"] != "DEMO" {
			t.Errorf("envelope %s", d.body)
		}
		names[env["name"].(string)] = env
	}
	if e := names["CONSENT_FLOW_TICKET_WAS_USED"]; e == nil || e["entityId"] != tk.TicketID {
		t.Errorf("ticket event missing or wrong: %v", e)
	}
	if e := names["CARD_WAS_ADDED_TO_WALLET"]; e == nil || e["entityId"] != "sandbox-card-active" {
		t.Errorf("card event missing or wrong: %v", e)
	}
	if m := metricsText(t, s); !strings.Contains(m, `ponte_webhook_delivery_attempts_total{outcome="delivered"} 2`) {
		t.Error("metrics do not count the two deliveries")
	}
}
