package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/sandboxapp"
)

// path is one hot write path: how to make its requests on a started server.
type path struct {
	name   string // the -paths name
	title  string // what the table calls it
	status int    // the answer that counts
	// guess is the rate (req/s) assumed before a path's first slice, to size
	// the requests prepared for it; later slices use the rate measured.
	guess float64
	// setup runs once per server, before the first slice.
	setup func(ctx context.Context, s *server) error
	// prepare returns the slice's request maker for about n requests: paths
	// whose requests are made beforehand (signed bodies, tickets, consents
	// to report on) make n and then return nil (that worker stops); the
	// others make requests for as long as asked.
	prepare func(ctx context.Context, s *server, n int) (func(ctx context.Context) *http.Request, error)
}

// paths are the six write paths of issue 17 §2, in the order they run.
var paths = []path{
	{name: "ticket", title: "ticket create: POST " + ticketPath, status: http.StatusCreated, guess: 1500,
		prepare: func(_ context.Context, s *server, _ int) (func(context.Context) *http.Request, error) {
			return s.ticketRequest, nil
		}},
	{name: "journey", title: "journey-session create: POST " + itp.SessionsPath, status: http.StatusOK, guess: 1000,
		prepare: func(_ context.Context, s *server, _ int) (func(context.Context) *http.Request, error) {
			// externalId is unique per application: a slice's own prefix.
			prefix, seq := uuid.NewString()[:8], atomic.Int64{}
			redirect := s.url + sandboxapp.PathDone // registered for the demo application by the sandbox
			return func(ctx context.Context) *http.Request {
				body := fmt.Sprintf(journeyBody, redirect, fmt.Sprintf("pgrun-%s-%d", prefix, seq.Add(1)))
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+itp.SessionsPath, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+s.demo.token)
				return req
			}, nil
		}},
	{name: "payment", title: "payment consent create (Payments v4, signed): POST " + payments.ConsentsPath, status: http.StatusCreated, guess: 400,
		setup: func(ctx context.Context, s *server) error { return s.addPartner(ctx) },
		prepare: func(ctx context.Context, s *server, n int) (func(context.Context) *http.Request, error) {
			return s.signedRequests(ctx, payments.ConsentsPath, n, paymentConsentData)
		}},
	{name: "recurring", title: "recurring consent create (Automatic Payments v2, signed): POST " + recurring.ConsentsPath, status: http.StatusCreated, guess: 400,
		setup: func(ctx context.Context, s *server) error { return s.addPartner(ctx) },
		prepare: func(ctx context.Context, s *server, n int) (func(context.Context) *http.Request, error) {
			return s.signedRequests(ctx, recurring.ConsentsPath, n, recurringConsentData)
		}},
	{name: "pcm", title: "PCM report: POST /api/journey/v1/consents/{id}/report", status: http.StatusCreated, guess: 2500,
		prepare: func(ctx context.Context, s *server, n int) (func(context.Context) *http.Request, error) {
			return s.pcmReports(ctx, n)
		}},
	{name: "webview", title: "WebView redemption: GET " + consentflow.PathWebView + "?ticket=…", status: http.StatusOK, guess: 1500,
		prepare: func(ctx context.Context, s *server, n int) (func(context.Context) *http.Request, error) {
			return s.webviews(ctx, n)
		}},
}

func pathNames() []string {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = p.name
	}
	return names
}

// ticketPath is seed 000's ticket route.
const ticketPath = "/openfinance/consent-flow/ticket"

// ticketBody is seed 000's example, as loadrun sends it: a made-up
// requestUri, so redeeming the ticket opens the sandbox's WebView page.
const ticketBody = `{"requestUri":"17307eb8-e9e6-4ce1-a14d-6f30923746f2","clientId":"7481c175-4a50-4af2-b3b1-b24a109f92ad","documentNumber":"47742663023"}`

// journeyBody is journeyrun's session (seed 003), for the demo application's
// default journey (the sandbox's), with a fresh externalId.
const journeyBody = `{"journeyId":"default","redirectUrl":%q,"externalId":%q,
 "settings":[{"key":"JOURNEY_RULES","value":["rule1","rule2"]}],"tags":{"environment":"production","clientId":"client-123"}}`

func (s *server) ticketRequest(ctx context.Context) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+ticketPath, strings.NewReader(ticketBody))
	req.Header.Set("Authorization", "Bearer "+s.demo.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(consentflow.IdempotencyHeader, uuid.NewString())
	req.Header.Set("x-correlation-id", uuid.NewString())
	return req
}

// brt is Brasília time, the payment date's zone.
var brt = time.FixedZone("BRT", -3*3600)

