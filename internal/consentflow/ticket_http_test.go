package consentflow_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// seedBody is the request example of seed 000.
const seedBody = `{
    "requestUri": "17307eb8-e9e6-4ce1-a14d-6f30923746f2",
    "clientId": "7481c175-4a50-4af2-b3b1-b24a109f92ad",
    "documentNumber": "47742663023"
}`

const ticketPath = "/openfinance/consent-flow/ticket"

// eachEngine runs fn against a fresh Ponte on every available database.
func eachEngine(t *testing.T, fn func(t *testing.T, s *apptest.Server)) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			fn(t, apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)}))
		})
	}
}

type banklyErrors struct {
	Errors []struct {
		Code         string `json:"code"`
		Message      string `json:"message"`
		PropertyName string `json:"propertyName"`
	} `json:"errors"`
}

func bearer(token string, extra ...string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + token}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func TestSeedExampleEndToEnd(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "")
		resp := s.Do(t, "POST", ticketPath, bearer(tok,
			"idempotencyKey", "04106038-4063-48bc-a0e4-13c178dd058f",
			"x-correlation-id", "5d1c2a8e-1111-4c4c-9999-000000000001"), seedBody)
		if resp.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", resp.Status, resp.Body)
		}
		if got := resp.Header.Get("x-correlation-id"); got != "5d1c2a8e-1111-4c4c-9999-000000000001" {
			t.Errorf("x-correlation-id = %q, want the request's", got)
		}
		// Exactly the seed's fields, in the seed's formats.
		var m map[string]any
		resp.JSON(t, &m)
		wantKeys := []string{"clientId", "companyKey", "createdAt", "documentNumber", "requestUri", "status", "ticketId", "updatedAt"}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		if diff := cmp.Diff(wantKeys, sortStrings(keys)); diff != "" {
			t.Errorf("response fields differ from seed 000 (-want +got):\n%s", diff)
		}
		var tk consentflow.TicketJSON
		resp.JSON(t, &tk)
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(tk.TicketID) {
			t.Errorf("ticketId %q is not 32 lowercase hex characters", tk.TicketID)
		}
		want := map[string]any{
			"companyKey": "DEMO", "documentNumber": "47742663023", "requestUri": "17307eb8-e9e6-4ce1-a14d-6f30923746f2",
			"clientId": "7481c175-4a50-4af2-b3b1-b24a109f92ad", "status": "UNUSED",
			"createdAt": "2024-10-15T18:55:15", "updatedAt": "2024-10-15T18:55:15",
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}

		// The creator reads it back.
		got := s.Do(t, "GET", ticketPath+"/"+tk.TicketID, bearer(tok), "")
		if got.Status != http.StatusOK || string(got.Body) != string(resp.Body) {
			t.Errorf("GET ticket: %d %s, want 200 with the created body", got.Status, got.Body)
		}

		// The WebView redeems it once and opens a session.
		s.Clock.Advance(30 * time.Second)
		page := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+tk.TicketID, nil, "")
		if page.Status != http.StatusOK {
			t.Fatalf("webview: %d %s", page.Status, page.Body)
		}
		cookie := page.Header.Get("Set-Cookie")
		for _, attr := range []string{consentflow.SessionCookie + "=", "HttpOnly", "SameSite=Lax", "Path=/"} {
			if !strings.Contains(cookie, attr) {
				t.Errorf("session cookie %q lacks %s", cookie, attr)
			}
		}
		if strings.Contains(cookie, "Secure") {
			t.Errorf("cookie is Secure on plain HTTP: %q", cookie)
		}
		body := string(page.Body)
		// A sandbox ticket (made-up requestUri): the page says so, under the
		// partner's name, and shows no ids.
		for _, want := range []string{"477******23", "Ticket de teste do sandbox", s.App.Demo.Name} {
			if !strings.Contains(body, want) {
				t.Errorf("webview page does not show %q", want)
			}
		}
		for _, unwanted := range []string{"47742663023", "7481c175-4a50-4af2-b3b1-b24a109f92ad", "17307eb8-e9e6-4ce1-a14d-6f30923746f2"} {
			if strings.Contains(body, unwanted) {
				t.Errorf("webview page shows %q", unwanted)
			}
		}
		var after consentflow.TicketJSON
		s.Do(t, "GET", ticketPath+"/"+tk.TicketID, bearer(tok), "").JSON(t, &after)
		if after.Status != consentflow.TicketUsed || time.Time(after.UpdatedAt) != apptest.Epoch.Add(30*time.Second) {
			t.Errorf("after redemption: status %s updatedAt %v, want USED at +30s", after.Status, time.Time(after.UpdatedAt))
		}
		if time.Time(after.CreatedAt) != apptest.Epoch {
			t.Errorf("createdAt changed on redemption")
		}

		// The browser that redeemed it may reload: same page, no new session.
		sessionCookie := strings.Split(cookie, ";")[0]
		reload := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+tk.TicketID, map[string]string{"Cookie": sessionCookie}, "")
		if reload.Status != http.StatusOK || reload.Header.Get("Set-Cookie") != "" || !strings.Contains(string(reload.Body), "477******23") {
			t.Errorf("reload with the session: %d cookie %q", reload.Status, reload.Header.Get("Set-Cookie"))
		}
		// Another session's cookie does not unlock it.
		if r := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+tk.TicketID, map[string]string{"Cookie": consentflow.SessionCookie + "=forged"}, ""); r.Status != http.StatusGone {
			t.Errorf("reload with a forged session: %d, want 410", r.Status)
		}

		// A second visit without the session finds it used, and gets no session.
		again := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+tk.TicketID, nil, "")
		if again.Status != http.StatusGone || again.Header.Get("Set-Cookie") != "" {
			t.Errorf("second redemption: %d cookie %q, want 410 and no cookie", again.Status, again.Header.Get("Set-Cookie"))
		}
		if !strings.Contains(string(again.Body), "já utilizado") {
			t.Errorf("used-ticket page does not say so: %s", again.Body)
		}
	})
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestCreateTicketValidation(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	tok := s.Token(t, "")
	tests := []struct {
		name   string
		body   string
		status int
		fields []string // propertyName of every error, in order
	}{
		{"missing all", `{}`, 400, []string{"requestUri", "clientId", "documentNumber"}},
		{"nulls", `{"requestUri":null,"clientId":null,"documentNumber":null}`, 400, []string{"requestUri", "clientId", "documentNumber"}},
		{"wrong types", `{"requestUri":1,"clientId":true,"documentNumber":47742663023}`, 400, []string{"requestUri", "clientId", "documentNumber"}},
		{"type error and rule violation together", `{"requestUri":1,"clientId":"c","documentNumber":"123"}`, 400, []string{"requestUri", "documentNumber"}},
		{"empty strings", `{"requestUri":"","clientId":"  ","documentNumber":"47742663023"}`, 400, []string{"requestUri", "clientId"}},
		{"document with punctuation", `{"requestUri":"r","clientId":"c","documentNumber":"477.426.630-23"}`, 400, []string{"documentNumber"}},
		{"document wrong length", `{"requestUri":"r","clientId":"c","documentNumber":"4774266302"}`, 400, []string{"documentNumber"}},
		{"CPF bad check digits", `{"requestUri":"r","clientId":"c","documentNumber":"47742663024"}`, 400, []string{"documentNumber"}},
		{"CNPJ bad check digits", `{"requestUri":"r","clientId":"c","documentNumber":"11222333000182"}`, 400, []string{"documentNumber"}},
		{"requestUri too long", `{"requestUri":"` + strings.Repeat("a", 2049) + `","clientId":"c","documentNumber":"47742663023"}`, 400, []string{"requestUri"}},
		{"malformed JSON", `{"requestUri":`, 400, []string{"body"}},
		{"not an object", `["requestUri"]`, 400, []string{"body"}},
		{"trailing data", `{"requestUri":"r","clientId":"c","documentNumber":"47742663023"} {}`, 400, []string{"body"}},
		{"CNPJ accepted", `{"requestUri":"r","clientId":"c","documentNumber":"11222333000181"}`, 201, nil},
		{"unknown fields ignored", `{"requestUri":"r","clientId":"c","documentNumber":"47742663023","extra":1}`, 201, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := s.Do(t, "POST", ticketPath, bearer(tok), tt.body)
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.status, resp.Body)
			}
			if tt.status != 400 {
				return
			}
			var e banklyErrors
			resp.JSON(t, &e)
			var got []string
			for _, x := range e.Errors {
				got = append(got, x.PropertyName)
				if x.Code != "INVALID_PARAMETER" || !strings.HasPrefix(x.Message, x.PropertyName+" ") {
					t.Errorf("error %+v: want code INVALID_PARAMETER and a message naming the field", x)
				}
			}
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("offending fields (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("nothing created by invalid requests", func(t *testing.T) {
		var n int
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM consent_flow_tickets`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("%d tickets stored, want only the 2 valid ones", n)
		}
	})
	t.Run("body over 1 MiB", func(t *testing.T) {
		big := `{"requestUri":"` + strings.Repeat("a", 1<<20) + `","clientId":"c","documentNumber":"47742663023"}`
		resp := s.Do(t, "POST", ticketPath, bearer(tok), big)
		if resp.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", resp.Status)
		}
	})
	t.Run("non-JSON content type", func(t *testing.T) {
		resp := s.Do(t, "POST", ticketPath, bearer(tok, "Content-Type", "text/plain"), seedBody)
		if resp.Status != http.StatusUnsupportedMediaType {
			t.Errorf("status %d, want 415", resp.Status)
		}
	})
	t.Run("idempotencyKey too long", func(t *testing.T) {
		resp := s.Do(t, "POST", ticketPath, bearer(tok, "idempotencyKey", strings.Repeat("k", 129)), seedBody)
		if resp.Status != http.StatusBadRequest || !strings.Contains(string(resp.Body), "idempotencyKey") {
			t.Errorf("status %d %s, want 400 naming idempotencyKey", resp.Status, resp.Body)
		}
	})
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	full := s.Token(t, "")
	readOnly := s.Token(t, "openfinance.ticket.read")
	writeOnly := s.Token(t, "openfinance.ticket.write")
	var created consentflow.TicketJSON
	s.Do(t, "POST", ticketPath, bearer(full), seedBody).JSON(t, &created)

	// A second application must not see the first one's tickets.
	other, otherSecret, err := s.App.Apps.Create(t.Context(), newApp("Other partner", "OTHER"))
	if err != nil {
		t.Fatal(err)
	}
	otherTok := s.TokenFor(t, other.ClientID, otherSecret, "")
	forged := full[:len(full)-4] + "AAAA"

	tests := []struct {
		name, method, path string
		header             map[string]string
		status             int
		wwwAuth            string
	}{
		{"no token", "POST", ticketPath, nil, 401, "Bearer"},
		{"not bearer", "POST", ticketPath, map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}, 401, "Bearer"},
		{"garbage token", "POST", ticketPath, bearer("not-a-jwt"), 401, `Bearer error="invalid_token"`},
		{"forged signature", "POST", ticketPath, bearer(forged), 401, `Bearer error="invalid_token"`},
		{"read scope cannot write", "POST", ticketPath, bearer(readOnly), 403, `Bearer error="insufficient_scope", scope="openfinance.ticket.write"`},
		{"write scope cannot read", "GET", ticketPath + "/" + created.TicketID, bearer(writeOnly), 403, `Bearer error="insufficient_scope", scope="openfinance.ticket.read"`},
		{"read scope reads", "GET", ticketPath + "/" + created.TicketID, bearer(readOnly), 200, ""},
		{"another application's ticket", "GET", ticketPath + "/" + created.TicketID, bearer(otherTok), 404, ""},
		{"unknown ticket", "GET", ticketPath + "/0123456789abcdef0123456789abcdef", bearer(full), 404, ""},
		{"malformed ticket id", "GET", ticketPath + "/nope", bearer(full), 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = seedBody
			}
			resp := s.Do(t, tt.method, tt.path, tt.header, body)
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.status, resp.Body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wwwAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wwwAuth)
			}
			if tt.status >= 400 {
				var e banklyErrors
				resp.JSON(t, &e)
				if len(e.Errors) != 1 || e.Errors[0].Code == "" {
					t.Errorf("error body %s is not one Bankly error", resp.Body)
				}
			}
		})
	}

	t.Run("expired token", func(t *testing.T) {
		tok := s.Token(t, "")
		s.Clock.Advance(299 * time.Second)
		if r := s.Do(t, "GET", ticketPath+"/"+created.TicketID, bearer(tok), ""); r.Status != 200 {
			t.Fatalf("token refused before expiry: %d", r.Status)
		}
		s.Clock.Advance(time.Second)
		if r := s.Do(t, "GET", ticketPath+"/"+created.TicketID, bearer(tok), ""); r.Status != 401 {
			t.Errorf("token accepted at expiry: %d", r.Status)
		}
	})
	t.Run("disabled application", func(t *testing.T) {
		tok := s.TokenFor(t, other.ClientID, otherSecret, "")
		if _, err := s.App.Apps.Disable(t.Context(), other.ClientID); err != nil {
			t.Fatal(err)
		}
		if r := s.Do(t, "POST", ticketPath, bearer(tok), seedBody); r.Status != 401 {
			t.Errorf("disabled application's token accepted: %d", r.Status)
		}
	})
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "")
		key := map[string]string{"idempotencyKey": "9b0c1f0e-key-one"}
		h := bearer(tok, "idempotencyKey", key["idempotencyKey"])
		first := s.Do(t, "POST", ticketPath, h, seedBody)
		if first.Status != 201 {
			t.Fatalf("first: %d %s", first.Status, first.Body)
		}
		s.Clock.Advance(5 * time.Second)
		// Same body, other whitespace: the same request.
		second := s.Do(t, "POST", ticketPath, h, strings.Join(strings.Fields(seedBody), ""))
		if second.Status != 201 || string(second.Body) != string(first.Body) {
			t.Errorf("replay: %d %s, want 201 and the first body byte for byte", second.Status, second.Body)
		}
		if second.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay not marked")
		}
		other := strings.Replace(seedBody, "47742663023", "52998224725", 1)
		reused := s.Do(t, "POST", ticketPath, h, other)
		var e banklyErrors
		reused.JSON(t, &e)
		if reused.Status != 422 || len(e.Errors) != 1 || e.Errors[0].Code != "IDEMPOTENCY_KEY_REUSED" {
			t.Errorf("key reuse: %d %s, want 422 IDEMPOTENCY_KEY_REUSED", reused.Status, reused.Body)
		}
		// Another application may use the same key freely.
		oa, osec, err := s.App.Apps.Create(t.Context(), newApp("Other", "OTHER"))
		if err != nil {
			t.Fatal(err)
		}
		if r := s.Do(t, "POST", ticketPath, bearer(s.TokenFor(t, oa.ClientID, osec, ""), "idempotencyKey", key["idempotencyKey"]), other); r.Status != 201 {
			t.Errorf("same key, other application: %d", r.Status)
		}
		if n := countTickets(t, s); n != 2 {
			t.Errorf("%d tickets, want 2", n)
		}

		// Survives a restart.
		s = s.Restart(t)
		tok = s.Token(t, "")
		h["Authorization"] = "Bearer " + tok
		after := s.Do(t, "POST", ticketPath, h, seedBody)
		if after.Status != 201 || string(after.Body) != string(first.Body) {
			t.Errorf("replay after restart: %d %s", after.Status, after.Body)
		}
		// After 24 h the key is free again and creates a new ticket.
		s.Clock.Advance(24 * time.Hour)
		tok = s.Token(t, "")
		h["Authorization"] = "Bearer " + tok
		fresh := s.Do(t, "POST", ticketPath, h, seedBody)
		if fresh.Status != 201 || string(fresh.Body) == string(first.Body) {
			t.Errorf("after 24 h: %d %s, want a new ticket", fresh.Status, fresh.Body)
		}
		if n := countTickets(t, s); n != 3 {
			t.Errorf("%d tickets, want 3", n)
		}
	})
}

func TestConcurrentSameKeyCreatesOneTicket(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		h := bearer(s.Token(t, ""), "idempotencyKey", "concurrent-key")
		const n = 20
		bodies := make([]string, n)
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := s.Do(t, "POST", ticketPath, h, seedBody)
				statuses[i], bodies[i] = r.Status, string(r.Body)
			}()
		}
		wg.Wait()
		for i := range n {
			if statuses[i] != 201 || bodies[i] != bodies[0] {
				t.Errorf("request %d: %d %s, want 201 %s", i, statuses[i], bodies[i], bodies[0])
			}
		}
		if c := countTickets(t, s); c != 1 {
			t.Errorf("%d tickets created, want exactly 1", c)
		}
	})
}

func TestConcurrentRedemptionHasOneWinner(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		var tk consentflow.TicketJSON
		s.Do(t, "POST", ticketPath, bearer(s.Token(t, "")), seedBody).JSON(t, &tk)
		const n = 50
		statuses := make([]int, n)
		cookies := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+tk.TicketID, nil, "")
				statuses[i], cookies[i] = r.Status, r.Header.Get("Set-Cookie")
			}()
		}
		wg.Wait()
		won := 0
		for i := range n {
			switch {
			case statuses[i] == 200 && cookies[i] != "":
				won++
			case statuses[i] == 410 && cookies[i] == "":
			default:
				t.Errorf("redemption %d: status %d cookie %q", i, statuses[i], cookies[i])
			}
		}
		if won != 1 {
			t.Errorf("%d redemptions won, want exactly 1", won)
		}
		var sessions int
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM holder_sessions`).Scan(&sessions); err != nil {
			t.Fatal(err)
		}
		if sessions != 1 {
			t.Errorf("%d holder sessions, want 1", sessions)
		}
	})
}

