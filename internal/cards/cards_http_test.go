package cards_test

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/cards/applepay"
	"github.com/ponte-ofb/ponte/internal/cards/mastercard"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func TestSandboxCards(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "")
		tests := []struct {
			proxy, status string
		}{
			{activeProxy, "ACTIVE"},
			{creatingProxy, "CREATING"},
		}
		for _, tt := range tests {
			r := s.Do(t, "GET", "/admin/v1/cards/"+tt.proxy, authz(tok), "")
			if r.Status != 200 {
				t.Fatalf("%s: %d %s", tt.proxy, r.Status, r.Body)
			}
			var c cardJSON
			decodeStrict(t, "card", r.Body, &c)
			if c.Status != tt.status || c.Brand != "Mastercard" || c.Name != holderName || c.PhoneNumber != phoneNumber ||
				c.ExpiryMonth != 12 || c.ExpiryYear != apptest.Epoch.Year()+4 || string(c.Address) != seedAddress {
				t.Errorf("%s: %s", tt.proxy, r.Body)
			}
			if tt.proxy == activeProxy && c.LastFourDigits != "1471" {
				t.Errorf("%s: lastFourDigits %q, want 1471", tt.proxy, c.LastFourDigits)
			}
		}
		// The active card really holds 5204247750001471: a Google Pay payload
		// decrypted with the sandbox key says so.
		_, plain := decryptGoogle(t, s, decodeTokenResponse(t, s.Do(t, "POST", tokenPath(activeProxy, "GooglePay"), v1(tok), "")).Data)
		if plain.CardAccountData.AccountNumber != sandboxPAN {
			t.Errorf("sandbox active card number ends %q", plain.CardAccountData.AccountNumber[12:])
		}
		var list struct{ Data []cardJSON }
		s.Do(t, "GET", "/admin/v1/cards", authz(tok), "").JSON(t, &list)
		var proxies []string
		for _, c := range list.Data {
			proxies = append(proxies, c.Proxy)
		}
		if diff := cmp.Diff([]string{activeProxy, creatingProxy}, proxies); diff != "" {
			t.Errorf("demo application's cards (-want +got):\n%s", diff)
		}

		// A restart keeps them and creates no duplicates.
		s = s.Restart(t)
		var again struct{ Data []cardJSON }
		s.Do(t, "GET", "/admin/v1/cards", authz(s.Token(t, "")), "").JSON(t, &again)
		if len(again.Data) != 2 {
			t.Errorf("after restart: %d cards, want 2", len(again.Data))
		}
	})
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "")
		createCard(t, s, tok, "demo-blocked", freshPAN(t), "BLOCKED")
		createCard(t, s, tok, "demo-cancelled", freshPAN(t), "CANCELLED")
		other := otherApp(t, s, "OTHER")
		createCard(t, s, other, "other-active", freshPAN(t), "ACTIVE")

		d := newDevice(t, s, s.Clock.Now())
		nonce, sig := randomHex(t, 16), randomHex(t, 64)
		good := appleBody(nonce, sig, d.certPEM)
		only := func(fields map[string]string) string {
			b, _ := json.Marshal(fields)
			return string(b)
		}
		readOnly := s.Token(t, "card.admin.read card.pci.wallet.read")
		// 2 MiB of a well-formed object: refused for its size alone.
		bigBody := `{"pad":"` + strings.Repeat("x", 2<<20) + `"}`

		tests := []struct {
			name          string
			proxy, wallet string
			brand         string
			header        map[string]string
			body          string
			status        int
			code, message string   // for non-400 errors
			fields        []string // for 400s, in order
		}{
			{name: "unknown card, GooglePay", proxy: "no-such-card", wallet: "GooglePay", status: 404, code: "002", message: "Card Not Found"},
			{name: "unknown card, ApplePay", proxy: "no-such-card", wallet: "ApplePay", body: good, status: 404, code: "002", message: "Card Not Found"},
			{name: "another application's card, GooglePay", proxy: "other-active", wallet: "GooglePay", status: 404, code: "002", message: "Card Not Found"},
			{name: "another application's card, ApplePay", proxy: "other-active", wallet: "ApplePay", body: good, status: 404, code: "002", message: "Card Not Found"},
			{name: "card being created, GooglePay", proxy: creatingProxy, wallet: "GooglePay", status: 409, code: "029", message: "The card is in the process of being created"},
			{name: "card being created, ApplePay", proxy: creatingProxy, wallet: "ApplePay", body: good, status: 409, code: "029", message: "The card is in the process of being created"},
			{name: "blocked card", proxy: "demo-blocked", wallet: "GooglePay", status: 422, code: "CARD_BLOCKED", message: "The card is blocked"},
			{name: "cancelled card", proxy: "demo-cancelled", wallet: "ApplePay", body: good, status: 422, code: "CARD_CANCELLED", message: "The card is cancelled"},

			{name: "api-version missing", proxy: activeProxy, wallet: "GooglePay", header: authz(tok), status: 400, fields: []string{"api-version"}},
			{name: "api-version 2.0", proxy: activeProxy, wallet: "GooglePay", header: authz(tok, "api-version", "2.0"), status: 400, fields: []string{"api-version"}},
			{name: "api-version missing on an unknown card", proxy: "no-such-card", wallet: "GooglePay", header: authz(tok), status: 400, fields: []string{"api-version"}},
			{name: "wallet SamsungPay", proxy: activeProxy, wallet: "SamsungPay", status: 400, fields: []string{"wallet"}},
			{name: "wallet in lowercase", proxy: activeProxy, wallet: "applepay", status: 400, fields: []string{"wallet"}},
			{name: "brand Visa", proxy: activeProxy, wallet: "GooglePay", brand: "Visa", status: 400, fields: []string{"brand"}},
			{name: "every path problem at once", proxy: activeProxy, wallet: "SamsungPay", brand: "Visa", header: authz(tok), status: 400, fields: []string{"api-version", "wallet", "brand"}},

			{name: "ApplePay without a body", proxy: activeProxy, wallet: "ApplePay", status: 400, fields: []string{"nonce", "nonceSignature", "appleCertificate"}},
			{name: "ApplePay with an empty object", proxy: activeProxy, wallet: "ApplePay", body: `{}`, status: 400, fields: []string{"nonce", "nonceSignature", "appleCertificate"}},
			{name: "ApplePay with nulls", proxy: activeProxy, wallet: "ApplePay", body: `{"nonce":null,"nonceSignature":null,"appleCertificate":null}`, status: 400, fields: []string{"nonce", "nonceSignature", "appleCertificate"}},
			{name: "nonce missing", proxy: activeProxy, wallet: "ApplePay", body: only(map[string]string{"nonceSignature": sig, "appleCertificate": d.certPEM}), status: 400, fields: []string{"nonce"}},
			{name: "nonceSignature missing", proxy: activeProxy, wallet: "ApplePay", body: only(map[string]string{"nonce": nonce, "appleCertificate": d.certPEM}), status: 400, fields: []string{"nonceSignature"}},
			{name: "appleCertificate missing", proxy: activeProxy, wallet: "ApplePay", body: only(map[string]string{"nonce": nonce, "nonceSignature": sig}), status: 400, fields: []string{"appleCertificate"}},
			{name: "nonce not hex", proxy: activeProxy, wallet: "ApplePay", body: appleBody("not-hex!", sig, d.certPEM), status: 400, fields: []string{"nonce"}},
			{name: "nonce odd length", proxy: activeProxy, wallet: "ApplePay", body: appleBody("abc", sig, d.certPEM), status: 400, fields: []string{"nonce"}},
			{name: "nonce empty", proxy: activeProxy, wallet: "ApplePay", body: appleBody("", sig, d.certPEM), status: 400, fields: []string{"nonce"}},
			{name: "nonceSignature not hex", proxy: activeProxy, wallet: "ApplePay", body: appleBody(nonce, "zz"+sig, d.certPEM), status: 400, fields: []string{"nonceSignature"}},
			{name: "appleCertificate garbage", proxy: activeProxy, wallet: "ApplePay", body: appleBody(nonce, sig, "not a certificate"), status: 400, fields: []string{"appleCertificate"}},
			{name: "appleCertificate bad PEM body", proxy: activeProxy, wallet: "ApplePay", body: appleBody(nonce, sig, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), status: 400, fields: []string{"appleCertificate"}},
			{name: "appleCertificate a key, not a certificate", proxy: activeProxy, wallet: "ApplePay", body: appleBody(nonce, sig, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), status: 400, fields: []string{"appleCertificate"}},
			{name: "every body field malformed", proxy: activeProxy, wallet: "ApplePay", body: appleBody("xyz", "q", "garbage"), status: 400, fields: []string{"nonce", "nonceSignature", "appleCertificate"}},
			{name: "one field missing, the others malformed", proxy: activeProxy, wallet: "ApplePay", body: only(map[string]string{"nonceSignature": "q", "appleCertificate": "garbage"}), status: 400, fields: []string{"nonce", "nonceSignature", "appleCertificate"}},
			{name: "nonce missing and a garbage certificate", proxy: activeProxy, wallet: "ApplePay", body: only(map[string]string{"nonceSignature": sig, "appleCertificate": "garbage"}), status: 400, fields: []string{"nonce", "appleCertificate"}},
			{name: "wrong JSON types", proxy: activeProxy, wallet: "ApplePay", body: `{"nonce":12,"nonceSignature":true,"appleCertificate":["x"]}`, status: 400, fields: []string{"nonce", "nonceSignature", "appleCertificate"}},
			{name: "malformed JSON", proxy: activeProxy, wallet: "ApplePay", body: `{"nonce":`, status: 400, fields: []string{"body"}},
			{name: "header, path and body problems together", proxy: activeProxy, wallet: "ApplePay", brand: "Elo", header: authz(tok), body: `{}`, status: 400,
				fields: []string{"api-version", "brand", "nonce", "nonceSignature", "appleCertificate"}},

			{name: "GooglePay malformed JSON", proxy: activeProxy, wallet: "GooglePay", body: `{"nonce":`, status: 400, fields: []string{"body"}},
			{name: "GooglePay body not an object", proxy: activeProxy, wallet: "GooglePay", body: `["GooglePay"]`, status: 400, fields: []string{"body"}},
			{name: "GooglePay data after the object", proxy: activeProxy, wallet: "GooglePay", body: `{} {}`, status: 400, fields: []string{"body"}},
			{name: "GooglePay malformed body and api-version missing", proxy: activeProxy, wallet: "GooglePay", header: authz(tok), body: `nonce=1`, status: 400, fields: []string{"api-version", "body"}},
			{name: "GooglePay body over 1 MiB", proxy: activeProxy, wallet: "GooglePay", body: bigBody, status: 413, code: "PAYLOAD_TOO_LARGE"},
			{name: "ApplePay body over 1 MiB", proxy: activeProxy, wallet: "ApplePay", body: bigBody, status: 413, code: "PAYLOAD_TOO_LARGE"},
			{name: "GooglePay body not JSON", proxy: activeProxy, wallet: "GooglePay", header: authz(tok, "api-version", "1.0", "Content-Type", "text/plain"), body: `{}`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},

			{name: "scope missing", proxy: activeProxy, wallet: "GooglePay", header: authz(readOnly, "api-version", "1.0"), status: 403, code: "FORBIDDEN"},
			{name: "no token", proxy: activeProxy, wallet: "GooglePay", header: authz("", "api-version", "1.0"), status: 401, code: "UNAUTHORIZED"},
			{name: "garbage token", proxy: activeProxy, wallet: "GooglePay", header: authz("not-a-jwt", "api-version", "1.0"), status: 401, code: "UNAUTHORIZED"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				path := tokenPath(tt.proxy, tt.wallet)
				if tt.brand != "" {
					path = strings.TrimSuffix(path, "Mastercard") + tt.brand
				}
				h := tt.header
				if h == nil {
					h = v1(tok)
				}
				r := s.Do(t, "POST", path, h, tt.body)
				if r.Status != tt.status {
					t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
				}
				if tt.status == 400 {
					if diff := cmp.Diff(tt.fields, fieldsOf(t, r)); diff != "" {
						t.Errorf("offending fields (-want +got):\n%s\n%s", diff, r.Body)
					}
					return
				}
				errs := errorsOf(t, r)
				if len(errs) != 1 || errs[0].Code != tt.code || (tt.message != "" && errs[0].Message != tt.message) {
					t.Errorf("errors %+v, want one with code %q message %q", errs, tt.code, tt.message)
				}
			})
		}
	})
}