// paymentConsentData is consentrun's consent: an immediate Pix payment for
// today in Brasília from the sandbox's demo customer.
func paymentConsentData() any {
	today := time.Now().In(brt).Format(time.DateOnly)
	return json.RawMessage(`{
	  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
	  "creditor":{"personType":"PESSOA_NATURAL","cpfCnpj":"12345678909","name":"Marco Antonio de Brito"},
	  "payment":{"type":"PIX","date":"` + today + `","currency":"BRL","amount":"100.12",
	    "details":{"localInstrument":"DICT","proxy":"12345678909",
	      "creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}}}`)
}

// recurringConsentData is the recurring tests' sweeping consent (the demo
// customer sweeping into his own account elsewhere), valid from tomorrow
// for a year.
func recurringConsentData() any {
	now := time.Now().UTC()
	return json.RawMessage(`{
	  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
	  "creditors":[{"personType":"PESSOA_NATURAL","cpfCnpj":"47742663023","name":"Marco Antonio de Brito"}],
	  "expirationDateTime":"` + now.AddDate(1, 0, 0).Format("2006-01-02T15:04:05Z") + `",
	  "additionalInformation":"Transferências Inteligentes",
	  "recurringConfiguration":{"sweeping":{
	    "totalAllowedAmount":"50000.00","transactionLimit":"1000.00",
	    "periodicLimits":{"day":{"quantityLimit":2,"transactionLimit":"1500.00"},"week":{"quantityLimit":10},
	      "month":{"transactionLimit":"20000.00"},"year":{"quantityLimit":100,"transactionLimit":"50000.00"}},
	    "startDateTime":"` + now.AddDate(0, 0, 1).Format("2006-01-02T15:04:05Z") + `"}}}`)
}

// partner is the FAPI client of the signed paths: a partner application
// with a PS256 key registered as its JWKS, created with 'ponte apps create'
// as an operator would.
type partner struct {
	orgID, clientID, token string
	signer                 jose.Signer
}

const partnerKID = "pgrun"

// addPartner registers the partner application on s (once) and takes its
// client_credentials token.
func (s *server) addPartner(ctx context.Context) error {
	if s.partner != nil {
		return nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: partnerKID, Algorithm: string(jose.PS256), Use: "sig"}}})
	if err != nil {
		return err
	}
	jwksFile := filepath.Join(s.dataDir, "pgrun-partner.jwks")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		return err
	}
	p := &partner{orgID: uuid.NewString()}
	out, err := s.cli(ctx, "apps", "create", "--name", "pgrun partner", "--company-key", "PGRUN", "--scopes", "payments,recurring-payments",
		"--jwks", jwksFile, "--org-id", p.orgID)
	if err != nil {
		return err
	}
	var secret string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "client_id:"); ok {
			p.clientID = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "client_secret:"); ok {
			secret = strings.TrimSpace(v)
		}
	}
	if p.clientID == "" || secret == "" {
		return fmt.Errorf("ponte apps create printed no client_id and client_secret:\n%s", out)
	}
	if p.token, err = s.clientToken(ctx, p.clientID, secret); err != nil {
		return err
	}
	p.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), partnerKID))
	if err != nil {
		return err
	}
	s.partner = p
	return nil
}

