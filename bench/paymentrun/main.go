// Command paymentrun measures Pix payments at the holder (issue 15 §6), in
// one process, on SQLite and, when a PostgreSQL URL is given, on PostgreSQL.
//
//	go run ./bench/paymentrun                          # SQLite only
//	go run ./bench/paymentrun -pg postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
//	go run ./bench/paymentrun -n 500 -queued 20000     # shorter
//
// Payment creation: POST /open-banking/payments/v4/pix/payments with a
// signed body (PS256) and Ponte's signed 201, each payment under its own
// AUTHORISED consent with its own authorization_code token (ledger
// reservation, durable commit), against payment-consent creation
// (POST /open-banking/payments/v4/consents, signed) in alternating rounds of
// the same run, printed as a ratio with the process CPU per request of each.
//
// Settlement: -queued payments waiting exactly as POST leaves them, settled
// by Ponte's worker (the payments.pix.settle job), printed as settled/s, then
// checked: every payment settled once, one debit and one credit statement
// row each, balances conserved.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/bench/internal/benchdb"
	"github.com/ponte-ofb/ponte/bench/internal/loadgen"
	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// prof writes CPU profiles of the measured phases (-cpuprofile).
var prof = loadgen.Profiler{Prog: "paymentrun"}

type flags struct {
	n, workers, setupWorkers, queued int
	dur                              time.Duration
	pg                               string
	sqlite, http                     bool
	rounds                           int
}