func TestApplePayEndToEnd(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "card.pci.token.create")
		d := newDevice(t, s, s.Clock.Now())
		nonce, sig := strings.ToUpper(randomHex(t, 16)), strings.ToUpper(randomHex(t, 72))
		r := s.Do(t, "POST", tokenPath(activeProxy, "ApplePay"), v1(tok), appleBody(nonce, sig, d.certPEM))
		resp := decodeTokenResponse(t, r)
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", got)
		}
		if resp.LastFourDigits != "1471" || resp.PhoneNumber != phoneNumber || string(resp.Address) != seedAddress {
			t.Errorf("lastFourDigits %q phoneNumber %q address %s, want 1471, %s, %s", resp.LastFourDigits, resp.PhoneNumber, resp.Address, phoneNumber, seedAddress)
		}
		p := decodeApplePayload(t, resp.Data)
		want := map[string]string{
			"primaryAccountNumber": sandboxPAN,
			"expiration":           fmt.Sprintf("12/%02d", sandboxExpiryYY),
			"name":                 holderName,
			"nonce":                strings.ToLower(nonce),
			"nonceSignature":       strings.ToLower(sig),
		}
		if diff := cmp.Diff(want, decryptApple(t, d.key, p)); diff != "" {
			t.Errorf("decrypted pass data (-want +got):\n%s", diff)
		}
		verifyTAV(t, s, p.ActivationData, sandboxPAN, fmt.Sprintf("12%02d", sandboxExpiryYY), s.Clock.Now())

		// Only the device that owns the certificate can read it.
		stranger := newDevice(t, s, s.Clock.Now())
		if _, err := openApple(stranger.key, p); err == nil {
			t.Error("another device's key decrypts the payload")
		}

		// Each payload has its own ephemeral key, also for the same device.
		r2 := s.Do(t, "POST", tokenPath(activeProxy, "ApplePay"), v1(tok), appleBody(randomHex(t, 16), sig, d.certPEM))
		p2 := decodeApplePayload(t, decodeTokenResponse(t, r2).Data)
		if string(p2.EphemeralPublicKey) == string(p.EphemeralPublicKey) {
			t.Error("ephemeral key reused across payloads")
		}
		decryptApple(t, d.key, p2)

		// A chain with the leaf first and the root after it is accepted too.
		root, _ := sandboxRoot(t, s)
		chain := d.certPEM + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}))
		r3 := s.Do(t, "POST", tokenPath(activeProxy, "ApplePay"), v1(tok), appleBody(randomHex(t, 16), sig, chain))
		decryptApple(t, d.key, decodeApplePayload(t, decodeTokenResponse(t, r3).Data))
	})
}

