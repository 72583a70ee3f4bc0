// Command consentrun measures payment-consent creation
// (POST /open-banking/payments/v4/consents) with plain JSON bodies and with
// signed JWT bodies (PS256, verified against the partner's JWKS, jti recorded,
// the 201 signed by Ponte) against a bare net/http handler that decodes and
// encodes the same JSON, all measured in the same run, and prints ratios.
//
//	go run ./bench/consentrun            # about 25 s
//	go run ./bench/consentrun -c 32 -d 10s
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/bench/internal/loadgen"
	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/payments"
)

func main() {
	workers := flag.Int("c", 16, "concurrent workers (closed loop)")
	dur := flag.Duration("d", 5*time.Second, "measured duration of each phase")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up before each phase")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *workers, *dur, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "consentrun:", err)
		os.Exit(1)
	}
}

// body is the data of every consent: an immediate Pix payment for today in Brasília.
func body() map[string]any {
	today := time.Now().In(time.FixedZone("BRT", -3*3600)).Format("2006-01-02")
	var m map[string]any
	_ = json.Unmarshal([]byte(`{"data":{
	  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
	  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"12345678909","name":"Marco Antonio de Brito"},
	  "payment":{"type":"PIX","date":"`+today+`","currency":"BRL","amount":"100.12",
	    "details":{"localInstrument":"DICT","proxy":"12345678909",
	      "creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}}}}`), &m)
	return m
}

// request is one prepared request: headers and body.
type request struct {
	contentType, token string
	body               []byte
}

func run(ctx context.Context, workers int, dur, warmup time.Duration) error {
	dir, err := os.MkdirTemp("", "consentrun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// Ponte, in process, on SQLite (WAL, synchronous=FULL) in sandbox mode.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	cfg := config.Config{Addr: ln.Addr().String(), DataDir: dir, Mode: config.Sandbox, PublicURL: "http://" + ln.Addr().String(),
		SigningKeyFile: filepath.Join(dir, "signing-key.pem"), TokenTTL: time.Hour, LogFormat: "json",
		ShutdownTimeout: 5 * time.Second, SweepInterval: time.Hour}
	if err := cfg.Finish(); err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer a.Close()
	ponte := &http.Server{Handler: a.Handler()}
	go func() { _ = ponte.Serve(ln) }()
	defer ponte.Close()

	// The partner: a non-demo application with a registered RSA key.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "bench", Use: "sig"}}})
	partner, _, err := a.Apps.Create(ctx, auth.NewApplication{Name: "bench ITP", CompanyKey: "BENCH", Scopes: []string{"payments"}, JWKS: jwks})
	if err != nil {
		return err
	}
	partnerToken, err := a.Tokens.Issue(partner, []string{"payments"})
	if err != nil {
		return err
	}
	demoToken, err := a.Tokens.Issue(a.Demo, []string{"payments"})
	if err != nil {
		return err
	}

	// The baseline: decode the same JSON, encode a response of the same shape.
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	baseline := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in payments.CreateConsentBody
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Data == nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		now := time.Now().UTC()
		c := payments.Consent{ID: "urn:ponte:" + uuid.NewString(), Status: payments.StatusAwaitingAuthorisation, Request: *in.Data,
			CreatedAt: now, ExpiresAt: now.Add(payments.AuthorisationWindow), StatusUpdatedAt: now}
		b, _ := json.Marshal(c.Response("http://"+bln.Addr().String()+payments.ConsentsPath+"/"+c.ID, now))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(b)
	})}
	go func() { _ = baseline.Serve(bln) }()
	defer baseline.Close()

	plain, _ := json.Marshal(body())
	jsonReq := func(token string) func() request {
		return func() request { return request{contentType: "application/json", token: token, body: plain} }
	}
	fmt.Printf("consentrun: %d workers, %s per phase (+%s warm-up), GOMAXPROCS %d, SQLite synchronous=FULL\n",
		workers, dur, warmup, runtime.GOMAXPROCS(0))

	base := phase(ctx, "baseline (bare handler, JSON)", "http://"+bln.Addr().String(), workers, dur, warmup, jsonReq(""))
	ponteJSON := phase(ctx, "Ponte, plain JSON (demo app)", cfg.PublicURL, workers, dur, warmup, jsonReq(demoToken))

	// Signed bodies are prepared before the phase (signing is the partner's
	// cost, not Ponte's): enough for 1.5× the JSON rate, fresh jti and iat each.
	n := int(ponteJSON.Rate*(dur+warmup).Seconds()*1.5) + 1000
	signed, err := presign(key, cfg.PublicURL+payments.ConsentsPath, partner.ClientID, n)
	if err != nil {
		return err
	}
	var next atomic.Int64
	ponteJWT := phase(ctx, "Ponte, signed JWT (PS256)", cfg.PublicURL, workers, dur, warmup, func() request {
		i := int(next.Add(1) - 1)
		if i >= len(signed) {
			return request{}
		}
		return request{contentType: payments.MediaTypeJWT, token: partnerToken, body: signed[i]}
	})

	fmt.Println()
	table := loadgen.Table{Width: 32, Status: http.StatusCreated}
	table.Header()
	for _, r := range []loadgen.Result{base, ponteJSON, ponteJWT} {
		table.Row(r, base.Rate)
	}
	fmt.Printf("\nsigned / plain JSON: %.2f of the throughput, p99 ×%.2f\n", ponteJWT.Rate/ponteJSON.Rate,
		float64(ponteJWT.P99)/float64(ponteJSON.P99))
	return nil
}

func presign(key *rsa.PrivateKey, aud, iss string, n int) ([][]byte, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), "bench"))
	if err != nil {
		return nil, err
	}
	out := make([][]byte, n)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	per := (n + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	for lo := 0; lo < n; lo += per {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				claims := body()
				claims["aud"], claims["iss"], claims["iat"], claims["jti"] = aud, iss, time.Now().Unix(), uuid.NewString()
				payload, _ := json.Marshal(claims)
				jws, err := signer.Sign(payload)
				if err == nil {
					var s string
					if s, err = jws.CompactSerialize(); err == nil {
						out[i] = []byte(s)
						continue
					}
				}
				mu.Lock()
				firstErr = errors.Join(firstErr, err)
				mu.Unlock()
				return
			}
		}(lo, min(lo+per, n))
	}
	wg.Wait()
	return out, firstErr
}

// phase runs a closed loop of workers posting the consents next returns to
// url for warmup + dur and measures the 201s of the last dur. A request with
// no body (prepared bodies ran out) ends a worker's loop.
func phase(ctx context.Context, name, url string, workers int, dur, warmup time.Duration, next func() request) loadgen.Result {
	c := loadgen.Closed{Name: name, Workers: workers, Warmup: warmup, Dur: dur, Status: http.StatusCreated, Width: 32}
	return loadgen.ClosedLoop(ctx, c, func(ctx context.Context) (*http.Request, func([]byte)) {
		rq := next()
		if rq.body == nil {
			return nil, nil
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+payments.ConsentsPath, bytes.NewReader(rq.body))
		req.Header.Set("Content-Type", rq.contentType)
		req.Header.Set("x-fapi-interaction-id", uuid.NewString())
		req.Header.Set("x-idempotency-key", uuid.NewString())
		if rq.token != "" {
			req.Header.Set("Authorization", "Bearer "+rq.token)
		}
		return req, nil
	})
}