func main() {
	var f flags
	flag.IntVar(&f.n, "n", 1000, "measured requests of each Ponte HTTP phase; as many payments (+10 % warm-up), each with its own consent approved through the journey")
	flag.IntVar(&f.workers, "c", 16, "concurrent workers of the measured HTTP phases (closed loop)")
	flag.IntVar(&f.setupWorkers, "setup-c", 32, "concurrent workers preparing consents, tokens and queued payments")
	flag.IntVar(&f.queued, "queued", 100_000, "payments waiting for settlement when the worker starts (0 skips settlement)")
	flag.DurationVar(&f.dur, "d", 30*time.Second, "most measured time of each HTTP phase (it ends earlier once its -n requests are sent)")
	flag.StringVar(&f.pg, "pg", os.Getenv("PONTE_TEST_DATABASE_URL"), "PostgreSQL URL (default PONTE_TEST_DATABASE_URL; empty: SQLite only)")
	flag.BoolVar(&f.sqlite, "sqlite", true, "run on SQLite (false: PostgreSQL only)")
	flag.IntVar(&f.rounds, "rounds", 5, "measured slices alternating consent and payment; the ratio is their median")
	flag.BoolVar(&f.http, "http", true, "run the HTTP creation phases (false: settlement only)")
	flag.StringVar(&prof.Prefix, "cpuprofile", "", "write CPU profiles to FILE.consents-<engine>-<round>, .payments-<engine>-<round> and .settle-<engine> (the whole process: filter with pprof -focus)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("paymentrun: n %d (+%d warm-up) per HTTP phase, %d workers, ≤ %s each, queued %d, GOMAXPROCS %d, load average %.2f\n",
		f.n, max(50, f.n/10), f.workers, f.dur, f.queued, runtime.GOMAXPROCS(0), loadAvg())
	var results []engineResult
	if f.sqlite {
		r, err := runEngine(ctx, f, "SQLite", "")
		if err != nil {
			fmt.Fprintln(os.Stderr, "paymentrun: SQLite:", err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	if f.pg == "" {
		fmt.Println("\nPostgreSQL: skipped (no -pg and no PONTE_TEST_DATABASE_URL)")
	} else {
		u, drop, err := benchdb.FreshSchema(f.pg, "paymentrun")
		if err != nil {
			fmt.Fprintln(os.Stderr, "paymentrun: PostgreSQL:", err)
			os.Exit(1)
		}
		r, err := runEngine(ctx, f, "PostgreSQL", u)
		drop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "paymentrun: PostgreSQL:", err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	summary(results)
	fmt.Printf("load average at the end %.2f\n", loadAvg())
}

// engineResult is what one engine measured.
type engineResult struct {
	engine                string
	base, consent, pix    phaseResult
	ratio                 float64   // median of the rounds' payment/consent ratios
	ratios                []float64 // each round's
	settled               int
	settleTook, settleCPU time.Duration
	checked               error
}

// phaseResult is a closed-loop phase and the process CPU it used.
type phaseResult struct {
	loadgen.Result
	cpu time.Duration // process CPU (user + system) over the measured window's requests
}

// cpuPerReq is the process CPU per request answered with the wanted status.
func (p phaseResult) cpuPerReq() time.Duration {
	if p.OK == 0 {
		return 0
	}
	return p.cpu / time.Duration(p.OK)
}

func summary(rs []engineResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Println("\nsummary (process CPU per request includes the load generator: the bare handler's row shows its share)")
	fmt.Printf("%-11s %10s %10s %8s %12s %12s %12s %10s %s\n", "engine", "consent/s", "payment/s", "median",
		"CPU/consent", "CPU/payment", "CPU/bare", "settled/s", "nothing twice")
	for _, r := range rs {
		rate := 0.0
		if r.settleTook > 0 {
			rate = float64(r.settled) / r.settleTook.Seconds()
		}
		ok := "yes"
		if r.settleTook == 0 {
			ok = "-"
		} else if r.checked != nil {
			ok = "NO: " + r.checked.Error()
		}
		fmt.Printf("%-11s %10.0f %10.0f %8.3f %12s %12s %12s %10.0f %s\n", r.engine, r.consent.Rate, r.pix.Rate,
			r.ratio, r.consent.cpuPerReq().Round(time.Microsecond), r.pix.cpuPerReq().Round(time.Microsecond),
			r.base.cpuPerReq().Round(time.Microsecond), rate, ok)
	}
	for _, r := range rs {
		fmt.Printf("%-11s payment/consent ≥ 0.8: %s; settled ≥ 5000/s: %s\n", r.engine,
			loadgen.Met(r.ratio >= 0.8), loadgen.Met(r.settleTook > 0 && float64(r.settled)/r.settleTook.Seconds() >= 5000))
	}
}

// Maria (the sandbox's demo customer) pays João, the other sandbox customer,
// so both accounts are Ponte's: the settlement debits one and credits the
// other, and their sum must not change.
const (
	mariaCPF     = "47742663023"
	mariaAccount = "1234567"
	joaoCPF      = "12345678909"
	joaoAccount  = "7654321"
	sandboxISPB  = "37241230"
	amount       = "0.01" // 100,000 of them fit in Maria's 5,320.47
	amountCents  = 1
)

func consentData() map[string]any {
	today := time.Now().In(time.FixedZone("BRT", -3*3600)).Format(time.DateOnly)
	var m map[string]any
	_ = json.Unmarshal([]byte(`{
	  "loggedUser":{"document":{"identification":"`+mariaCPF+`","rel":"CPF"}},
	  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"`+joaoCPF+`","name":"João Souza"},
	  "payment":{"type":"PIX","date":"`+today+`","currency":"BRL","amount":"`+amount+`","ibgeTownCode":"5300108",
	    "details":{"localInstrument":"DICT","proxy":"`+joaoCPF+`",
	      "creditorAccount":{"ispb":"`+sandboxISPB+`","issuer":"0001","number":"`+joaoAccount+`","accountType":"CACC"}}}}`), &m)
	return m
}

// pixItem is the one payment of a consentData consent.
func pixItem() map[string]any {
	return map[string]any{
		"endToEndId": endToEndID(time.Now()), "localInstrument": "DICT", "proxy": joaoCPF, "cnpjInitiator": "50685362000135",
		"ibgeTownCode": "5300108", "remittanceInformation": "paymentrun",
		"payment":         map[string]any{"amount": amount, "currency": "BRL"},
		"creditorAccount": map[string]any{"ispb": sandboxISPB, "issuer": "0001", "number": joaoAccount, "accountType": "CACC"},
	}
}

// endToEndID is a fresh endToEndId for time at: E, an ISPB, yyyyMMddHHmm
// (UTC) and 11 random alphanumerics.
func endToEndID(at time.Time) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 11)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return "E12345678" + at.UTC().Format("200601021504") + string(b)
}

// bench is one engine's Ponte and the partner playing the initiator.
type bench struct {
	a       *app.App
	url     string
	key     *rsa.PrivateKey
	signer  jose.Signer
	in      *oidctest.Initiator
	ccToken string // the demo application's client_credentials token (scope payments)
}

func runEngine(ctx context.Context, f flags, engine, dbURL string) (engineResult, error) {
	out := engineResult{engine: engine}
	fmt.Printf("\n== %s ==\n", engine)
	dir, err := os.MkdirTemp("", "paymentrun-")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return out, err
	}
	cfg := config.Config{Addr: ln.Addr().String(), DatabaseURL: dbURL, DataDir: dir, Mode: config.Sandbox,
		PublicURL: "http://" + ln.Addr().String(), SigningKeyFile: filepath.Join(dir, "signing-key.pem"), TokenTTL: time.Hour,
		LogFormat: "json", ShutdownTimeout: 5 * time.Second, SweepInterval: time.Hour, Settlement: config.SettlementLedger}
	if err := cfg.Finish(); err != nil {
		return out, err
	}
	// No Serve: the job workers stay stopped until the settlement phase runs them.
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return out, err
	}
	defer a.Close()
	srv := &http.Server{Handler: a.Handler()}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	b, err := newBench(ctx, a, cfg.PublicURL)
	if err != nil {
		return out, err
	}
	if f.http {
		if err := b.http(ctx, f, engine, &out); err != nil {
			return out, err
		}
	}
	if f.queued > 0 {
		if err := b.settlement(ctx, f, engine, &out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// newBench gives the sandbox demo application (whose customers the journey's
// sandbox partner app logs in) a PS256 key, registered both as the
// application's JWKS (signed bodies) and as its authorization-server client
// (request objects, private_key_jwt), as the payments tests do.
func newBench(ctx context.Context, a *app.App, base string) (*bench, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	const kid = "paymentrun"
	mine := jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.PS256), Use: "sig"}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{mine}})
	if err != nil {
		return nil, err
	}
	// Added to the demo's keys, not replacing them: the sandbox partner app
	// signs its login tokens with the key already there.
	var demoKeys jose.JSONWebKeySet
	if len(a.Demo.JWKS) > 0 {
		if err := json.Unmarshal(a.Demo.JWKS, &demoKeys); err != nil {
			return nil, fmt.Errorf("demo JWKS: %w", err)
		}
	}
	demoKeys.Keys = append(demoKeys.Keys, mine)
	all, err := json.Marshal(demoKeys)
	if err != nil {
		return nil, err
	}
	if _, err := a.Apps.SetJWKS(ctx, a.Demo.ClientID, all); err != nil {
		return nil, err
	}
	in := &oidctest.Initiator{ClientID: a.Demo.ClientID, RedirectURI: "https://initiator.example/paymentrun/callback", Key: key, KeyID: kid, Issuer: base}
	if _, err := a.AuthServer.Storage().RegisterInitiator(ctx, oidc.Initiator{ClientID: in.ClientID, Name: "paymentrun initiator",
		JWKS: jwks, RedirectURIs: []string{in.RedirectURI}}); err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return nil, err
	}
	tok, err := a.Tokens.Issue(a.Demo, []string{"payments"})
	if err != nil {
		return nil, err
	}
	return &bench{a: a, url: base, key: key, signer: signer, in: in, ccToken: tok}, nil
}