// leaf issues a certificate for pub signed by the sandbox root, shaped as the
// caller asks, and returns its PEM.
func leaf(t *testing.T, s *apptest.Server, pub any, usage x509.KeyUsage, marker bool) string {
	t.Helper()
	root, rootKey := sandboxRoot(t, s)
	now := s.Clock.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "test leaf"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              usage,
	}
	if marker {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 39}, Critical: true, Value: []byte{0x05, 0x00}}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, pub, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestAppleCertificateFailures(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "")
		now := s.Clock.Now()
		root, rootKey := sandboxRoot(t, s)
		issue := func(r *x509.Certificate, k *ecdsa.PrivateKey, at time.Time) string {
			c, _, err := applepay.IssueTestDevice(nil, r, k, at)
			if err != nil {
				t.Fatal(err)
			}
			return string(c)
		}
		otherRoot, otherKey, err := applepay.NewTestRoot(nil, now)
		if err != nil {
			t.Fatal(err)
		}
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		good := issue(root, rootKey, now)

		tests := []struct {
			name, cert, message string
		}{
			{"expired device certificate", issue(root, rootKey, now.Add(-3*365*24*time.Hour)), "certificate is expired or not yet valid"},
			{"device certificate not yet valid", issue(root, rootKey, now.Add(2*time.Hour)), "certificate is expired or not yet valid"},
			{"device certificate from another root", issue(otherRoot, otherKey, now), "certificate chain is not trusted"},
			{"another root sent along as intermediate", issue(otherRoot, otherKey, now) + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherRoot.Raw})), "certificate chain is not trusted"},
			{"P-384 leaf", leaf(t, s, &p384.PublicKey, x509.KeyUsageKeyAgreement, true), "leaf certificate key must be ECDSA P-256"},
			{"leaf without KeyAgreement", leaf(t, s, &p256.PublicKey, x509.KeyUsageDigitalSignature, true), "leaf certificate must allow key agreement"},
			{"leaf without the Apple marker extension", leaf(t, s, &p256.PublicKey, x509.KeyUsageKeyAgreement, false), "certificate chain is not trusted"},
			{"the root itself as leaf", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})), "leaf certificate must allow key agreement"},
			{"valid certificate followed by junk", good + "junk", "must be PEM-encoded X.509 certificates, leaf first"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := s.Do(t, "POST", tokenPath(activeProxy, "ApplePay"), v1(tok), appleBody(randomHex(t, 16), randomHex(t, 32), tt.cert))
				if r.Status != 400 {
					t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
				}
				errs := errorsOf(t, r)
				if len(errs) != 1 || errs[0].PropertyName != "appleCertificate" || errs[0].Message != "appleCertificate "+tt.message {
					t.Errorf("errors %+v, want one naming appleCertificate: %q", errs, tt.message)
				}
			})
		}

		// A device certificate that was fine expires when the clock passes its
		// validity (two years); the sandbox root (ten years) still stands.
		t.Run("device certificate expires with time", func(t *testing.T) {
			if r := s.Do(t, "POST", tokenPath(activeProxy, "ApplePay"), v1(tok), appleBody(randomHex(t, 16), "ab", good)); r.Status != 200 {
				t.Fatalf("before expiry: %d %s", r.Status, r.Body)
			}
			s.Clock.Advance(2*365*24*time.Hour + time.Minute)
			r := s.Do(t, "POST", tokenPath(activeProxy, "ApplePay"), v1(s.Token(t, "")), appleBody(randomHex(t, 16), "ab", good))
			if r.Status != 400 || fmt.Sprint(fieldsOf(t, r)) != "[appleCertificate]" {
				t.Errorf("after expiry: %d %s, want 400 naming appleCertificate", r.Status, r.Body)
			}
			fresh := newDevice(t, s, s.Clock.Now())
			if r := s.Do(t, "POST", tokenPath(activeProxy, "ApplePay"), v1(s.Token(t, "")), appleBody(randomHex(t, 16), "ab", fresh.certPEM)); r.Status != 200 {
				t.Errorf("a fresh device certificate: %d %s", r.Status, r.Body)
			}
		})
	})
}

func TestGooglePayEndToEnd(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "card.pci.token.create")
		s.Clock.Advance(1234 * time.Millisecond) // milliseconds show in the timestamps
		now := s.Clock.Now()
		r := s.Do(t, "POST", tokenPath(activeProxy, "GooglePay"), v1(tok), "")
		resp := decodeTokenResponse(t, r)
		if resp.LastFourDigits != "1471" || resp.PhoneNumber != phoneNumber || string(resp.Address) != seedAddress {
			t.Errorf("lastFourDigits %q phoneNumber %q address %s", resp.LastFourDigits, resp.PhoneNumber, resp.Address)
		}
		o, plain := decryptGoogle(t, s, resp.Data)
		var want opcPlain
		want.CardAccountData.AccountNumber = sandboxPAN
		want.CardAccountData.ExpiryMonth = "12"
		want.CardAccountData.ExpiryYear = fmt.Sprintf("%02d", sandboxExpiryYY)
		want.AccountHolderData.AccountHolderName = holderName
		a := &want.AccountHolderData.AccountHolderAddress
		a.Line1, a.Line2, a.City, a.CountrySubdivision, a.PostalCode, a.Country = "Rua 6 de Março, 2500", "Alter do Chão", "Santarém", "PA", "05402100", "BRA"
		want.AccountHolderData.AccountHolderMobilePhoneNumber.CountryDialInCode = "55"
		want.AccountHolderData.AccountHolderMobilePhoneNumber.PhoneNumber = phoneNumber
		want.Source = "ACCOUNT_ADDED_VIA_APPLICATION"
		want.DataValidUntilTimestamp = now.Add(30 * time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")
		if diff := cmp.Diff(want, plain); diff != "" {
			t.Errorf("decrypted OPC (-want +got):\n%s", diff)
		}
		if o.FundingAccountInfo.EncryptedPayload.OAEPHashingAlgorithm != "SHA512" {
			t.Errorf("oaepHashingAlgorithm %q, want SHA512", o.FundingAccountInfo.EncryptedPayload.OAEPHashingAlgorithm)
		}
		verifyTAV(t, s, o.TokenizationAuthenticationValue, sandboxPAN, fmt.Sprintf("12%02d", sandboxExpiryYY), now)

		// A JSON object sent with GooglePay is ignored, ApplePay fields included.
		other := createCard(t, s, s.Token(t, ""), "google-with-body", freshPAN(t), "ACTIVE")
		r2 := s.Do(t, "POST", tokenPath(other.Proxy, "GooglePay"), v1(tok), `{"nonce":"zz"}`)
		if _, p2 := decryptGoogle(t, s, decodeTokenResponse(t, r2).Data); p2.CardAccountData.ExpiryYear != "29" || p2.AccountHolderData.AccountHolderName != "JOÃO PEREIRA" {
			t.Errorf("second card's OPC: %+v", p2.CardAccountData)
		}
	})
}

func TestWalletPayloadIdempotency(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "")
		path := tokenPath(activeProxy, "ApplePay")
		d, d2 := newDevice(t, s, s.Clock.Now()), newDevice(t, s, s.Clock.Now())
		nonce, sig := randomHex(t, 16), randomHex(t, 64)
		first := s.Do(t, "POST", path, v1(tok), appleBody(nonce, sig, d.certPEM))
		decodeTokenResponse(t, first)
		t0 := s.Clock.Now()

		s.Clock.Advance(time.Minute)
		t.Run("same request twice", func(t *testing.T) {
			again := s.Do(t, "POST", path, v1(tok), appleBody(nonce, sig, d.certPEM))
			if again.Status != 200 || string(again.Body) != string(first.Body) {
				t.Errorf("replay: %d, body differs from the first: %v", again.Status, string(again.Body) != string(first.Body))
			}
			upper := s.Do(t, "POST", path, v1(tok), appleBody(strings.ToUpper(nonce), strings.ToUpper(sig), d.certPEM))
			if upper.Status != 200 || string(upper.Body) != string(first.Body) {
				t.Errorf("same hex in upper case: %d, want the first body", upper.Status)
			}
		})
		t.Run("same nonce, other request", func(t *testing.T) {
			for name, body := range map[string]string{
				"another certificate":    appleBody(nonce, sig, d2.certPEM),
				"another nonceSignature": appleBody(nonce, randomHex(t, 64), d.certPEM),
			} {
				r := s.Do(t, "POST", path, v1(tok), body)
				errs := errorsOf(t, r)
				if r.Status != 422 || len(errs) != 1 || errs[0].Code != "NONCE_ALREADY_USED" {
					t.Errorf("%s: %d %s, want 422 NONCE_ALREADY_USED", name, r.Status, r.Body)
				}
			}
			// The refused requests did not replace the stored payload.
			if r := s.Do(t, "POST", path, v1(tok), appleBody(nonce, sig, d.certPEM)); string(r.Body) != string(first.Body) {
				t.Error("original request no longer replays")
			}
		})
		t.Run("different nonce", func(t *testing.T) {
			n2 := randomHex(t, 16)
			r := s.Do(t, "POST", path, v1(tok), appleBody(n2, sig, d.certPEM))
			if string(r.Body) == string(first.Body) {
				t.Fatal("a different nonce replayed the first payload")
			}
			if got := decryptApple(t, d.key, decodeApplePayload(t, decodeTokenResponse(t, r).Data)); got["nonce"] != n2 {
				t.Errorf("nonce %q, want %q", got["nonce"], n2)
			}
		})
		t.Run("same nonce on another card", func(t *testing.T) {
			c := createCard(t, s, tok, "idem-second", freshPAN(t), "ACTIVE")
			r := s.Do(t, "POST", tokenPath(c.Proxy, "ApplePay"), v1(tok), appleBody(nonce, sig, d2.certPEM))
			if r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		})
		t.Run("Google Pay per card", func(t *testing.T) {
			g1 := s.Do(t, "POST", tokenPath(activeProxy, "GooglePay"), v1(tok), "")
			g2 := s.Do(t, "POST", tokenPath(activeProxy, "GooglePay"), v1(tok), "")
			if g1.Status != 200 || string(g1.Body) != string(g2.Body) {
				t.Errorf("Google Pay replay: %d, identical %v", g1.Status, string(g1.Body) == string(g2.Body))
			}
		})
		t.Run("after 30 minutes the nonce gives a fresh payload", func(t *testing.T) {
			s.Clock.Set(t0.Add(30*time.Minute - time.Millisecond))
			tok := s.Token(t, "")
			if r := s.Do(t, "POST", path, v1(tok), appleBody(nonce, sig, d.certPEM)); string(r.Body) != string(first.Body) {
				t.Error("payload not replayed just before 30 minutes")
			}
			s.Clock.Set(t0.Add(30 * time.Minute))
			r := s.Do(t, "POST", path, v1(tok), appleBody(nonce, sig, d.certPEM))
			resp := decodeTokenResponse(t, r)
			if string(r.Body) == string(first.Body) {
				t.Fatal("expired payload replayed")
			}
			p := decodeApplePayload(t, resp.Data)
			decryptApple(t, d.key, p)
			verifyTAV(t, s, p.ActivationData, sandboxPAN, fmt.Sprintf("12%02d", sandboxExpiryYY), s.Clock.Now())
			if again := s.Do(t, "POST", path, v1(tok), appleBody(nonce, sig, d.certPEM)); string(again.Body) != string(r.Body) {
				t.Error("the fresh payload does not replay")
			}
			// With the old payload gone, the nonce may be bound to another request.
			s.Clock.Advance(30 * time.Minute)
			tok = s.Token(t, "")
			if r := s.Do(t, "POST", path, v1(tok), appleBody(nonce, sig, d2.certPEM)); r.Status != 200 {
				t.Errorf("nonce after expiry with another certificate: %d %s", r.Status, r.Body)
			}
		})
	})
}

