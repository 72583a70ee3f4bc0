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

	"github.com/ponte-ofb/ponte/internal/cluster"
)

const phoneUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"

// phone is Maria's phone: a cookie jar that never follows redirects, and
// the cluster, whose printed URLs (the balancer's) it rewrites to the
// instance each step is meant to land on.
type phone struct {
	t  *testing.T
	c  *cluster.Cluster
	hc *http.Client
}

func newPhone(t *testing.T, c *cluster.Cluster) *phone {
	jar, _ := cookiejar.New(nil) // cookies ignore ports: every instance on 127.0.0.1 sees them, as behind one balancer
	return &phone{t: t, c: c, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// on rewrites a URL Ponte printed (the balancer's) to the instance at base.
func (p *phone) on(base, u string) string { return strings.Replace(u, p.c.URL, base, 1) }

func (p *phone) browse(method, target, contentType, body string, header map[string]string) (*http.Response, string) {
	p.t.Helper()
	req, err := http.NewRequestWithContext(p.t.Context(), method, target, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("User-Agent", phoneUA)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := p.hc.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// location is where a redirect answer sends the phone.
func (p *phone) location(res *http.Response, body string) string {
	p.t.Helper()
	if res.StatusCode != http.StatusSeeOther && res.StatusCode != http.StatusFound {
		p.t.Fatalf("%s %s: %d, want a redirect: %.300s", res.Request.Method, res.Request.URL, res.StatusCode, body)
	}
	loc, err := res.Request.URL.Parse(res.Header.Get("Location"))
	if err != nil {
		p.t.Fatal(err)
	}
	return loc.String()
}

// decide takes Maria from the holder's authorize URL to her approval: the
// authorize on authorize, the sandbox partner app (which creates the
// ticket) on app, the WebView on webview, the interactions (login,
// consent) and the redirect back on interactions. It returns where the
// holder sends the phone (the initiator's redirect URI with the fragment).
func (p *phone) decide(authorizeURL, authorize, app, webview, interactions string) *url.URL {
	p.t.Helper()
	deepLink, _ := url.Parse(p.location(p.browse(http.MethodGet, p.on(authorize, authorizeURL), "", "", nil)))
	if deepLink.Path != "/sandbox/partner-app" {
		p.t.Fatalf("authorize sent the phone to %s, want the sandbox partner app", deepLink)
	}
	form := url.Values{"request_uri": {deepLink.Query().Get("request_uri")}, "client_id": {deepLink.Query().Get("client_id")},
		"document": {"47742663023"}, "password": {"sandbox"}}
	wv, _ := url.Parse(p.location(p.browse(http.MethodPost, app+"/sandbox/partner-app", "application/x-www-form-urlencoded", form.Encode(), nil)))
	login, _ := url.ParseQuery(wv.Fragment)
	wv.Fragment = ""
	res, page := p.browse(http.MethodGet, p.on(webview, wv.String()), "", "", nil)
	interaction := regexp.MustCompile(`data-interaction="([^"]*)"`).FindStringSubmatch(page)
	slug := regexp.MustCompile(`data-client="([^"]*)"`).FindStringSubmatch(page)
	if res.StatusCode != 200 || interaction == nil || slug == nil {
		p.t.Fatalf("WebView on %s: %d %.300s", webview, res.StatusCode, page)
	}
	// The holder session's cookie was set by the WebView's instance: any instance reads it.
	api := interactions + "/api/" + url.PathEscape(slug[1]) + "/consents/v1/interactions/" + interaction[1] + "/"
	hdr := map[string]string{"Origin": interactions} // the page that instance would serve them from
	const device = `{"platform":"APP","os":"IOS","osVersion":"17.5"}`
	if res, page := p.browse(http.MethodPost, api+"login", "application/json", `{"accessToken":"`+login.Get("accessToken")+`","device":`+device+`}`, hdr); res.StatusCode != 200 {
		p.t.Fatalf("login on %s: %d %s", interactions, res.StatusCode, page)
	}
	res, page = p.browse(http.MethodPost, api+"consent", "application/json",
		`{"partialApproval":false,"debtorAccount":{"ispb":"37241230","issuer":"0001","number":"1234567","accountType":"CACC"},"device":`+device+`}`, hdr)
	redirect := jsonPath([]byte(page), "redirectUri")
	if res.StatusCode != 200 || redirect == "" {
		p.t.Fatalf("consent on %s: %d %s", interactions, res.StatusCode, page)
	}
	back, _ := url.Parse(p.location(p.browse(http.MethodGet, p.on(interactions, redirect), "", "", nil)))
	return back
}

// approveSweeping runs a sweeping journey to FINISHED and returns the
// session's id. Each step runs on the instance (or the balancer) at says:
// the partner creates the session (journey "" is the application's
// default) with externalId ext on at[0]; the hosted page on at[1]; its
// confirmation (consent and PAR at the sandbox brand, through the
// balancer) on at[2]; the authorize on at[3]; the partner app and the
// WebView on at[4]; the interactions on at[5]; the callback on at[6].
func (p *phone) approveSweeping(client *http.Client, tok, journey, ext string, at [7]string) string {
	p.t.Helper()
	body := fmt.Sprintf(`{"redirectUrl":"%s/sandbox/done","externalId":"%s"}`, p.c.URL, ext)
	if journey != "" {
		body = fmt.Sprintf(`{"journeyId":"%s","redirectUrl":"%s/sandbox/done","externalId":"%s"}`, journey, p.c.URL, ext)
	}
	status, resp, err := send(p.t.Context(), client, http.MethodPost, at[0]+"/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions", tok, []byte(body), nil)
	sessionID, journeyURL := jsonPath(resp, "id"), jsonPath(resp, "journeySessionUrl")
	if err != nil || status != 200 || sessionID == "" || !strings.HasPrefix(journeyURL, p.c.URL) {
		p.t.Fatalf("create the session on %s: %d %s %v", at[0], status, resp, err)
	}
	res, page := p.browse(http.MethodGet, p.on(at[1], journeyURL), "", "", nil)
	brand := regexp.MustCompile(`name="brandId" value="([^"]*)" checked`).FindStringSubmatch(page)
	if res.StatusCode != 200 || brand == nil {
		p.t.Fatalf("journey page on %s: %d %.300s", at[1], res.StatusCode, page)
	}
	ju, _ := url.Parse(journeyURL)
	form := url.Values{"id": {ju.Query().Get("id")}, "token": {ju.Query().Get("token")}, "brandId": {brand[1]},
		"document": {"47742663023"}, "name": {"Maria da Silva"}}
	authorize := p.location(p.browse(http.MethodPost, at[2]+ju.Path+"/confirm", "application/x-www-form-urlencoded", form.Encode(), nil))
	back := p.decide(authorize, at[3], at[4], at[4], at[5])
	fragment := back.Fragment
	back.Fragment = ""
	done := p.location(p.browse(http.MethodPost, p.on(at[6], back.String()), "application/x-www-form-urlencoded", fragment, nil))
	if du, _ := url.Parse(done); du.Query().Get("status") != "FINISHED" || du.Query().Get("id") != sessionID {
		p.t.Fatalf("after the callback on %s the phone goes to %s", at[6], done)
	}
	return sessionID
}

// sandboxBrand is the id of the sandbox brand, Ponte's own holder side.
func sandboxBrand(t *testing.T, db *sql.DB) string {
	t.Helper()
	var id string
	if err := db.QueryRowContext(t.Context(), `SELECT id FROM itp_brands`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestJourneyAcrossInstances: journeys whose every step lands on another
// instance than the one before, addressing instances A and B directly.
// Sweeping: the session is created on A; the hosted page and its
// confirmation (consent and PAR at the sandbox brand, reached through the
// balancer) and the authorize on B; the partner app (the ticket) and the
// WebView on A; the interactions on B; the callback on A; a sweeping
// transfer through the balancer settles. Brick: the consent on B, the
// authorize on A, the partner app and WebView on B, the interactions on A,
// the partner's callback on B; the payment settles through the balancer.
// At the end the session is FINISHED, both payments ACSC and the ledger
// moved by both amounts.
func TestJourneyAcrossInstances(t *testing.T) {
	c := newCluster(t, 2)
	A, B := c.Instances[0].URL, c.Instances[1].URL
	ctx := t.Context()
	client := newClient(2)
	tok, err := token(ctx, client, c.URL, c.ClientID, c.ClientSecret, "")
	if err != nil {
		t.Fatal(err)
	}
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
	p := newPhone(t, c)

	// Sweeping: session on A; page, confirm and authorize on B; partner app and WebView on A; interactions on B; callback on A.
	ext := fmt.Sprintf("across-%d", time.Now().UnixNano())
	sessionID := p.approveSweeping(client, tok, "", ext, [7]string{A, B, B, A, A, B, A})
	// The partner moves money through the balancer: a sweeping transfer to her savings.
	transfer := fmt.Appendf(nil, `{"journeySessionId":"%s","externalId":"%s-t","amount":"10.00",
	"creditorAccount":{"ispb":"37241230","issuer":"0001","number":"23456789","accountType":"SVGS"},
	"riskSignals":{"manual":{"deviceId":"d-1","osVersion":"17","userTimeZoneOffset":"-03","language":"pt",
	  "screenDimensions":{"height":2532,"width":1170},"accountTenure":"2023-01-01"}}}`, sessionID, ext)
	const transfers = "/open-keys/itp/api/v2/sweeping-accounts/v2/payment-initiations"
	status, body, err := send(ctx, client, http.MethodPost, c.URL+transfers, tok, transfer, nil)
	transferID := jsonPath(body, "id")
	if err != nil || status != 200 || transferID == "" {
		t.Fatalf("transfer: %d %s %v", status, body, err)
	}
	if st := finalStatus(t, func() []byte {
		_, b, _ := send(ctx, client, http.MethodGet, c.URL+transfers+"/"+transferID, tok, nil, nil)
		return b
	}, "status"); st != "ACSC" {
		t.Fatalf("transfer %s: %s, want ACSC", transferID, st)
	}
	_, body, _ = send(ctx, client, http.MethodGet, c.URL+"/open-keys/itp/api/v2/sweeping-accounts/v2/journeys-sessions/"+sessionID, tok, nil, nil)
	if st := jsonPath(body, "status"); st != "FINISHED" {
		t.Errorf("session %s: %s", sessionID, body)
	}

	// Brick. B: the partner creates the consent (Ponte-as-initiator creates it at the sandbox brand through the balancer).
	today := time.Now().In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02")
	status, body, err = send(ctx, client, http.MethodPost, B+"/api/admin/payment-initiation/v1/consents", tok, []byte(`{"data":{
	  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
	  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"55155114845","name":"HOMOLOGACAO PIX"},
	  "payment":{"type":"PIX","date":"`+today+`","details":{"localInstrument":"DICT",
	    "creditorAccount":{"accountType":"CACC","ispb":"92894922","issuer":"0001","number":"10173722"},"proxy":"55155114845"},
	    "amount":"1.15","currency":"BRL","ibgeTownCode":"5300108"}},
	 "device":{"platform":"BROWSER","os":"LINUX","osVersion":"20.04"},
	 "specVersion":"v4","redirectUri":"`+c.URL+`/sandbox/done","brandId":"`+sandboxBrand(t, db)+`"}`),
		map[string]string{"x-idempotency-key": fmt.Sprintf("brick-%d", time.Now().UnixNano())})
	consentID, authURL := jsonPath(body, "data.consentId"), jsonPath(body, "data.authorizationUrl")
	if err != nil || status != http.StatusCreated || consentID == "" || authURL == "" {
		t.Fatalf("Brick consent on B: %d %s %v", status, body, err)
	}
	// Authorize on A, partner app and WebView on B, interactions on A.
	back := p.decide(authURL, A, B, B, A)
	f, _ := url.ParseQuery(back.Fragment)
	status, body, err = send(ctx, client, http.MethodPost, B+"/api/admin/payment-initiation/v1/consents/callback", tok,
		[]byte(`{"code":"`+f.Get("code")+`","id_token":"`+f.Get("id_token")+`","state":"`+f.Get("state")+
			`","device":{"platform":"BROWSER","os":"LINUX","osVersion":"20.04"}}`), nil)
	if err != nil || status != 200 || jsonPath(body, "data.flowStatus") != "AUTHORISED" {
		t.Fatalf("Brick callback on B: %d %s %v", status, body, err)
	}
	var brickPayment string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && brickPayment == ""; time.Sleep(250 * time.Millisecond) {
		_, b, err := send(ctx, client, http.MethodGet, c.URL+"/api/admin/payment-initiation/v1/consents/"+url.PathEscape(consentID), tok, nil, nil)
		if st := paymentStatus(b); err == nil && (st == "ACSC" || st == "RJCT" || st == "CANC") {
			brickPayment = st
			body = b
		}
	}
	if brickPayment != "ACSC" {
		t.Fatalf("Brick payment of consent %s: %q, want ACSC (%s)", consentID, brickPayment, body)
	}

	after, afterSavings := balance("1234567"), balance("23456789")
	t.Logf("sweeping: session %s FINISHED across A and B, transfer %s ACSC; Brick: consent %s, payment ACSC; checking %s → %s, savings %s → %s",
		sessionID, transferID, consentID, checking, after, savings, afterSavings)
	if cents(t, checking)-cents(t, after) != 1115 || cents(t, afterSavings)-cents(t, savings) != 1000 {
		t.Errorf("the ledger moved checking %s → %s (want −11.15) and savings %s → %s (want +10.00)", checking, after, savings, afterSavings)
	}
}

// finalStatus polls read until the string at path is a final payment status.
func finalStatus(t *testing.T, read func() []byte, path string) string {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if st := jsonPath(read(), path); st == "ACSC" || st == "RJCT" || st == "CANC" {
			return st
		}
	}
	return "not final after 90 s"
}

// paymentStatus is the status of a Brick consent's one payment ("" when none yet).
func paymentStatus(body []byte) string {
	m := regexp.MustCompile(`"payments":\[\{[^\]]*?"status":"([A-Z]+)"`).FindSubmatch(body)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// cents parses a balance such as 5320.47.
func cents(t *testing.T, amount string) int64 {
	t.Helper()
	var whole, frac int64
	if _, err := fmt.Sscanf(amount, "%d.%d", &whole, &frac); err != nil {
		t.Fatalf("balance %q: %v", amount, err)
	}
	return whole*100 + frac
}
