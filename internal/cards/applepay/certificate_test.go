package applepay

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// certSpec describes a test certificate; zero values give an Apple-like leaf.
type certSpec struct {
	cn        string
	key       crypto.Signer // nil: fresh P-256
	ca        bool
	usage     x509.KeyUsage // 0: KeyAgreement|KeyEncipherment (or CertSign for CAs)
	noMarker  bool
	notBefore time.Time
	notAfter  time.Time
}

type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// issue creates a certificate from spec signed by parent (self-signed if nil).
func issue(t testing.TB, spec certSpec, parent *testCert) *testCert {
	t.Helper()
	key := spec.key
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	if spec.notBefore.IsZero() {
		spec.notBefore = testNow.Add(-24 * time.Hour)
	}
	if spec.notAfter.IsZero() {
		spec.notAfter = testNow.Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: spec.cn},
		NotBefore:             spec.notBefore,
		NotAfter:              spec.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  spec.ca,
		KeyUsage:              spec.usage,
	}
	if tmpl.KeyUsage == 0 {
		tmpl.KeyUsage = x509.KeyUsageKeyAgreement | x509.KeyUsageKeyEncipherment
		if spec.ca {
			tmpl.KeyUsage = x509.KeyUsageCertSign
		}
	}
	if !spec.ca && !spec.noMarker {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: markerOID(), Critical: true, Value: []byte{5, 0}}}
	}
	parentCert, parentKey := tmpl, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: cert, key: key}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestVerify(t *testing.T) {
	root := issue(t, certSpec{cn: "root", ca: true}, nil)
	otherRoot := issue(t, certSpec{cn: "other root", ca: true}, nil)
	sub := issue(t, certSpec{cn: "sub-CA", ca: true}, root)
	expiredSub := issue(t, certSpec{cn: "old sub-CA", ca: true, notAfter: testNow.Add(-time.Hour)}, root)

	leaf := issue(t, certSpec{cn: "leaf"}, sub)
	noMarker := issue(t, certSpec{cn: "no marker", noMarker: true}, sub)
	expired := issue(t, certSpec{cn: "expired", notAfter: testNow.Add(-time.Minute)}, sub)
	notYet := issue(t, certSpec{cn: "future", notBefore: testNow.Add(time.Minute)}, sub)
	noAgreement := issue(t, certSpec{cn: "encipher only", usage: x509.KeyUsageKeyEncipherment}, sub)
	underOldSub := issue(t, certSpec{cn: "under expired sub"}, expiredSub)

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	onP384 := issue(t, certSpec{cn: "p384", key: p384}, sub)
	onRSA := issue(t, certSpec{cn: "rsa", key: rsaKey}, sub)

	fixed := func() time.Time { return testNow }
	prod := Verifier{Roots: pool(root.cert), Now: fixed, RequireMarker: true}

	tests := []struct {
		name    string
		v       Verifier
		chain   []*x509.Certificate
		wantErr error
	}{
		{"valid chain", prod, []*x509.Certificate{leaf.cert, sub.cert}, nil},
		{"valid chain with root included", prod, []*x509.Certificate{leaf.cert, sub.cert, root.cert}, nil},
		{"marker optional and absent", Verifier{Roots: pool(root.cert), Now: fixed}, []*x509.Certificate{noMarker.cert, sub.cert}, nil},
		{"marker required and absent", prod, []*x509.Certificate{noMarker.cert, sub.cert}, ErrUntrusted},
		{"expired leaf", prod, []*x509.Certificate{expired.cert, sub.cert}, ErrExpired},
		{"leaf not yet valid", prod, []*x509.Certificate{notYet.cert, sub.cert}, ErrExpired},
		{"expired intermediate", prod, []*x509.Certificate{underOldSub.cert, expiredSub.cert}, ErrExpired},
		{"P-384 leaf", prod, []*x509.Certificate{onP384.cert, sub.cert}, ErrWrongCurve},
		{"RSA leaf", prod, []*x509.Certificate{onRSA.cert, sub.cert}, ErrWrongCurve},
		{"wrong root", Verifier{Roots: pool(otherRoot.cert), Now: fixed, RequireMarker: true}, []*x509.Certificate{leaf.cert, sub.cert}, ErrUntrusted},
		{"missing intermediate", prod, []*x509.Certificate{leaf.cert}, ErrUntrusted},
		{"missing key agreement", prod, []*x509.Certificate{noAgreement.cert, sub.cert}, ErrKeyUsage},
		{"no roots configured", Verifier{Now: fixed}, []*x509.Certificate{leaf.cert, sub.cert}, ErrUntrusted},
		{"empty chain", prod, nil, ErrNoCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.chain) > 0 && len(tt.chain[0].UnhandledCriticalExtensions) > 0
			pub, err := tt.v.Verify(tt.chain)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
				}
				if !IsCertificateError(err) {
					t.Errorf("IsCertificateError(%v) = false", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want, err := tt.chain[0].PublicKey.(*ecdsa.PublicKey).ECDH()
			if err != nil {
				t.Fatal(err)
			}
			if !pub.Equal(want) {
				t.Error("Verify returned a key other than the leaf's")
			}
			if after := len(tt.chain[0].UnhandledCriticalExtensions) > 0; after != before {
				t.Error("Verify modified the caller's certificate")
			}
		})
	}
}