func TestWalletPayloadConcurrentRequests(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "")
		d := newDevice(t, s, s.Clock.Now())
		createCard(t, s, tok, "concurrent-google", freshPAN(t), "ACTIVE")
		requests := map[string]struct{ path, body string }{
			"ApplePay":  {tokenPath(activeProxy, "ApplePay"), appleBody(randomHex(t, 16), randomHex(t, 64), d.certPEM)},
			"GooglePay": {tokenPath("concurrent-google", "GooglePay"), ""},
		}
		for name, req := range requests {
			t.Run(name, func(t *testing.T) {
				const n = 10
				statuses, bodies := make([]int, n), make([]string, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						r := s.Do(t, "POST", req.path, v1(tok), req.body)
						statuses[i], bodies[i] = r.Status, string(r.Body)
					}()
				}
				close(start)
				wg.Wait()
				for i := range n {
					if statuses[i] != 200 || bodies[i] != bodies[0] {
						t.Errorf("request %d: %d %.200s, want 200 and the same body as request 0 (%d)", i, statuses[i], bodies[i], statuses[0])
					}
				}
				if after := s.Do(t, "POST", req.path, v1(tok), req.body); string(after.Body) != bodies[0] {
					t.Error("a later retry got another payload")
				}
			})
		}
	})
}

