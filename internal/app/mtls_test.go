package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// testPKI is a CA, a server certificate for 127.0.0.1 and two client
// certificates, all generated for the test and written as PEM files.
type testPKI struct {
	caFile, serverCert, serverKey string
	roots                         *x509.CertPool
	clientA, clientB              tls.Certificate
	stranger                      tls.Certificate // issued by another CA
	ca                            *x509.Certificate
	caKey                         *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t, "Ponte test CA")
	p := &testPKI{caFile: filepath.Join(dir, "ca.pem"), serverCert: filepath.Join(dir, "server.pem"),
		serverKey: filepath.Join(dir, "server-key.pem"), roots: x509.NewCertPool(), ca: ca, caKey: caKey}
	p.roots.AddCert(ca)
	writePEM(t, p.caFile, "CERTIFICATE", ca.Raw)
	// FAPI-BR's TLS 1.2 suites are ECDHE_RSA: the server key is RSA.
	serverKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	server := issue(t, ca, caKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &serverKey.PublicKey)
	writePEM(t, p.serverCert, "CERTIFICATE", server.Raw)
	der, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.serverKey, "PRIVATE KEY", der)
	p.clientA = clientCert(t, ca, caKey, "initiator-a")
	p.clientB = clientCert(t, ca, caKey, "initiator-b")
	other, otherKey := newCA(t, "Someone else's CA")
	p.stranger = clientCert(t, other, otherKey, "stranger")
	return p
}

// serial numbers the test certificates; tests issue them in parallel.
var serial atomic.Int64

func issue(t *testing.T, parent *x509.Certificate, parentKey any, tmpl *x509.Certificate, pub any) *x509.Certificate {
	t.Helper()
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if tmpl.KeyUsage == 0 {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return issue(t, nil, key, &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, &key.PublicKey), key
}

func clientCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := issue(t, ca, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, &key.PublicKey)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func thumbprint(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// served is the real app behind App.Serve on a loopback listener.
type served struct {
	url string
	app *app.App
}

// serve starts Ponte with cfg's TLS settings on 127.0.0.1 through App.Serve,
// as `ponte serve` does, and stops it when the test ends.
func serve(t *testing.T, dbURL string, tlsCfg config.Config) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := tlsCfg
	cfg.Addr, cfg.DatabaseURL, cfg.DataDir, cfg.Mode = ln.Addr().String(), dbURL, dir, config.Sandbox
	cfg.SigningKeyFile = filepath.Join(dir, "signing-key.pem")
	cfg.TokenTTL, cfg.ShutdownTimeout, cfg.SweepInterval = 300*time.Second, 5*time.Second, time.Hour
	if err := cfg.Finish(); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	logs := &apptest.LogBuffer{}
	a, err := app.New(context.Background(), cfg, app.NewLogger(logs, "json"), app.WithClock(clock.NewFake(apptest.Epoch)))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.Close()
	})
	return &served{url: cfg.PublicURL, app: a}
}

// client talks to s over TLS trusting roots, presenting cert when given.
func tlsClient(roots *x509.CertPool, cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: roots}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func send(t *testing.T, c *http.Client, method, u string, header map[string]string, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// demoToken gets a client_credentials token for the demo application.
func demoToken(t *testing.T, c *http.Client, s *served) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"payments openfinance.ticket.write"}}
	r := send(t, c, "POST", s.url+"/oauth/token", map[string]string{
		"Content-Type":  "application/x-www-form-urlencoded",
		"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(s.app.Demo.ClientID)+":"+url.QueryEscape(s.app.DemoSecret))),
	}, form.Encode())
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil || out.AccessToken == "" {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	return out.AccessToken
}

// cnf returns the x5t#S256 confirmation of a JWT access token ("" if none).
func cnf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Cnf *struct {
			X5tS256 string `json:"x5t#S256"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Cnf == nil {
		return ""
	}
	return claims.Cnf.X5tS256
}

func consentHeaders(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json",
		"x-fapi-interaction-id": uuid.NewString(), "x-idempotency-key": uuid.NewString()}
}

// ofbError decodes an Open Finance error body, failing on any other shape.
func ofbError(t *testing.T, r reply) (code, detail string) {
	t.Helper()
	var body struct {
		Errors []struct{ Code, Title, Detail string } `json:"errors"`
		Meta   struct {
			RequestDateTime string `json:"requestDateTime"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Errors) != 1 || body.Meta.RequestDateTime == "" {
		t.Fatalf("not an Open Finance error (%v): %s", err, r.body)
	}
	if uuid.Validate(r.header.Get("x-fapi-interaction-id")) != nil {
		t.Errorf("x-fapi-interaction-id %q", r.header.Get("x-fapi-interaction-id"))
	}
	return body.Errors[0].Code, body.Errors[0].Detail
}

func oauthErrorCode(t *testing.T, r reply) string {
	t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Error == "" {
		t.Fatalf("not an RFC 6749 error (%v): %s", err, r.body)
	}
	return body.Error
}