func TestTicketExpiry(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "")
		var late, onTime consentflow.TicketJSON
		s.Do(t, "POST", ticketPath, bearer(tok), seedBody).JSON(t, &late)
		s.Do(t, "POST", ticketPath, bearer(tok), seedBody).JSON(t, &onTime)

		s.Clock.Advance(59*time.Second + 999*time.Millisecond)
		if r := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+onTime.TicketID, nil, ""); r.Status != 200 {
			t.Errorf("redeem at 59.999 s: %d, want 200", r.Status)
		}
		s.Clock.Advance(time.Millisecond)
		r := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+late.TicketID, nil, "")
		if r.Status != http.StatusGone || r.Header.Get("Set-Cookie") != "" || !strings.Contains(string(r.Body), "expirou") {
			t.Errorf("redeem at 60 s: %d cookie %q, want 410 expired and no session", r.Status, r.Header.Get("Set-Cookie"))
		}
		var still consentflow.TicketJSON
		s.Do(t, "GET", ticketPath+"/"+late.TicketID, bearer(s.Token(t, "")), "").JSON(t, &still)
		if still.Status != consentflow.TicketUnused {
			t.Errorf("expired ticket status %s, want UNUSED (the seed knows only USED/UNUSED)", still.Status)
		}
		// The sweep counts it once, however often it runs.
		if err := s.App.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := s.App.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		m := s.Do(t, "GET", "/metrics", nil, "")
		for _, want := range []struct {
			name  string
			value int
		}{{"ponte_tickets_created_total", 2}, {"ponte_tickets_redeemed_total", 1}, {"ponte_tickets_expired_total", 1}} {
			// Whatever labels the instance adds (its name).
			line := regexp.MustCompile(`(?m)^` + want.name + `(\{[^}]*\})? ` + strconv.Itoa(want.value) + `$`)
			if !line.Match(m.Body) {
				t.Errorf("metrics lack %s %d", want.name, want.value)
			}
		}
	})
}