func TestAdminCards(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "")
		pan := freshPAN(t)
		s.Clock.Advance(2 * time.Second)
		created := s.Do(t, "POST", "/admin/v1/cards", authz(tok), cardBody("admin-card", pan, nil))
		if created.Status != 201 {
			t.Fatalf("create: %d %s", created.Status, created.Body)
		}
		if strings.Contains(string(created.Body), pan) || strings.Contains(string(created.Body), pan[:12]) {
			t.Errorf("create response carries the card number: %s", created.Body)
		}
		var c cardJSON
		decodeStrict(t, "card", created.Body, &c)
		when := s.Clock.Now().Format("2006-01-02T15:04:05")
		wantCard := cardJSON{Proxy: "admin-card", LastFourDigits: pan[12:], ExpiryMonth: 11, ExpiryYear: 2029, Name: "JOÃO PEREIRA",
			PhoneNumber: "11987654321", Brand: "Mastercard", Status: "CREATING", CreatedAt: when, UpdatedAt: when,
			Address: json.RawMessage(`{"zipCode":"01310100","address":"Avenida Paulista","number":"1000","neighborhood":"Bela Vista","complement":"Conj. 42","city":"São Paulo","state":"SP","country":"Brasil"}`)}
		if diff := cmp.Diff(wantCard, c); diff != "" {
			t.Errorf("created card (-want +got):\n%s", diff)
		}
		if got := s.Do(t, "GET", "/admin/v1/cards/admin-card", authz(tok), ""); got.Status != 200 || string(got.Body) != string(created.Body) {
			t.Errorf("GET: %d %s, want the created card", got.Status, got.Body)
		}

		t.Run("validation", func(t *testing.T) {
			tests := []struct {
				name   string
				edit   func(m map[string]any)
				fields []string
			}{
				{"bad Luhn", func(m map[string]any) { m["cardNumber"] = pan[:15] + string('0'+(pan[15]-'0'+1)%10) }, []string{"cardNumber"}},
				{"card number too short", func(m map[string]any) { m["cardNumber"] = "00000000000" }, []string{"cardNumber"}},
				{"card number with spaces", func(m map[string]any) { m["cardNumber"] = pan[:4] + " " + pan[4:] }, []string{"cardNumber"}},
				{"expired last month", func(m map[string]any) { m["expiryMonth"], m["expiryYear"] = 9, 2024 }, []string{"expiryYear"}},
				{"expiry month 13", func(m map[string]any) { m["expiryMonth"] = 13 }, []string{"expiryMonth"}},
				{"two-digit year", func(m map[string]any) { m["expiryYear"] = 29 }, []string{"expiryYear"}},
				{"expiry month as a string", func(m map[string]any) { m["expiryMonth"] = "11" }, []string{"expiryMonth"}},
				{"bad phone", func(m map[string]any) { m["phoneNumber"] = "+55 11 98765" }, []string{"phoneNumber"}},
				{"missing address fields", func(m map[string]any) { m["address"] = map[string]any{"complement": "x"} },
					[]string{"address.zipCode", "address.address", "address.number", "address.city", "address.state", "address.country"}},
				{"proxy with spaces", func(m map[string]any) { m["proxy"] = "bad proxy" }, []string{"proxy"}},
				{"brand Visa", func(m map[string]any) { m["brand"] = "Visa" }, []string{"brand"}},
				{"unknown status", func(m map[string]any) { m["status"] = "FROZEN" }, []string{"status"}},
				{"everything wrong at once", func(m map[string]any) {
					m["cardNumber"], m["expiryMonth"], m["expiryYear"], m["phoneNumber"], m["brand"] = "1234", 1, 2020, "abc", "Elo"
					m["address"].(map[string]any)["city"] = ""
					delete(m, "name")
				}, []string{"name", "cardNumber", "expiryYear", "phoneNumber", "address.city", "brand"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r := s.Do(t, "POST", "/admin/v1/cards", authz(tok), cardBody("admin-invalid", freshPAN(t), tt.edit))
					if r.Status != 400 {
						t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
					}
					got := fieldsOf(t, r)
					if diff := cmp.Diff(sortedCopy(tt.fields), sortedCopy(got)); diff != "" {
						t.Errorf("offending fields (-want +got):\n%s", diff)
					}
				})
			}
			r := s.Do(t, "POST", "/admin/v1/cards", authz(tok), `{}`)
			got := fieldsOf(t, r)
			for _, f := range []string{"proxy", "cardNumber", "expiryMonth", "expiryYear", "name", "phoneNumber", "address", "brand"} {
				if !contains(got, f) {
					t.Errorf("empty body: %s not named in %v", f, got)
				}
			}
			if r := s.Do(t, "GET", "/admin/v1/cards/admin-invalid", authz(tok), ""); r.Status != 404 {
				t.Errorf("an invalid card was stored: %d", r.Status)
			}
		})

		t.Run("duplicates", func(t *testing.T) {
			r := s.Do(t, "POST", "/admin/v1/cards", authz(tok), cardBody("admin-card", freshPAN(t), nil))
			errs := errorsOf(t, r)
			if r.Status != 409 || len(errs) != 1 || errs[0].PropertyName != "proxy" || errs[0].Code != "CONFLICT" {
				t.Errorf("duplicate proxy: %d %s, want 409 naming proxy", r.Status, r.Body)
			}
			r = s.Do(t, "POST", "/admin/v1/cards", authz(tok), cardBody("admin-card-2", pan, nil))
			errs = errorsOf(t, r)
			if r.Status != 409 || len(errs) != 1 || errs[0].PropertyName != "cardNumber" {
				t.Errorf("duplicate card number: %d %s, want 409 naming cardNumber", r.Status, r.Body)
			}
			if strings.Contains(string(r.Body), pan) || strings.Contains(string(r.Body), pan[12:]) {
				t.Errorf("duplicate card number error repeats the number: %s", r.Body)
			}
			// The sandbox card's number is taken too, whoever asks.
			r = s.Do(t, "POST", "/admin/v1/cards", authz(otherApp(t, s, "DUP")), cardBody("dup-sandbox", sandboxPAN, nil))
			if errs := errorsOf(t, r); r.Status != 409 || errs[0].PropertyName != "cardNumber" {
				t.Errorf("sandbox card number again: %d %s", r.Status, r.Body)
			}
		})

		t.Run("tenancy", func(t *testing.T) {
			other := otherApp(t, s, "TENANT")
			createCard(t, s, other, "tenant-card", freshPAN(t), "ACTIVE")
			var mine, theirs struct{ Data []cardJSON }
			s.Do(t, "GET", "/admin/v1/cards", authz(tok), "").JSON(t, &mine)
			s.Do(t, "GET", "/admin/v1/cards", authz(other), "").JSON(t, &theirs)
			if got := proxiesOf(mine.Data); contains(got, "tenant-card") || !contains(got, "admin-card") || !contains(got, activeProxy) {
				t.Errorf("demo application lists %v", got)
			}
			if got := proxiesOf(theirs.Data); fmt.Sprint(got) != "[tenant-card]" {
				t.Errorf("other application lists %v, want only its card", got)
			}
			for _, req := range []struct{ method, path, body string }{
				{"GET", "/admin/v1/cards/tenant-card", ""},
				{"PATCH", "/admin/v1/cards/tenant-card", `{"status":"BLOCKED"}`},
				{"GET", "/cards-pci/tenant-card/wallet", ""},
			} {
				r := s.Do(t, req.method, req.path, authz(tok), req.body)
				if errs := errorsOf(t, r); r.Status != 404 || errs[0].Code != "002" || errs[0].Message != "Card Not Found" {
					t.Errorf("%s %s as another application: %d %s, want 404 002", req.method, req.path, r.Status, r.Body)
				}
			}
			var still cardJSON
			s.Do(t, "GET", "/admin/v1/cards/tenant-card", authz(other), "").JSON(t, &still)
			if still.Status != "ACTIVE" {
				t.Errorf("another application changed the card: %s", still.Status)
			}
		})

		t.Run("status", func(t *testing.T) {
			s.Clock.Advance(10 * time.Second)
			r := s.Do(t, "PATCH", "/admin/v1/cards/admin-card", authz(tok), `{"status":"ACTIVE"}`)
			var got cardJSON
			decodeStrict(t, "card", r.Body, &got)
			if r.Status != 200 || got.Status != "ACTIVE" || got.CreatedAt != when || got.UpdatedAt != s.Clock.Now().Format("2006-01-02T15:04:05") {
				t.Errorf("PATCH ACTIVE: %d %s", r.Status, r.Body)
			}
			if r := s.Do(t, "POST", tokenPath("admin-card", "GooglePay"), v1(tok), ""); r.Status != 200 {
				t.Errorf("token for the activated card: %d %s", r.Status, r.Body)
			}
			for status, code := range map[string]string{"BLOCKED": "CARD_BLOCKED", "CANCELLED": "CARD_CANCELLED", "CREATING": "029"} {
				if r := s.Do(t, "PATCH", "/admin/v1/cards/admin-card", authz(tok), `{"status":"`+status+`"}`); r.Status != 200 {
					t.Fatalf("PATCH %s: %d %s", status, r.Status, r.Body)
				}
				r := s.Do(t, "POST", tokenPath("admin-card", "GooglePay"), v1(tok), "")
				if errs := errorsOf(t, r); errs[0].Code != code {
					t.Errorf("token for a %s card: %d %s, want code %s", status, r.Status, r.Body, code)
				}
			}
			for body, fields := range map[string]string{`{"status":"FROZEN"}`: "[status]", `{}`: "[status]", `{"status":1}`: "[status]"} {
				r := s.Do(t, "PATCH", "/admin/v1/cards/admin-card", authz(tok), body)
				if r.Status != 400 || fmt.Sprint(fieldsOf(t, r)) != fields {
					t.Errorf("PATCH %s: %d %s, want 400 naming status", body, r.Status, r.Body)
				}
			}
			if r := s.Do(t, "PATCH", "/admin/v1/cards/nope", authz(tok), `{"status":"ACTIVE"}`); r.Status != 404 {
				t.Errorf("PATCH unknown card: %d", r.Status)
			}
		})

		t.Run("scopes", func(t *testing.T) {
			readOnly := s.Token(t, "card.admin.read")
			tokenOnly := s.Token(t, "card.pci.token.create")
			for _, tt := range []struct {
				method, path, token, body string
				status                    int
			}{
				{"POST", "/admin/v1/cards", readOnly, cardBody("scope-card", freshPAN(t), nil), 403},
				{"PATCH", "/admin/v1/cards/admin-card", readOnly, `{"status":"ACTIVE"}`, 403},
				{"GET", "/admin/v1/cards", tokenOnly, "", 403},
				{"GET", "/admin/v1/cards/admin-card", tokenOnly, "", 403},
				{"GET", "/cards-pci/admin-card/wallet", tokenOnly, "", 403},
				{"GET", "/admin/v1/cards", readOnly, "", 200},
				{"GET", "/admin/v1/cards", "", "", 401},
				{"POST", "/admin/v1/cards", "", cardBody("scope-card", freshPAN(t), nil), 401},
			} {
				if r := s.Do(t, tt.method, tt.path, authz(tt.token), tt.body); r.Status != tt.status {
					t.Errorf("%s %s: %d, want %d", tt.method, tt.path, r.Status, tt.status)
				}
			}
		})
	})
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func proxiesOf(cs []cardJSON) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Proxy)
	}
	return out
}

type walletToken struct {
	TokenUniqueReference string `json:"tokenUniqueReference"`
	Wallet               string `json:"wallet"`
	Status               string `json:"status"`
	CreatedAt            string `json:"createdAt"`
	UpdatedAt            string `json:"updatedAt"`
}

func walletTokens(t *testing.T, s *apptest.Server, token, proxy string) []walletToken {
	t.Helper()
	r := s.Do(t, "GET", "/cards-pci/"+proxy+"/wallet", authz(token), "")
	if r.Status != 200 {
		t.Fatalf("list wallet tokens: %d %s", r.Status, r.Body)
	}
	var out struct {
		Data []walletToken `json:"data"`
	}
	decodeStrict(t, "wallet tokens", r.Body, &out)
	if out.Data == nil {
		t.Errorf("data is %s, want an array", r.Body)
	}
	return out.Data
}