// signedRequests signs n bodies for route before the slice (signing is the
// partner's cost, not Ponte's; iat must stay within 60 s of Ponte's clock,
// so they are signed per slice), each with a fresh jti.
func (s *server) signedRequests(ctx context.Context, route string, n int, data func() any) (func(context.Context) *http.Request, error) {
	aud := s.url + route
	bodies := make([][]byte, n)
	err := parallel(ctx, n, runtime.GOMAXPROCS(0), func(i int) error {
		claims := map[string]any{"aud": aud, "iss": s.partner.orgID, "iat": time.Now().Unix(), "jti": uuid.NewString(), "data": data()}
		payload, err := json.Marshal(claims)
		if err != nil {
			return err
		}
		jws, err := s.partner.signer.Sign(payload)
		if err != nil {
			return err
		}
		c, err := jws.CompactSerialize()
		bodies[i] = []byte(c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sign bodies: %w", err)
	}
	var next atomic.Int64
	return func(ctx context.Context) *http.Request {
		i := next.Add(1) - 1
		if i >= int64(len(bodies)) {
			return nil
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, aud, bytes.NewReader(bodies[i]))
		req.Header.Set("Content-Type", payments.MediaTypeJWT)
		req.Header.Set("Authorization", "Bearer "+s.partner.token)
		req.Header.Set("x-fapi-interaction-id", uuid.NewString())
		req.Header.Set("x-idempotency-key", uuid.NewString())
		return req
	}, nil
}

// pcmSteps are seed 002's six report bodies, as pcmrun sends them: each
// consent gets all six, so every report stores a new event.
var pcmSteps = func() []string {
	const dev = `"platform":"BROWSER","osVersion":"20.04","os":"LINUX"`
	return []string{
		`{"step":"REDIRECT_TO_SERVER","data":{"uriAuthorizationEndpoint":"https://api.banco.com.br/open-banking/api/v1/resource",` + dev + `}}`,
		`{"step":"REDIRECT_TARGET","data":{"uriAuthorizationEndpoint":"https://api.banco.com.br/open-banking/api/v1/resource",` + dev + `,"type":"AWAITING_HANDOFF"}}`,
		`{"step":"AUTHENTICATED","data":{` + dev + `}}`,
		`{"step":"REDIRECT_TO_CLIENT","data":{"uri_callback":"https://api.banco.com.br/open-banking/api/v1/resource",` + dev + `,"type":"AUTHORISED"}}`,
		`{"step":"REDIRECT_TARGET_WITH_ERRORS","data":{` + dev + `,"error":"access_denied"}}`,
		`{"step":"REDIRECT_TARGET_WITHOUT_ERRORS","data":{` + dev + `}}`,
	}
}()

// seedAuthorizations are consents the demo application initiated through
// Ponte at a brand: authorization requests written directly, in one
// statement, outside the measured slices (as pcmrun does), so that the
// reports' ownership check finds them.
const seedAuthorizations = `INSERT INTO itp_authorizations (id, state_hash, application_id, kind, brand_id, consent_id,
	consent_path, scope, nonce, code_verifier, redirect_uri, authorization_url, status, created_at, updated_at, expires_at)
	WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
	SELECT CAST($2 AS TEXT) || '-' || i, CAST($2 AS TEXT) || '-s-' || i, CAST($3 AS TEXT), 'PAYMENT_INITIATION', 'pgrun-brand',
	'urn:pgrun:' || CAST($2 AS TEXT) || '-' || i, '/c', 'openid payments', 'n', 'v', 'https://f.example/cb', 'https://b.example/authorize',
	'PENDING', CAST($4 AS BIGINT), CAST($4 AS BIGINT), CAST($5 AS BIGINT) FROM n`

// pcmReports seeds n/6 consents and returns their six reports each.
func (s *server) pcmReports(ctx context.Context, n int) (func(context.Context) *http.Request, error) {
	consents := (n + len(pcmSteps) - 1) / len(pcmSteps)
	batch := uuid.NewString()
	now := time.Now()
	if _, err := s.db.ExecContext(ctx, seedAuthorizations, consents, batch, s.demo.appID, now.UnixMilli(), now.Add(time.Hour).UnixMilli()); err != nil {
		return nil, fmt.Errorf("seed consents for the PCM reports: %w", err)
	}
	var next atomic.Int64
	return func(ctx context.Context) *http.Request {
		i := next.Add(1) - 1
		if i >= int64(consents*len(pcmSteps)) {
			return nil
		}
		id := fmt.Sprintf("urn:pgrun:%s-%d", batch, i/int64(len(pcmSteps))+1)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/api/journey/v1/consents/"+url.PathEscape(id)+"/report",
			strings.NewReader(pcmSteps[i%int64(len(pcmSteps))]))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.demo.token)
		return req
	}, nil
}

// webviews creates n tickets through the API before the slice (tickets live
// 60 s: one slice's worth at a time), and returns their redemptions.
func (s *server) webviews(ctx context.Context, n int) (func(context.Context) *http.Request, error) {
	tickets := make([]string, n)
	err := parallel(ctx, n, 16, func(i int) error {
		resp, err := s.client.Do(s.ticketRequest(ctx))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var t struct {
			TicketID string `json:"ticketId"`
		}
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &t) != nil || t.TicketID == "" {
			return fmt.Errorf("ticket: %s: %s", resp.Status, b)
		}
		tickets[i] = t.TicketID
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create tickets for the WebView: %w", err)
	}
	var next atomic.Int64
	return func(ctx context.Context) *http.Request {
		i := next.Add(1) - 1
		if i >= int64(len(tickets)) {
			return nil
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+consentflow.PathWebView+"?ticket="+url.QueryEscape(tickets[i]), nil)
		return req
	}, nil
}

// parallel runs f(0) … f(n-1) on workers goroutines and returns the first
// error (the rest of the work stops soon after one).
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := f(int(i)); err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}
