package cluster_test

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

const phoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"

// TestJourneyAcrossInstances: a sweeping journey whose every step lands on
// another instance than the one before, addressing instances A and B
// directly: the session is created on A; the hosted page and its
// confirmation (consent and PAR at the sandbox brand, reached through the
// balancer) and the authorize on B; the partner app (the ticket) and the
// WebView on A; the interactions on B; the callback on A. Then a sweeping
// transfer through the balancer settles: the session is FINISHED, the
// transfer ACSC and the money moved in the ledger.
func TestJourneyAcrossInstances(t *testing.T) {
	c := newCluster(t, 2)
	A, B := c.Instances[0].URL, c.Instances[1].URL
	ctx := t.Context()
	client := newClient(2)
	tok, err := token(ctx, client, c.URL, c.ClientID, c.ClientSecret, "")
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	phone := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	browse := func(method, target, contentType, body string, header map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", phoneUA)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := phone.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	// on rewrites a URL Ponte printed (the balancer's) to one instance.
	on := func(base, u string) string { return strings.Replace(u, c.URL, base, 1) }
	location := func(res *http.Response, body string) string {
		t.Helper()
		if res.StatusCode != http.StatusSeeOther && res.StatusCode != http.StatusFound {
			t.Fatalf("%s %s: %d, want a redirect: %.300s", res.Request.Method, res.Request.URL, res.StatusCode, body)
		}
		loc, err := res.Request.URL.Parse(res.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		return loc.String()
	}

	// A: the partner creates the session.
	ext := fmt.Sprintf("across-%d", time.Now().UnixNano())
	status, body, err := send(ctx, client, http.MethodPost, A+"/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions", tok,
		fmt.Appendf(nil, `{"redirectUrl":"%s/sandbox/done","externalId":"%s"}`, c.URL, ext), nil)
	sessionID, journeyURL := jsonPath(body, "id"), jsonPath(body, "journeySessionUrl")
	if err != nil || status != 200 || sessionID == "" || !strings.HasPrefix(journeyURL, c.URL) {
		t.Fatalf("create the session on A: %d %s %v", status, body, err)
	}
	// B: the hosted page, its confirmation and the authorize.
	res, page := browse(http.MethodGet, on(B, journeyURL), "", "", nil)
	brand := regexp.MustCompile(`name="brandId" value="([^"]*)" checked`).FindStringSubmatch(page)
	if res.StatusCode != 200 || brand == nil {
		t.Fatalf("journey page on B: %d %.300s", res.StatusCode, page)
	}
	ju, _ := url.Parse(journeyURL)
	form := url.Values{"id": {ju.Query().Get("id")}, "token": {ju.Query().Get("token")}, "brandId": {brand[1]},
		"document": {"47742663023"}, "name": {"Maria da Silva"}}
	authorize := location(browse(http.MethodPost, B+ju.Path+"/confirm", "application/x-www-form-urlencoded", form.Encode(), nil))
	deepLink, _ := url.Parse(location(browse(http.MethodGet, on(B, authorize), "", "", nil)))
	// A: the partner app (the ticket), the WebView.
	form = url.Values{"request_uri": {deepLink.Query().Get("request_uri")}, "client_id": {deepLink.Query().Get("client_id")},
		"document": {"47742663023"}, "password": {"sandbox"}}
	webview, _ := url.Parse(location(browse(http.MethodPost, A+"/sandbox/partner-app", "application/x-www-form-urlencoded", form.Encode(), nil)))
	login, _ := url.ParseQuery(webview.Fragment)
	webview.Fragment = ""
	res, page = browse(http.MethodGet, on(A, webview.String()), "", "", nil)
	interaction := regexp.MustCompile(`data-interaction="([^"]*)"`).FindStringSubmatch(page)
	slug := regexp.MustCompile(`data-client="([^"]*)"`).FindStringSubmatch(page)
	if res.StatusCode != 200 || interaction == nil || slug == nil {
		t.Fatalf("WebView on A: %d %.300s", res.StatusCode, page)
	}
	// B: the interactions. The session cookie was set by A: any instance reads it.
	api := B + "/api/" + url.PathEscape(slug[1]) + "/consents/v1/interactions/" + interaction[1] + "/"
	hdr := map[string]string{"Origin": B} // the page B would serve them from
	const device = `{"platform":"APP","os":"IOS","osVersion":"17.5"}`
	if res, page := browse(http.MethodPost, api+"login", "application/json", `{"accessToken":"`+login.Get("accessToken")+`","device":`+device+`}`, hdr); res.StatusCode != 200 {
		t.Fatalf("login on B: %d %s", res.StatusCode, page)
	}
	res, page = browse(http.MethodPost, api+"consent", "application/json",
		`{"partialApproval":false,"debtorAccount":{"ispb":"37241230","issuer":"0001","number":"1234567","accountType":"CACC"},"device":`+device+`}`, hdr)
	redirect := jsonPath([]byte(page), "redirectUri")
	if res.StatusCode != 200 || redirect == "" {
		t.Fatalf("consent on B: %d %s", res.StatusCode, page)
	}
	back, _ := url.Parse(location(browse(http.MethodGet, on(B, redirect), "", "", nil)))
	// A: the callback.
	fragment := back.Fragment
	back.Fragment = ""
	done := location(browse(http.MethodPost, on(A, back.String()), "application/x-www-form-urlencoded", fragment, nil))
	if du, _ := url.Parse(done); du.Query().Get("status") != "FINISHED" || du.Query().Get("id") != sessionID {
		t.Fatalf("after the callback on A the phone goes to %s", done)
	}

	// The partner moves money through the balancer: a sweeping transfer to her savings.
	db, err := sql.Open("pgx", c.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	balance := func(number string) string {
		var v string
		if err := db.QueryRowContext(ctx, `SELECT b.available_amount FROM account_balances b JOIN accounts a ON a.id = b.account_id WHERE a.number = $1`, number).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	checking, savings := balance("1234567"), balance("23456789")
	transfer := fmt.Appendf(nil, `{"journeySessionId":"%s","externalId":"%s-t","amount":"10.00",
	"creditorAccount":{"ispb":"37241230","issuer":"0001","number":"23456789","accountType":"SVGS"},
	"riskSignals":{"manual":{"deviceId":"d-1","osVersion":"17","userTimeZoneOffset":"-03","language":"pt",
	  "screenDimensions":{"height":2532,"width":1170},"accountTenure":"2023-01-01"}}}`, sessionID, ext)
	const transfers = "/open-keys/itp/api/v2/sweeping-accounts/v2/payment-initiations"
	status, body, err = send(ctx, client, http.MethodPost, c.URL+transfers, tok, transfer, nil)
	transferID := jsonPath(body, "id")
	if err != nil || status != 200 || transferID == "" {
		t.Fatalf("transfer: %d %s %v", status, body, err)
	}
	var final string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		_, body, err = send(ctx, client, http.MethodGet, c.URL+transfers+"/"+transferID, tok, nil, nil)
		if err == nil {
			if st := jsonPath(body, "status"); st == "ACSC" || st == "RJCT" || st == "CANC" {
				final = st
				break
			}
		}
	}
	if final != "ACSC" {
		t.Fatalf("transfer %s: final status %q, last answer %s", transferID, final, body)
	}
	_, body, _ = send(ctx, client, http.MethodGet, c.URL+"/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions/"+sessionID, tok, nil, nil)
	if st := jsonPath(body, "status"); st != "FINISHED" {
		t.Errorf("session %s: %s", sessionID, body)
	}
	after, afterSavings := balance("1234567"), balance("23456789")
	t.Logf("session %s FINISHED across A and B; transfer %s ACSC; checking %s → %s, savings %s → %s", sessionID, transferID, checking, after, savings, afterSavings)
	if after == checking || afterSavings == savings {
		t.Errorf("the ledger did not move: checking %s → %s, savings %s → %s", checking, after, savings, afterSavings)
	}
}