func TestNetworkNotifications(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "card.pci.wallet.read")
		const ref = "DAPLMC00000000000000000000000000000000000001"
		if got := walletTokens(t, s, tok, activeProxy); len(got) != 0 {
			t.Fatalf("tokens before any notification: %+v", got)
		}
		stamp := func(d time.Duration) string { return s.Clock.Now().Add(d).Format("2006-01-02T15:04:05") }
		expect := func(t *testing.T, want ...walletToken) {
			t.Helper()
			if diff := cmp.Diff(want, walletTokens(t, s, tok, activeProxy)); diff != "" {
				t.Errorf("wallet tokens (-want +got):\n%s", diff)
			}
		}
		created := notification("n-1", "TOKEN_CREATED", "ApplePay", ref, sandboxPAN)
		if r := notify(t, s, created); r.Status != 204 || len(r.Body) != 0 {
			t.Fatalf("TOKEN_CREATED: %d %s", r.Status, r.Body)
		}
		t0 := stamp(0)
		expect(t, walletToken{ref, "ApplePay", "INACTIVE", t0, t0})

		s.Clock.Advance(time.Minute)
		if r := notify(t, s, notification("n-2", "TOKEN_ACTIVATED", "ApplePay", ref, sandboxPAN)); r.Status != 204 {
			t.Fatalf("TOKEN_ACTIVATED: %d %s", r.Status, r.Body)
		}
		t1 := stamp(0)
		expect(t, walletToken{ref, "ApplePay", "ACTIVE", t0, t1})

		s.Clock.Advance(time.Minute)
		t.Run("replay changes nothing", func(t *testing.T) {
			if r := notify(t, s, created); r.Status != 204 {
				t.Errorf("replayed TOKEN_CREATED: %d %s", r.Status, r.Body)
			}
			expect(t, walletToken{ref, "ApplePay", "ACTIVE", t0, t1})
		})
		t.Run("same id, other content", func(t *testing.T) {
			r := notify(t, s, notification("n-1", "TOKEN_DELETED", "ApplePay", ref, sandboxPAN))
			if r.Status != 409 {
				t.Errorf("reused notificationId: %d %s, want 409", r.Status, r.Body)
			}
			errorsOf(t, r)
			expect(t, walletToken{ref, "ApplePay", "ACTIVE", t0, t1})
		})
		t.Run("authentication", func(t *testing.T) {
			body := notification("n-auth", "TOKEN_DELETED", "ApplePay", ref, sandboxPAN)
			now := s.Clock.Now().Unix()
			secret := networkSecret(t, s)
			tampered := signNetwork(secret, now, body)
			tampered["x-network-signature"] = strings.Replace(tampered["x-network-signature"], "v1,", "v1,A", 1)
			v2 := signNetwork(secret, now, body)
			v2["x-network-signature"] = "v2," + strings.TrimPrefix(v2["x-network-signature"], "v1,")
			for _, tt := range []struct {
				name   string
				header map[string]string
				body   string
			}{
				{"no headers", nil, body},
				{"another secret", signNetwork([]byte("not-the-sandbox-secret-at-all"), now, body), body},
				{"signature of another body", signNetwork(secret, now, notification("n-auth", "TOKEN_CREATED", "ApplePay", ref, sandboxPAN)), body},
				{"tampered signature", tampered, body},
				{"other scheme", v2, body},
				{"stale timestamp", signNetwork(secret, now-301, body), body},
				{"timestamp from the future", signNetwork(secret, now+301, body), body},
				{"timestamp not a number", map[string]string{"x-network-timestamp": "soon", "x-network-signature": signNetwork(secret, now, body)["x-network-signature"]}, body},
			} {
				r := s.Do(t, "POST", notificationsPath, tt.header, tt.body)
				if errs := errorsOf(t, r); r.Status != 401 || errs[0].Code != "UNAUTHORIZED" {
					t.Errorf("%s: %d %s, want 401", tt.name, r.Status, r.Body)
				}
			}
			expect(t, walletToken{ref, "ApplePay", "ACTIVE", t0, t1})
			// Within five minutes of skew is accepted.
			if r := s.Do(t, "POST", notificationsPath, signNetwork(secret, now-299, notification("n-skew", "TOKEN_SUSPENDED", "ApplePay", ref, sandboxPAN)),
				notification("n-skew", "TOKEN_SUSPENDED", "ApplePay", ref, sandboxPAN)); r.Status != 204 {
				t.Errorf("timestamp 299 s old: %d %s", r.Status, r.Body)
			}
			if r := notify(t, s, notification("n-resume", "TOKEN_RESUMED", "ApplePay", ref, sandboxPAN)); r.Status != 204 {
				t.Errorf("TOKEN_RESUMED: %d %s", r.Status, r.Body)
			}
			expect(t, walletToken{ref, "ApplePay", "ACTIVE", t0, stamp(0)})
		})
		t.Run("unknown card", func(t *testing.T) {
			r := notify(t, s, notification("n-unknown", "TOKEN_CREATED", "GooglePay", "DNITHE0000000000000000000000000000000000002", freshPAN(t)))
			errs := errorsOf(t, r)
			if r.Status != 404 || errs[0].Code != "002" || errs[0].Message != "Card Not Found" {
				t.Errorf("unknown card number: %d %s, want 404 002 Card Not Found", r.Status, r.Body)
			}
		})
		t.Run("invalid notification", func(t *testing.T) {
			r := notify(t, s, `{"notificationId":"n-bad","eventType":"TOKEN_EXPLODED","wallet":"SamsungPay","accountNumber":"1234"}`)
			if r.Status != 400 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if diff := cmp.Diff([]string{"eventType", "wallet", "tokenUniqueReference", "accountNumber"}, sortedFields(fieldsOf(t, r))); diff != "" {
				t.Errorf("offending fields (-want +got):\n%s", diff)
			}
		})
		t.Run("deleted", func(t *testing.T) {
			s.Clock.Advance(time.Minute)
			if r := notify(t, s, notification("n-3", "TOKEN_DELETED", "ApplePay", ref, sandboxPAN)); r.Status != 204 {
				t.Fatalf("TOKEN_DELETED: %d %s", r.Status, r.Body)
			}
			t3 := stamp(0)
			expect(t, walletToken{ref, "ApplePay", "DELETED", t0, t3})
			if r := notify(t, s, notification("n-4", "TOKEN_ACTIVATED", "ApplePay", ref, sandboxPAN)); r.Status != 409 {
				t.Errorf("activating a deleted token: %d %s, want 409", r.Status, r.Body)
			}
			expect(t, walletToken{ref, "ApplePay", "DELETED", t0, t3})
		})
		t.Run("a second wallet", func(t *testing.T) {
			const gref = "DNITHE0000000000000000000000000000000000003"
			if r := notify(t, s, notification("g-1", "TOKEN_CREATED", "GooglePay", gref, sandboxPAN)); r.Status != 204 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if got := walletTokens(t, s, tok, activeProxy); len(got) != 2 || got[1].TokenUniqueReference != gref || got[1].Wallet != "GooglePay" || got[1].Status != "INACTIVE" {
				t.Errorf("tokens %+v", got)
			}
			if got := walletTokens(t, s, tok, creatingProxy); len(got) != 0 {
				t.Errorf("another card lists %+v", got)
			}
			if r := s.Do(t, "GET", "/cards-pci/no-such-card/wallet", authz(tok), ""); r.Status != 404 {
				t.Errorf("unknown card: %d", r.Status)
			}
		})
	})
}

// TestConcurrentNotifications: the network may send several notifications for
// one new token at once; each is applied, none fails.
func TestConcurrentNotifications(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		const tokens = 10
		events := []string{"TOKEN_CREATED", "TOKEN_ACTIVATED", "TOKEN_SUSPENDED"}
		statuses := make([][]int, tokens)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range tokens {
			statuses[i] = make([]int, len(events))
			for j, ev := range events {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					body := notification(fmt.Sprintf("c-%d-%d", i, j), ev, "GooglePay", fmt.Sprintf("DNITHE-CONCURRENT-%02d", i), sandboxPAN)
					statuses[i][j] = notify(t, s, body).Status
				}()
			}
		}
		close(start)
		wg.Wait()
		for i := range tokens {
			for j, st := range statuses[i] {
				if st != 204 {
					t.Errorf("token %d, %s: status %d, want 204", i, events[j], st)
				}
			}
		}
		got := walletTokens(t, s, s.Token(t, "card.pci.wallet.read"), activeProxy)
		if len(got) != tokens {
			t.Errorf("%d wallet tokens, want %d: %+v", len(got), tokens, got)
		}
	})
}

func sortedFields(s []string) []string {
	order := map[string]int{"notificationId": 0, "eventType": 1, "wallet": 2, "tokenUniqueReference": 3, "accountNumber": 4}
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if order[out[j]] < order[out[i]] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// Helpers. The decryption and verification code below is written
// independently of the production code: its cryptography uses only the
// standard library (production packages only load the sandbox keys and issue
// device certificates), so a change in the payload format cannot be hidden by
// a matching change in the code under test.

// The sandbox cards the demo application gets on start (internal/cards).
const (
	sandboxPAN    = "5204247750001471"
	activeProxy   = "sandbox-card-active"
	creatingProxy = "sandbox-card-creating"
	holderName    = "MARIA DA SILVA"
	phoneNumber   = "23415162342"
)

// seedAddress is the address of seed 001's response example, field for field.
const seedAddress = `{"zipCode":"05402100","address":"Rua 6 de Março","number":"2500","neighborhood":"Alter do Chão","complement":"","city":"Santarém","state":"PA","country":"Brasil"}`

// sandboxExpiryYY is the two-digit year of the sandbox cards' expiry (December,
// four years after the year the test clock starts in).
var sandboxExpiryYY = (apptest.Epoch.Year() + 4) % 100

const notificationsPath = "/cards-pci/network/notifications"

// eachEngine runs fn against a fresh Ponte on every available database.
func eachEngine(t *testing.T, fn func(t *testing.T, s *apptest.Server)) {
	t.Helper()
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			fn(t, apptest.Start(t, apptest.Options{DatabaseURL: e.URL(t)}))
		})
	}
}