// sign returns the compact JWS of data with fresh aud, iss, iat and jti.
func (b *bench) sign(aud string, data any) ([]byte, error) {
	claims := map[string]any{"aud": aud, "iss": b.in.ClientID, "iat": time.Now().Unix(), "jti": uuid.NewString(), "data": data}
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	jws, err := b.signer.Sign(payload)
	if err != nil {
		return nil, err
	}
	s, err := jws.CompactSerialize()
	return []byte(s), err
}

// prepared is one request of a measured phase, built before it.
type prepared struct {
	token string
	body  []byte
}

func (b *bench) http(ctx context.Context, f flags, engine string, out *engineResult) error {
	// Both Ponte phases send the same count of requests: a warm-up of w
	// (not measured), then n measured, split into -rounds slices that
	// alternate consent and payment, so that a burst of other work on a
	// shared machine lands on both alike; a slice ends when its requests are
	// sent, or after -d.
	w := max(50, f.n/10)
	rounds := max(1, min(f.rounds, f.n))
	name := strings.ToLower(engine)

	// The bare handler: the load generator's own share of the process CPU.
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bare := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Data json.RawMessage }
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"data":{"consentId":"urn:bare:1","status":"AWAITING_AUTHORISATION"}}`))
	})}
	go func() { _ = bare.Serve(bln) }()
	defer bare.Close()
	plain, _ := json.Marshal(map[string]any{"data": consentData()})
	bareReqs := make([]prepared, w+f.n)
	for i := range bareReqs {
		bareReqs[i] = prepared{body: plain}
	}
	bareURL := "http://" + bln.Addr().String() + payments.ConsentsPath
	out.base = b.phase(ctx, f, "bare handler (load generator's share)", bareURL, "", bareReqs[:w], bareReqs[w:])

	// Each payment's consent, approved by Maria through the whole journey,
	// and the authorization_code token the initiator gets for it. Tokens
	// live 300 s: the rounds must be over well within that.
	t0 := time.Now()
	tokens, err := parallel(ctx, w+f.n, f.setupWorkers, func(i int) (string, error) { return b.journey(ctx) })
	if err != nil {
		return fmt.Errorf("journeys: %w", err)
	}
	journeys := time.Since(t0)
	fmt.Printf("  setup: %d consents authorised through POST /consents → PAR → authorize → WebView → code exchange in %s (%.0f/s)\n",
		w+f.n, journeys.Round(time.Millisecond), float64(w+f.n)/journeys.Seconds())
	if journeys > 200*time.Second {
		return fmt.Errorf("the journeys took %s; their 300-second tokens would expire during the rounds: use a smaller -n", journeys.Round(time.Second))
	}

	// Bodies are signed just before their slice (signing is the partner's
	// cost, not Ponte's; iat must be within 60 s of Ponte's clock).
	consents := func(k int) ([]prepared, error) {
		return parallel(ctx, k, runtime.GOMAXPROCS(0), func(int) (prepared, error) {
			body, err := b.sign(b.url+payments.ConsentsPath, consentData())
			return prepared{token: b.ccToken, body: body}, err
		})
	}
	pix := func(tokens []string) ([]prepared, error) {
		return parallel(ctx, len(tokens), runtime.GOMAXPROCS(0), func(i int) (prepared, error) {
			body, err := b.sign(b.url+payments.PixPaymentsPath, []any{pixItem()})
			return prepared{token: tokens[i], body: body}, err
		})
	}
	warmC, err := consents(w)
	if err != nil {
		return err
	}
	b.phase(ctx, f, "Ponte: consent, signed", b.url+payments.ConsentsPath, payments.MediaTypeJWT, warmC, nil)
	warmP, err := pix(tokens[:w])
	if err != nil {
		return err
	}
	b.phase(ctx, f, "Ponte: Pix payment, signed", b.url+payments.PixPaymentsPath, payments.MediaTypeJWT, warmP, nil)
	var cs, ps []phaseResult
	var ratios []float64
	for r := range rounds {
		lo, hi := w+r*f.n/rounds, w+(r+1)*f.n/rounds
		if rounds > 1 {
			fmt.Printf("  round %d of %d\n", r+1, rounds)
		}
		list, err := consents(hi - lo)
		if err != nil {
			return err
		}
		stop := prof.Start(fmt.Sprintf("consents-%s-%d", name, r+1))
		c := b.phase(ctx, f, "Ponte: consent, signed", b.url+payments.ConsentsPath, payments.MediaTypeJWT, nil, list)
		stop()
		if list, err = pix(tokens[lo:hi]); err != nil {
			return err
		}
		stop = prof.Start(fmt.Sprintf("payments-%s-%d", name, r+1))
		p := b.phase(ctx, f, "Ponte: Pix payment, signed", b.url+payments.PixPaymentsPath, payments.MediaTypeJWT, nil, list)
		stop()
		cs, ps, ratios = append(cs, c), append(ps, p), append(ratios, p.Rate/c.Rate)
	}
	out.consent, out.pix = combine(cs), combine(ps)
	out.ratio = loadgen.Median(ratios)
	out.ratios = ratios

	fmt.Println()
	table := loadgen.Table{Width: 40, Status: http.StatusCreated}
	table.Header()
	for _, r := range []phaseResult{out.base, out.consent, out.pix} {
		table.Row(r.Result, out.consent.Rate)
	}
	if rounds > 1 {
		fmt.Printf("  (rates: all rounds together; p50/p99: median of the rounds')\n")
	}
	fmt.Printf("  process CPU per 201: bare %s, consent %s, payment %s (≈ server, minus the bare share: consent %s, payment %s)\n",
		out.base.cpuPerReq().Round(time.Microsecond), out.consent.cpuPerReq().Round(time.Microsecond), out.pix.cpuPerReq().Round(time.Microsecond),
		(out.consent.cpuPerReq() - out.base.cpuPerReq()).Round(time.Microsecond), (out.pix.cpuPerReq() - out.base.cpuPerReq()).Round(time.Microsecond))
	fmt.Printf("  payment / consent: median of %d rounds %.3f (rounds %s; all together %.3f; target ≥ 0.8: %s), CPU per request ×%.2f\n",
		rounds, out.ratio, fmtRatios(ratios), out.pix.Rate/out.consent.Rate, loadgen.Met(out.ratio >= 0.8),
		float64(out.pix.cpuPerReq())/float64(out.consent.cpuPerReq()))
	for _, r := range []phaseResult{out.consent, out.pix} {
		if r.Other > 0 || r.Errs > 0 || r.OK < f.n {
			fmt.Printf("  WARNING: %s: %d of %d answered 201 (%d other statuses, %d transport errors)\n", r.Name, r.OK, f.n, r.Other, r.Errs)
		}
	}
	return nil
}

// combine adds up the rounds of one phase: counts, time and CPU summed,
// latencies the median of the rounds'.
func combine(rs []phaseResult) phaseResult {
	out := phaseResult{Result: loadgen.Result{Name: rs[0].Name}}
	var p50, p99 []time.Duration
	for _, r := range rs {
		out.OK, out.Other, out.Errs = out.OK+r.OK, out.Other+r.Other, out.Errs+r.Errs
		out.Elapsed += r.Elapsed
		out.cpu += r.cpu
		p50, p99 = append(p50, r.P50), append(p99, r.P99)
	}
	out.Rate = float64(out.OK) / out.Elapsed.Seconds()
	out.P50, out.P99 = loadgen.Median(p50), loadgen.Median(p99)
	return out
}

func fmtRatios(v []float64) string {
	parts := make([]string, len(v))
	for i, r := range v {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(parts, " ")
}

// feed hands out the prepared requests once each, then nothing.
func feed(list []prepared) func() (prepared, bool) {
	var next atomic.Int64
	return func() (prepared, bool) {
		i := int(next.Add(1) - 1)
		if i >= len(list) {
			return prepared{}, false
		}
		return list[i], true
	}
}

// phase posts warm (not measured) then list to target, the latter in a
// measured closed loop, with the process CPU it used.
func (b *bench) phase(ctx context.Context, f flags, name, target, contentType string, warm, list []prepared) phaseResult {
	run := func(name string, list []prepared) loadgen.Result {
		next := feed(list)
		c := loadgen.Closed{Name: name, Workers: f.workers, Dur: f.dur, Status: http.StatusCreated, Width: 40}
		return loadgen.ClosedLoop(ctx, c, func(ctx context.Context) (*http.Request, func([]byte)) {
			p, ok := next()
			if !ok {
				return nil, nil
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(p.body))
			req.Header.Set("Content-Type", contentType)
			if contentType == "" {
				req.Header.Set("Content-Type", "application/json")
			}
			req.Header.Set("x-fapi-interaction-id", uuid.NewString())
			req.Header.Set("x-idempotency-key", uuid.NewString())
			if p.token != "" {
				req.Header.Set("Authorization", "Bearer "+p.token)
			}
			return req, nil
		})
	}
	if len(warm) > 0 {
		run(name+" (warm-up)", warm)
	}
	if len(list) == 0 {
		return phaseResult{}
	}
	cpu0 := processCPU()
	r := run(name, list)
	return phaseResult{Result: r, cpu: processCPU() - cpu0}
}

// journey creates a consent (plain JSON, the demo application may), has
// Maria approve it with her account through the real redirect journey (PAR,
// /oauth/authorize, the sandbox partner app, the WebView's login and
// consent steps, the redirect back) and exchanges the code: it returns the
// access token, scopes openid payments consent:{consentId}.
func (b *bench) journey(ctx context.Context) (token string, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(journeyFailure)
			if !ok {
				panic(r)
			}
			err = errors.New(string(f))
		}
	}()
	body, _ := json.Marshal(map[string]any{"data": consentData()})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.url+payments.ConsentsPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.ccToken)
	req.Header.Set("x-fapi-interaction-id", uuid.NewString())
	req.Header.Set("x-idempotency-key", uuid.NewString())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	var created struct{ Data struct{ ConsentID string } }
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create consent: %d %v", resp.StatusCode, err)
	}
	var t tb
	r := oidctest.NewRequest(created.Data.ConsentID)
	resp = b.in.PAR(t, oidctest.NoRedirects(), b.url, r)
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	err = json.NewDecoder(resp.Body).Decode(&par)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("par: %d %v", resp.StatusCode, err)
	}
	authorize := b.url + oidc.PathAuthorize + "?" + url.Values{"client_id": {b.in.ClientID}, "request_uri": {par.RequestURI}}.Encode()
	cb := apptest.NewSandboxUser(mariaCPF, mariaAccount).Decide(t, &apptest.Server{URL: b.url}, authorize, true)
	frag, _ := url.ParseQuery(cb.Fragment)
	status, tok := b.in.ExchangeCode(t, oidctest.NoRedirects(), b.url, frag.Get("code"), r)
	access, _ := tok["access_token"].(string)
	if status != http.StatusOK || access == "" {
		return "", fmt.Errorf("code exchange: %d %v", status, tok)
	}
	return access, nil
}

// tb lets the bench drive the journey helpers the tests use (oidctest,
// apptest's SandboxUser), so the bench walks exactly the journey the tests
// walk. They only call Helper, Fatal and Fatalf; a failure panics with its
// message and journey turns it back into an error. Any other method would
// hit the nil embedded interface.
type tb struct{ testing.TB }

type journeyFailure string

func (tb) Helper()                      {}
func (tb) Fatal(args ...any)            { panic(journeyFailure(fmt.Sprint(args...))) }
func (tb) Fatalf(f string, args ...any) { panic(journeyFailure(fmt.Sprintf(f, args...))) }

// parallel runs fn(0..n-1) on workers goroutines and returns the results in
// order, or the first error.
func parallel[T any](ctx context.Context, n, workers int, fn func(i int) (T, error)) ([]T, error) {
	out := make([]T, n)
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				v, err := fn(i)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("#%d: %w", i, err)
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
				out[i] = v
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return out, first
}

// processCPU is this process's CPU time so far (user + system, all threads).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is the 1-minute load average (Linux; 0 elsewhere).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var v float64
	_, _ = fmt.Sscan(string(b), &v)
	return v
}

// dbQuery is what the settlement phase reads from the database.
type dbQuery interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