// TestMutualTLS runs Ponte with --tls-cert, --tls-key and --client-ca and
// checks which routes need a client certificate and that tokens obtained
// with one are bound to it.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := serve(t, e.URL(t), config.Config{TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey, ClientCAFile: pki.caFile})
			if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
				t.Fatalf("public URL %s, want https", s.url)
			}
			noCert := tlsClient(pki.roots, nil)
			withA := tlsClient(pki.roots, &pki.clientA)
			withB := tlsClient(pki.roots, &pki.clientB)
			consents := s.url + "/open-banking/payments/v4/consents"

			// User-facing and operational pages need no certificate.
			if r := send(t, noCert, "GET", s.url+"/healthz", nil, ""); r.status != 200 {
				t.Errorf("healthz without certificate: %d %s", r.status, r.body)
			}
			if r := send(t, noCert, "GET", s.url+"/openfinance/consent-flow/webview?ticket=nope", nil, ""); r.status == 401 || r.status >= 500 {
				t.Errorf("WebView without certificate: %d", r.status)
			}
			if r := send(t, noCert, "GET", s.url+"/static/", nil, ""); r.status == 401 {
				t.Errorf("static without certificate: %d", r.status)
			}

			// A token obtained with certificate A is bound to it.
			tokA := demoToken(t, withA, s)
			if got := cnf(t, tokA); got != thumbprint(pki.clientA) {
				t.Fatalf("cnf.x5t#S256 = %q, want %q", got, thumbprint(pki.clientA))
			}
			r := send(t, withA, "POST", consents, consentHeaders(tokA), consentBody)
			if r.status != http.StatusCreated {
				t.Fatalf("consent with certificate A: %d %s", r.status, r.body)
			}
			// ... and refused with certificate B or none.
			r = send(t, withB, "POST", consents, consentHeaders(tokA), consentBody)
			if code, detail := ofbError(t, r); r.status != 401 || code != "UNAUTHORIZED" || !strings.Contains(detail, "invalid_token") {
				t.Errorf("bound token with certificate B: %d %s", r.status, r.body)
			}
			if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
			r = send(t, noCert, "POST", consents, consentHeaders(tokA), consentBody)
			if code, _ := ofbError(t, r); r.status != 401 || code != "UNAUTHORIZED" {
				t.Errorf("consent without certificate: %d %s", r.status, r.body)
			}
			r = send(t, noCert, "GET", consents+"/urn:ponte:"+uuid.NewString(), consentHeaders(tokA), "")
			if r.status != 401 {
				t.Errorf("GET consent without certificate: %d %s", r.status, r.body)
			}
			// The binding holds on partner routes too, where a certificate is optional.
			ticket := `{"requestUri":"r","clientId":"c","documentNumber":"47742663023"}`
			bankly := map[string]string{"Authorization": "Bearer " + tokA, "Content-Type": "application/json"}
			if r := send(t, noCert, "POST", s.url+"/openfinance/consent-flow/ticket", bankly, ticket); r.status != 401 {
				t.Errorf("bound token on a partner route without its certificate: %d %s", r.status, r.body)
			}
			if r := send(t, withA, "POST", s.url+"/openfinance/consent-flow/ticket", bankly, ticket); r.status != 201 {
				t.Errorf("bound token on a partner route with its certificate: %d %s", r.status, r.body)
			}

			// client_credentials with a secret needs no certificate; the
			// token is unbound and works as before, on a partner route
			// without a certificate, and on an Open Finance route with one.
			plain := demoToken(t, noCert, s)
			if got := cnf(t, plain); got != "" {
				t.Errorf("token requested without a certificate has cnf %q", got)
			}
			bankly["Authorization"] = "Bearer " + plain
			if r := send(t, noCert, "POST", s.url+"/openfinance/consent-flow/ticket", bankly, ticket); r.status != 201 {
				t.Errorf("unbound token on a partner route: %d %s", r.status, r.body)
			}
			if r := send(t, withB, "POST", consents, consentHeaders(plain), consentBody); r.status != 201 {
				t.Errorf("unbound token with a certificate: %d %s", r.status, r.body)
			}

			// The authorization server's Open Finance endpoints.
			form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
			for _, body := range []string{
				"grant_type=authorization_code&code=x&redirect_uri=https%3A%2F%2Fexample.com",
				"grant_type=refresh_token&refresh_token=x",
				"grant_type=client_credentials&client_id=x&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=x",
			} {
				r := send(t, noCert, "POST", s.url+"/oauth/token", form, body)
				if r.status != 401 || oauthErrorCode(t, r) != "invalid_client" {
					t.Errorf("token %s without certificate: %d %s", body, r.status, r.body)
				}
			}
			in := oidctest.NewInitiator(t, s.app.AuthServer.Storage(), s.url, "initiator-a")
			req := oidctest.NewRequest("urn:ponte:" + uuid.NewString())
			resp := in.PAR(t, noCert, s.url, req)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if r := (reply{resp.StatusCode, resp.Header, b}); r.status != 401 || oauthErrorCode(t, r) != "invalid_client" {
				t.Errorf("PAR without certificate: %d %s", r.status, r.body)
			}
			resp = in.PAR(t, withA, s.url, req)
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 401 {
				t.Errorf("PAR with certificate A: %d %s", resp.StatusCode, b)
			}

			// Discovery advertises certificate-bound tokens and the mTLS aliases.
			var disc struct {
				Bound   bool `json:"tls_client_certificate_bound_access_tokens"`
				Aliases struct {
					Token string `json:"token_endpoint"`
					PAR   string `json:"pushed_authorization_request_endpoint"`
				} `json:"mtls_endpoint_aliases"`
			}
			r = send(t, noCert, "GET", s.url+"/.well-known/openid-configuration", nil, "")
			if err := json.Unmarshal(r.body, &disc); err != nil || !disc.Bound ||
				disc.Aliases.Token != s.url+"/oauth/token" || disc.Aliases.PAR != s.url+"/oauth/par" {
				t.Errorf("discovery: %d %s", r.status, r.body)
			}

			// Certificates of an unknown CA fail the handshake. (Go's client
			// would not offer one the server's CA list excludes: force it.)
			stranger := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs: pki.roots,
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return &pki.stranger, nil
				},
			}}}
			if _, err := stranger.Get(s.url + "/healthz"); err == nil {
				t.Error("a certificate of an unknown CA was accepted")
			}
		})
	}
}