func TestWebViewUnknownAndHead(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	for _, q := range []string{"", "?ticket=", "?ticket=0123456789abcdef0123456789abcdef", "?ticket=%3Cscript%3E"} {
		r := s.Do(t, "GET", "/openfinance/consent-flow/webview"+q, nil, "")
		if r.Status != 404 || r.Header.Get("Set-Cookie") != "" || strings.Contains(string(r.Body), "<script>") {
			t.Errorf("webview%s: %d cookie %q", q, r.Status, r.Header.Get("Set-Cookie"))
		}
	}
	var tk consentflow.TicketJSON
	s.Do(t, "POST", ticketPath, bearer(s.Token(t, "")), seedBody).JSON(t, &tk)
	if r := s.Do(t, "HEAD", "/openfinance/consent-flow/webview?ticket="+tk.TicketID, nil, ""); r.Status != 200 || r.Header.Get("Set-Cookie") != "" {
		t.Errorf("HEAD: %d cookie %q", r.Status, r.Header.Get("Set-Cookie"))
	}
	if r := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket="+tk.TicketID, nil, ""); r.Status != 200 {
		t.Errorf("GET after HEAD: %d, want 200 (HEAD must not redeem)", r.Status)
	}
	if got := s.Do(t, "GET", "/openfinance/consent-flow/webview?ticket=x", nil, "").Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", got)
	}
}