type apiError struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	PropertyName string `json:"propertyName"`
}

// errorsOf decodes a Bankly error body, failing on any other shape.
func errorsOf(t *testing.T, r *apptest.Response) []apiError {
	t.Helper()
	var body struct {
		Errors []apiError `json:"errors"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || len(body.Errors) == 0 {
		t.Fatalf("status %d: body is not a Bankly error (%v): %s", r.Status, err, r.Body)
	}
	return body.Errors
}

// fieldsOf returns the propertyName of every error of a 400, checking each
// entry is INVALID_PARAMETER with a message that names its field.
func fieldsOf(t *testing.T, r *apptest.Response) []string {
	t.Helper()
	var out []string
	for _, e := range errorsOf(t, r) {
		if e.Code != "INVALID_PARAMETER" || e.PropertyName == "" || !strings.HasPrefix(e.Message, e.PropertyName+" ") {
			t.Errorf("error %+v: want code INVALID_PARAMETER and a message naming its propertyName", e)
		}
		out = append(out, e.PropertyName)
	}
	return out
}

// authz returns an Authorization header map (none for token ""), plus extra key/value pairs.
func authz(token string, kv ...string) map[string]string {
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

// v1 is the header set of the token endpoint: bearer token and api-version 1.0.
func v1(token string) map[string]string { return authz(token, "api-version", "1.0") }

func tokenPath(proxy, wallet string) string {
	return "/cards-pci/" + proxy + "/wallet/" + wallet + "/brand/Mastercard"
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// appleBody is the ApplePay request body of seed 001.
func appleBody(nonce, nonceSignature, certificate string) string {
	b, _ := json.Marshal(map[string]string{"nonce": nonce, "nonceSignature": nonceSignature, "appleCertificate": certificate})
	return string(b)
}

// device is a sandbox Apple Pay device: its encipherment certificate and key.
type device struct {
	certPEM string
	key     *ecdh.PrivateKey
}

// sandboxRoot returns the sandbox Apple root the server created at start.
func sandboxRoot(t testing.TB, s *apptest.Server) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	root, key, err := applepay.LoadOrCreateTestRoot(s.Options.DataDir, s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return root, key
}

// newDevice issues a device certificate chained to the sandbox root, valid at now.
func newDevice(t testing.TB, s *apptest.Server, now time.Time) device {
	t.Helper()
	root, rootKey := sandboxRoot(t, s)
	certPEM, keyPEM, err := applepay.IssueTestDevice(nil, root, rootKey, now)
	if err != nil {
		t.Fatal(err)
	}
	return device{certPEM: string(certPEM), key: parseDeviceKey(t, keyPEM)}
}

func parseDeviceKey(t testing.TB, keyPEM []byte) *ecdh.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("device key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("device key is %T", k)
	}
	key, err := ec.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// tokenResponse is seed 001's 200 body.
type tokenResponse struct {
	Data           string          `json:"data"`
	LastFourDigits string          `json:"lastFourDigits"`
	PhoneNumber    string          `json:"phoneNumber"`
	Address        json.RawMessage `json:"address"`
}

// decodeTokenResponse checks the exact field set of the 200 body.
func decodeTokenResponse(t *testing.T, r *apptest.Response) tokenResponse {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d, want 200: %s", r.Status, r.Body)
	}
	var keys map[string]json.RawMessage
	r.JSON(t, &keys)
	if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, []string{"address", "data", "lastFourDigits", "phoneNumber"}) {
		t.Errorf("response fields %v, want exactly seed 001's", got)
	}
	var out tokenResponse
	r.JSON(t, &out)
	return out
}

// applePayload is the JSON inside an ApplePay "data".
type applePayload struct {
	EphemeralPublicKey []byte
	EncryptedData      []byte
	ActivationData     string
}

func decodeApplePayload(t *testing.T, data string) applePayload {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatalf("data is not standard base64: %v", err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatalf("data is not a JSON object: %v", err)
	}
	if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, []string{"ActivationData", "EncryptedData", "EphemeralPublicKey"}) {
		t.Errorf("data fields %v, want EphemeralPublicKey, EncryptedData, ActivationData", got)
	}
	var p applePayload
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("data fields have the wrong types: %v", err)
	}
	if len(p.EphemeralPublicKey) != 65 || p.EphemeralPublicKey[0] != 0x04 {
		t.Fatalf("EphemeralPublicKey is %d bytes, want an uncompressed P-256 point", len(p.EphemeralPublicKey))
	}
	return p
}

// openApple decrypts EncryptedData for the device: ECDH with the device key,
// the single-step KDF SHA-256(00000001 ‖ Z ‖ 0x0D ‖ "id-aes256-GCM" ‖ "Apple" ‖
// ephemeral public key), AES-256-GCM with a 16-byte zero IV and no AAD.
func openApple(key *ecdh.PrivateKey, p applePayload) ([]byte, error) {
	eph, err := ecdh.P256().NewPublicKey(p.EphemeralPublicKey)
	if err != nil {
		return nil, err
	}
	z, err := key.ECDH(eph)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte{0x00, 0x00, 0x00, 0x01})
	h.Write(z)
	h.Write([]byte{0x0D})
	h.Write([]byte("id-aes256-GCM"))
	h.Write([]byte("Apple"))
	h.Write(p.EphemeralPublicKey)
	block, err := aes.NewCipher(h.Sum(nil))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, 16)
	if err != nil {
		return nil, err
	}
	return gcm.Open(nil, make([]byte, 16), p.EncryptedData, nil)
}

// decryptApple returns the plaintext fields of EncryptedData, checking that
// they are exactly Apple's five string fields.
func decryptApple(t *testing.T, key *ecdh.PrivateKey, p applePayload) map[string]string {
	t.Helper()
	plain, err := openApple(key, p)
	if err != nil {
		t.Fatalf("EncryptedData does not decrypt with the device key: %v", err)
	}
	var fields map[string]string
	if err := json.Unmarshal(plain, &fields); err != nil {
		t.Fatalf("plaintext is not a JSON object of strings: %v", err)
	}
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, []string{"expiration", "name", "nonce", "nonceSignature", "primaryAccountNumber"}) {
		t.Errorf("plaintext fields %v", got)
	}
	return fields
}

// verifyTAV checks the activation data: base64 JSON whose RSA-SHA256
// signature over "dataValidUntilTimestamp|accountNumber|accountExpiry"
// verifies with the sandbox TAV key, valid until now + 30 minutes.
func verifyTAV(t *testing.T, s *apptest.Server, tav, pan, expiryMMYY string, now time.Time) {
	t.Helper()
	keyPEM, err := os.ReadFile(filepath.Join(s.Options.DataDir, "sandbox-mastercard-tav-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := mastercard.DecodeRSAKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(tav)
	if err != nil {
		t.Fatalf("activation data is not standard base64: %v", err)
	}
	if strings.Contains(string(raw), pan) {
		t.Error("activation data carries the card number in clear")
	}
	var f map[string]string
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("activation data is not a JSON object of strings: %v", err)
	}
	if got := slices.Sorted(maps.Keys(f)); !slices.Equal(got, []string{"dataValidUntilTimestamp", "includedFieldsInOrder", "signature", "signatureAlgorithm", "version"}) {
		t.Errorf("TAV fields %v", got)
	}
	if f["version"] == "" || f["signatureAlgorithm"] != "RSA-SHA256" || f["includedFieldsInOrder"] != "dataValidUntilTimestamp|accountNumber|accountExpiry" {
		t.Errorf("TAV header fields: %v", f)
	}
	wantUntil := now.Add(30 * time.Minute).UTC().Format("2006-01-02T15:04:05.000Z")
	if f["dataValidUntilTimestamp"] != wantUntil {
		t.Errorf("dataValidUntilTimestamp = %q, want %q (now + 30 min)", f["dataValidUntilTimestamp"], wantUntil)
	}
	sig, err := base64.StdEncoding.DecodeString(f["signature"])
	if err != nil {
		t.Fatalf("TAV signature is not base64: %v", err)
	}
	digest := sha256.Sum256([]byte(f["dataValidUntilTimestamp"] + "|" + pan + "|" + expiryMMYY))
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("TAV signature does not verify for this card: %v", err)
	}
}

// opc is the Google Pay Opaque Payment Card inside "data".
type opc struct {
	FundingAccountInfo struct {
		EncryptedPayload struct {
			PublicKeyFingerprint string `json:"publicKeyFingerprint"`
			EncryptedKey         string `json:"encryptedKey"`
			OAEPHashingAlgorithm string `json:"oaepHashingAlgorithm"`
			IV                   string `json:"iv"`
			EncryptedData        string `json:"encryptedData"`
		} `json:"encryptedPayload"`
	} `json:"fundingAccountInfo"`
	TokenizationAuthenticationValue string `json:"tokenizationAuthenticationValue"`
}

// opcPlain is the decrypted card and holder data of an OPC.
type opcPlain struct {
	CardAccountData struct {
		AccountNumber string `json:"accountNumber"`
		ExpiryMonth   string `json:"expiryMonth"`
		ExpiryYear    string `json:"expiryYear"`
	} `json:"cardAccountData"`
	AccountHolderData struct {
		AccountHolderName    string `json:"accountHolderName"`
		AccountHolderAddress struct {
			Line1              string `json:"line1"`
			Line2              string `json:"line2"`
			City               string `json:"city"`
			CountrySubdivision string `json:"countrySubdivision"`
			PostalCode         string `json:"postalCode"`
			Country            string `json:"country"`
		} `json:"accountHolderAddress"`
		AccountHolderMobilePhoneNumber struct {
			CountryDialInCode string `json:"countryDialInCode"`
			PhoneNumber       string `json:"phoneNumber"`
		} `json:"accountHolderMobilePhoneNumber"`
	} `json:"accountHolderData"`
	Source                  string `json:"source"`
	DataValidUntilTimestamp string `json:"dataValidUntilTimestamp"`
}

func decodeStrict(t *testing.T, what string, raw []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v: %s", what, err, raw)
	}
}

// decryptGoogle decodes and decrypts an OPC with the sandbox payload
// encryption private key: RSA-OAEP unwraps the AES key, AES-256-CBC with
// PKCS#7 padding decrypts the card data.
func decryptGoogle(t *testing.T, s *apptest.Server, data string) (opc, opcPlain) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatalf("data is not standard base64: %v", err)
	}
	var o opc
	decodeStrict(t, "OPC", raw, &o)
	keyPEM, err := os.ReadFile(filepath.Join(s.Options.DataDir, "sandbox-mastercard-pepk-private-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := mastercard.DecodeRSAKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ep := o.FundingAccountInfo.EncryptedPayload
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(der); ep.PublicKeyFingerprint != hex.EncodeToString(sum[:]) {
		t.Errorf("publicKeyFingerprint %q is not the SHA-256 of the sandbox key", ep.PublicKeyFingerprint)
	}
	var h hash.Hash
	switch ep.OAEPHashingAlgorithm {
	case "SHA512":
		h = sha512.New()
	case "SHA256":
		h = sha256.New()
	default:
		t.Fatalf("oaepHashingAlgorithm %q", ep.OAEPHashingAlgorithm)
	}
	wrapped, err1 := hex.DecodeString(ep.EncryptedKey)
	iv, err2 := hex.DecodeString(ep.IV)
	ciphertext, err3 := hex.DecodeString(ep.EncryptedData)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("encryptedKey, iv and encryptedData must be hex: %v %v %v", err1, err2, err3)
	}
	aesKey, err := rsa.DecryptOAEP(h, nil, key, wrapped, nil)
	if err != nil {
		t.Fatalf("encryptedKey does not unwrap: %v", err)
	}
	if len(aesKey) != 32 || len(iv) != 16 || len(ciphertext) == 0 || len(ciphertext)%16 != 0 {
		t.Fatalf("AES key %d bytes, IV %d bytes, ciphertext %d bytes", len(aesKey), len(iv), len(ciphertext))
	}
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		t.Fatal(err)
	}
	padded := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(padded, ciphertext)
	n := int(padded[len(padded)-1])
	if n < 1 || n > 16 || !bytes.Equal(padded[len(padded)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		t.Fatalf("bad PKCS#7 padding")
	}
	var p opcPlain
	decodeStrict(t, "OPC plaintext", padded[:len(padded)-n], &p)
	return o, p
}

// networkSecret is the sandbox HMAC key of network notifications.
func networkSecret(t testing.TB, s *apptest.Server) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Options.DataDir, "sandbox-network-secret"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSpace(string(b)))
}

// signNetwork returns the notification headers for body at ts, signed with secret.
func signNetwork(secret []byte, ts int64, body string) map[string]string {
	stamp := strconv.FormatInt(ts, 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(stamp + "." + body))
	return map[string]string{
		"x-network-timestamp": stamp,
		"x-network-signature": "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)),
	}
}

func notification(id, event, wallet, tokenRef, pan string) string {
	b, _ := json.Marshal(map[string]string{"notificationId": id, "eventType": event, "wallet": wallet,
		"tokenUniqueReference": tokenRef, "accountNumber": pan})
	return string(b)
}

// notify posts a notification signed with the sandbox secret at the server's now.
func notify(t *testing.T, s *apptest.Server, body string) *apptest.Response {
	t.Helper()
	return s.Do(t, "POST", notificationsPath, signNetwork(networkSecret(t, s), s.Clock.Now().Unix(), body), body)
}

// freshPAN returns a random 16-digit Mastercard-range number with a valid
// Luhn check digit.
func freshPAN(t testing.TB) string {
	t.Helper()
	digits := []byte("5")
	for len(digits) < 15 {
		n, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			t.Fatal(err)
		}
		digits = append(digits, byte('0'+n.Int64()))
	}
	return string(digits) + string(byte('0'+luhnCheckDigit(string(digits))))
}

func luhnCheckDigit(payload string) int {
	sum := 0
	double := true // the digit left of the check digit is doubled
	for i := len(payload) - 1; i >= 0; i-- {
		d := int(payload[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return (10 - sum%10) % 10
}

// cardBody is an admin create body; edit mutates the decoded map before encoding.
func cardBody(proxy, pan string, edit func(m map[string]any)) string {
	m := map[string]any{
		"proxy": proxy, "cardNumber": pan, "expiryMonth": 11, "expiryYear": 2029, "name": "JOÃO PEREIRA",
		"phoneNumber": "11987654321", "brand": "Mastercard",
		"address": map[string]any{"zipCode": "01310100", "address": "Avenida Paulista", "number": "1000",
			"neighborhood": "Bela Vista", "complement": "Conj. 42", "city": "São Paulo", "state": "SP", "country": "Brasil"},
	}
	if edit != nil {
		edit(m)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// cardJSON is the admin API's card.
type cardJSON struct {
	Proxy          string          `json:"proxy"`
	LastFourDigits string          `json:"lastFourDigits"`
	ExpiryMonth    int             `json:"expiryMonth"`
	ExpiryYear     int             `json:"expiryYear"`
	Name           string          `json:"name"`
	PhoneNumber    string          `json:"phoneNumber"`
	Address        json.RawMessage `json:"address"`
	Brand          string          `json:"brand"`
	Status         string          `json:"status"`
	CreatedAt      string          `json:"createdAt"`
	UpdatedAt      string          `json:"updatedAt"`
}

// createCard registers a card through the admin API and fails unless 201.
func createCard(t *testing.T, s *apptest.Server, token, proxy, pan, status string) cardJSON {
	t.Helper()
	r := s.Do(t, "POST", "/admin/v1/cards", authz(token), cardBody(proxy, pan, func(m map[string]any) {
		if status != "" {
			m["status"] = status
		}
	}))
	if r.Status != 201 {
		t.Fatalf("create card %s: %d %s", proxy, r.Status, r.Body)
	}
	var c cardJSON
	decodeStrict(t, "card", r.Body, &c)
	return c
}

// cardScopes are every card scope, for a second partner application.
var cardScopes = []string{"card.pci.token.create", "card.pci.wallet.read", "card.admin.read", "card.admin.write"}

// otherApp registers a second partner application and returns a token for it.
func otherApp(t *testing.T, s *apptest.Server, companyKey string) string {
	t.Helper()
	a, secret, err := s.App.Apps.Create(t.Context(), auth.NewApplication{Name: "Other partner " + companyKey, CompanyKey: companyKey, Scopes: cardScopes})
	if err != nil {
		t.Fatal(err)
	}
	return s.TokenFor(t, a.ClientID, secret, "")
}