// TestTLSProtocol checks the handshake rules: TLS 1.2 with FAPI-BR suites
// only, nothing older, no session tickets.
func TestTLSProtocol(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	s := serve(t, "", config.Config{TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey, ClientCAFile: pki.caFile})
	addr := strings.TrimPrefix(s.url, "https://")
	tests := []struct {
		name    string
		cfg     *tls.Config
		wantErr bool
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, false},
		{"TLS 1.2 FAPI suite", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}, false},
		{"TLS 1.2 other suite", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}}, true},
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.RootCAs = pki.roots
			conn, err := tls.Dial("tcp", addr, tt.cfg)
			if tt.wantErr {
				if err == nil {
					conn.Close()
					t.Fatal("handshake succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			st := conn.ConnectionState()
			if st.Version == tls.VersionTLS12 && !slices.Contains(app.FAPICipherSuites, st.CipherSuite) {
				t.Errorf("cipher suite %s", tls.CipherSuiteName(st.CipherSuite))
			}
		})
	}
}

// TestHTTPSWithoutClientCA serves HTTPS without asking for certificates:
// no route requires one and tokens stay unbound.
func TestHTTPSWithoutClientCA(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	s := serve(t, "", config.Config{TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey})
	c := tlsClient(pki.roots, &pki.clientA) // offered, never asked for
	tok := demoToken(t, c, s)
	if got := cnf(t, tok); got != "" {
		t.Errorf("cnf %q without --client-ca", got)
	}
	if r := send(t, c, "POST", s.url+"/open-banking/payments/v4/consents", consentHeaders(tok), consentBody); r.status != 201 {
		t.Errorf("consent: %d %s", r.status, r.body)
	}
	r := send(t, c, "GET", s.url+"/.well-known/openid-configuration", nil, "")
	if strings.Contains(string(r.body), "mtls_endpoint_aliases") {
		t.Errorf("discovery advertises mTLS without --client-ca: %s", r.body)
	}
}

// TestPlainHTTPUnchanged: without TLS flags Ponte serves plain HTTP, no route
// asks for a certificate and discovery advertises no mTLS.
func TestPlainHTTPUnchanged(t *testing.T) {
	t.Parallel()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := serve(t, e.URL(t), config.Config{})
			if !strings.HasPrefix(s.url, "http://127.0.0.1:") {
				t.Fatalf("public URL %s", s.url)
			}
			c := &http.Client{Timeout: 10 * time.Second}
			tok := demoToken(t, c, s)
			if got := cnf(t, tok); got != "" {
				t.Errorf("cnf %q over plain HTTP", got)
			}
			if r := send(t, c, "POST", s.url+"/open-banking/payments/v4/consents", consentHeaders(tok), consentBody); r.status != 201 {
				t.Errorf("consent: %d %s", r.status, r.body)
			}
			r := send(t, c, "POST", s.url+"/oauth/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
				"grant_type=authorization_code&code=x")
			if r.status == 401 && strings.Contains(string(r.body), "client certificate") {
				t.Errorf("plain HTTP asks for a certificate: %s", r.body)
			}
			r = send(t, c, "GET", s.url+"/.well-known/openid-configuration", nil, "")
			if strings.Contains(string(r.body), "mtls_endpoint_aliases") || strings.Contains(string(r.body), `"tls_client_certificate_bound_access_tokens":true`) {
				t.Errorf("discovery advertises mTLS over plain HTTP: %s", r.body)
			}
			if conn, err := tls.Dial("tcp", strings.TrimPrefix(s.url, "http://"), &tls.Config{InsecureSkipVerify: true}); err == nil {
				conn.Close()
				t.Error("TLS handshake on a plain HTTP server")
			}
		})
	}
}