func TestProductionModeRefusesUnknownRequestURI(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{Mode: config.Production})
	if s.App.Demo != nil {
		t.Fatal("production mode created a demo application")
	}
	a, secret, err := s.App.Apps.Create(t.Context(), newApp("Partner", "ACESSO"))
	if err != nil {
		t.Fatal(err)
	}
	r := s.Do(t, "POST", ticketPath, bearer(s.TokenFor(t, a.ClientID, secret, ""), "idempotencyKey", "k1"), seedBody)
	var e banklyErrors
	r.JSON(t, &e)
	if r.Status != 400 || len(e.Errors) != 1 || e.Errors[0].PropertyName != "requestUri" || !strings.Contains(e.Errors[0].Message, "not found or expired") {
		t.Errorf("production requestUri: %d %s", r.Status, r.Body)
	}
	if n := countTickets(t, s); n != 0 {
		t.Errorf("%d tickets stored", n)
	}
	// The refused request did not burn the idempotency key.
	var keys int
	if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM idempotency_records`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != 0 {
		t.Errorf("%d idempotency records kept for a failed request", keys)
	}
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		clientID, secret := s.App.Demo.ClientID, s.App.DemoSecret
		var tk consentflow.TicketJSON
		s.Do(t, "POST", ticketPath, bearer(s.Token(t, "")), seedBody).JSON(t, &tk)
		s = s.Restart(t)
		if s.App.Demo.ClientID != clientID || s.App.DemoSecret != secret {
			t.Errorf("demo credentials changed across restart")
		}
		r := s.Do(t, "GET", ticketPath+"/"+tk.TicketID, bearer(s.Token(t, "")), "")
		if r.Status != 200 {
			t.Errorf("ticket lost across restart: %d", r.Status)
		}
	})
}

func countTickets(t *testing.T, s *apptest.Server) int {
	t.Helper()
	var n int
	if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM consent_flow_tickets`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var _ = fmt.Sprint
var _ = json.Marshal