// TestVerifyUsesNow checks that the same chain passes or fails purely by the
// injected clock, not the wall clock.
func TestVerifyUsesNow(t *testing.T) {
	root := issue(t, certSpec{cn: "root", ca: true}, nil)
	leaf := issue(t, certSpec{cn: "leaf", notBefore: testNow, notAfter: testNow.Add(time.Hour)}, root)
	for _, tc := range []struct {
		at      time.Time
		wantErr error
	}{
		{testNow.Add(30 * time.Minute), nil},
		{testNow.Add(2 * time.Hour), ErrExpired},
		{testNow.Add(-time.Second), ErrExpired},
	} {
		v := Verifier{Roots: pool(root.cert), Now: func() time.Time { return tc.at }, RequireMarker: true}
		if _, err := v.Verify([]*x509.Certificate{leaf.cert}); !errors.Is(err, tc.wantErr) {
			t.Errorf("at %s: err = %v, want %v", tc.at, err, tc.wantErr)
		}
	}
}

func pemOf(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

func TestParseCertificates(t *testing.T) {
	root := issue(t, certSpec{cn: "root", ca: true}, nil)
	leaf := issue(t, certSpec{cn: "leaf"}, root)
	two := pemOf(leaf.cert, root.cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(leaf.key)
	if err != nil {
		t.Fatal(err)
	}
	keyBlock := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	badDER := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}))
	truncated := two[:len(two)-40]

	tests := []struct {
		name    string
		in      string
		want    int
		wantErr error
	}{
		{"one certificate", pemOf(leaf.cert), 1, nil},
		{"leaf and intermediate", two, 2, nil},
		{"CRLF and surrounding blank lines", "\r\n" + strings.ReplaceAll(two, "\n", "\r\n") + "\r\n\r\n", 2, nil},
		{"empty", "", 0, ErrNoCertificate},
		{"whitespace", " \n\t ", 0, ErrNoCertificate},
		{"garbage", "hello, world", 0, ErrNoCertificate},
		{"base64 DER without armour", "MIIBszCCAVmgAwIBAgIBATAKBggqhkjOPQQDAjAP", 0, ErrNoCertificate},
		{"private key block", keyBlock, 0, ErrMalformed},
		{"private key after certificate", pemOf(leaf.cert) + keyBlock, 0, ErrMalformed},
		{"invalid DER", badDER, 0, ErrMalformed},
		{"text before certificate", "Bag Attributes\n" + two, 0, ErrMalformed},
		{"text after certificate", two + "trailing", 0, ErrMalformed},
		{"truncated second block", truncated, 0, ErrMalformed},
		{"too many certificates", strings.Repeat(pemOf(leaf.cert), maxCertificates+1), 0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCertificates(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !IsCertificateError(err) {
					t.Errorf("IsCertificateError(%v) = false", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCertificates: %v", err)
			}
			if len(got) != tt.want {
				t.Fatalf("got %d certificates, want %d", len(got), tt.want)
			}
			if !got[0].Equal(leaf.cert) {
				t.Error("first certificate is not the leaf")
			}
		})
	}
}

func FuzzParseCertificates(f *testing.F) {
	root := issue(f, certSpec{cn: "root", ca: true}, nil)
	leaf := issue(f, certSpec{cn: "leaf"}, root)
	f.Add(pemOf(leaf.cert, root.cert))
	f.Add(pemOf(leaf.cert))
	f.Add("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	f.Add("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, in string) {
		certs, err := ParseCertificates(in)
		if err != nil {
			if certs != nil {
				t.Fatal("certificates returned with an error")
			}
			if !IsCertificateError(err) {
				t.Fatalf("error %v is not a certificate error", err)
			}
			return
		}
		if len(certs) == 0 || len(certs) > maxCertificates {
			t.Fatalf("got %d certificates", len(certs))
		}
		// What parsed must re-encode to something that parses the same.
		again, err := ParseCertificates(pemOf(certs...))
		if err != nil || len(again) != len(certs) {
			t.Fatalf("re-encoded chain: %d certificates, err %v", len(again), err)
		}
		for i := range certs {
			if !certs[i].Equal(again[i]) {
				t.Fatalf("certificate %d changed on re-encoding", i)
			}
		}
	})
}
