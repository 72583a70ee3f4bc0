package app_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/oidc"
	"github.com/ponte-ofb/ponte/internal/oidc/oidctest"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// TestOFWebhookOverMutualTLS: with --transport-cert (and --transport-ca
// trusting the initiator's server), the holder's notification reaches an
// initiator's HTTPS server that demands a client certificate, presenting
// Ponte's transport certificate; the change is the initiator's own PATCH
// rejecting its recurring consent, through the real mutual-TLS stack.
func TestOFWebhookOverMutualTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dir := t.TempDir()
	transportCert, transportKey := filepath.Join(dir, "transport.pem"), filepath.Join(dir, "transport-key.pem")
	transport := clientCert(t, pki.ca, pki.caKey, "ponte-transport")
	writePEM(t, transportCert, "CERTIFICATE", transport.Certificate[0])
	der, err := x509.MarshalPKCS8PrivateKey(transport.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, transportKey, "PRIVATE KEY", der)
	serverCert, err := tls.LoadX509KeyPair(pki.serverCert, pki.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			type got struct{ path, cn, interaction, body string }
			var (
				mu   sync.Mutex
				reqs []got
			)
			rc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				reqs = append(reqs, got{r.URL.Path, r.TLS.VerifiedChains[0][0].Subject.CommonName, r.Header.Get("x-webhook-interaction-id"), string(body)})
				mu.Unlock()
				w.Header().Set("x-webhook-interaction-id", r.Header.Get("x-webhook-interaction-id"))
				w.WriteHeader(http.StatusAccepted)
			}))
			rc.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.roots}
			rc.StartTLS()
			t.Cleanup(rc.Close)

			s := serve(t, e.URL(t), config.Config{TLSCertFile: pki.serverCert, TLSKeyFile: pki.serverKey, ClientCAFile: pki.caFile,
				TransportCertFile: transportCert, TransportKeyFile: transportKey, TransportCAFile: pki.caFile})
			storage := s.app.AuthServer.Storage()
			in := oidctest.NewInitiator(t, storage, s.url, s.app.Demo.ClientID)
			jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &in.Key.PublicKey, KeyID: in.KeyID, Algorithm: string(jose.PS256), Use: "sig"}}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := storage.RegisterInitiator(t.Context(), oidc.Initiator{ClientID: in.ClientID, Name: "Test initiator", JWKS: jwks,
				RedirectURIs: []string{in.RedirectURI}, WebhookURIs: []string{rc.URL}}); err != nil {
				t.Fatal(err)
			}

			c := tlsClient(pki.roots, &pki.clientA)
			// Ponte's own receiving routes, like every /open-banking/ route
			// under mutual TLS, need a verified client certificate.
			hook := s.url + "/open-banking/webhook/v1/payments/v4/pix/payments/p-1"
			hookHeaders := map[string]string{"Content-Type": "application/json", "x-webhook-interaction-id": "0b1c2d3e-4f50-4617-8283-949596979899"}
			if r := send(t, tlsClient(pki.roots, nil), "POST", hook, hookHeaders, `{"data":{"timestamp":"2024-10-15T18:55:15Z"}}`); r.status != 401 {
				t.Errorf("notification without a client certificate: %d %s", r.status, r.body)
			}
			if r := send(t, c, "POST", hook, hookHeaders, `{"data":{"timestamp":"2024-10-15T18:55:15Z"}}`); r.status != 202 ||
				r.header.Get("x-webhook-interaction-id") != hookHeaders["x-webhook-interaction-id"] {
				t.Errorf("notification with a client certificate: %d %s", r.status, r.body)
			}
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {recurring.Scope}}
			r := send(t, c, "POST", s.url+"/oauth/token", map[string]string{
				"Content-Type":  "application/x-www-form-urlencoded",
				"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(s.app.Demo.ClientID)+":"+url.QueryEscape(s.app.DemoSecret))),
			}, form.Encode())
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if r.status != 200 || json.Unmarshal(r.body, &tok) != nil {
				t.Fatalf("token: %d %s", r.status, r.body)
			}
			r = send(t, c, "POST", s.url+recurring.ConsentsPath, consentHeaders(tok.AccessToken), sweepingBody)
			var created struct {
				Data struct {
					RecurringConsentID string `json:"recurringConsentId"`
				} `json:"data"`
			}
			if r.status != 201 || json.Unmarshal(r.body, &created) != nil {
				t.Fatalf("recurring consent: %d %s", r.status, r.body)
			}
			id := created.Data.RecurringConsentID
			r = send(t, c, "PATCH", s.url+recurring.ConsentsPath+"/"+id, consentHeaders(tok.AccessToken),
				`{"data":{"status":"REJECTED","rejection":{"rejectedBy":"INICIADORA","rejectedFrom":"INICIADORA","reason":{"code":"NAO_INFORMADO","detail":"Cancelado na iniciadora."}}}}`)
			if r.status != 200 {
				t.Fatalf("reject: %d %s", r.status, r.body)
			}

			// Ponte's job workers run in the background (App.Serve): wait for the POST.
			deadline := time.Now().Add(15 * time.Second)
			for {
				mu.Lock()
				n := len(reqs)
				mu.Unlock()
				if n > 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reqs) != 1 {
				t.Fatalf("the initiator's server got %d notifications, want 1", len(reqs))
			}
			g := reqs[0]
			if g.path != "/open-banking/webhook/v1/automatic-payments/v2/recurring-consents/"+id || g.cn != "ponte-transport" ||
				g.body != `{"data":{"timestamp":"2024-10-15T18:55:15Z"}}` || uuid.Validate(g.interaction) != nil {
				t.Errorf("notification = %+v", g)
			}
		})
	}
}
