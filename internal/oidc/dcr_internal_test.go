package oidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/directory"
)

func TestCheckWebhookURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		uri      string
		loopback bool
		ok       bool
	}{
		{"https://itp.example", false, true},
		{"https://itp.example/kong3/hooks", false, true},
		{"https://itp.example:8443/hooks", false, true},
		{"https://itp.example/hooks/", false, false},
		{"https://itp.example/hooks?x=1", false, false},
		{"https://itp.example/hooks#f", false, false},
		{"https://itp.example//hooks", false, false},
		{"http://itp.example/hooks", false, false},
		{"http://itp.example/hooks", true, false},
		{"http://127.0.0.1:9000/hooks", false, false},
		{"http://127.0.0.1:9000/hooks", true, true},
		{"http://localhost:9000", true, true},
		{"http://[::1]:9000/hooks", true, true},
		{"ftp://itp.example/hooks", true, false},
		{"https://", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		if err := CheckWebhookURI(tt.uri, tt.loopback); (err == nil) != tt.ok {
			t.Errorf("CheckWebhookURI(%q, %v) = %v, want ok %v", tt.uri, tt.loopback, err, tt.ok)
		}
	}
}

// certificate makes a parsed certificate with subject attributes (OID → value).
func certificate(t *testing.T, ou string, attrs map[string]string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subject := pkix.Name{CommonName: "itp.example"}
	if ou != "" {
		subject.OrganizationalUnit = []string{ou}
	}
	for oid, v := range attrs {
		switch oid {
		case "uid":
			subject.ExtraNames = append(subject.ExtraNames, pkix.AttributeTypeAndValue{Type: oidUID, Value: v})
		case "orgIdentifier":
			subject.ExtraNames = append(subject.ExtraNames, pkix.AttributeTypeAndValue{Type: oidOrganizationIdentifier, Value: v})
		}
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestCheckCertificate: under mutual TLS the certificate's UID must be the
// statement's software_id and its organizationIdentifier OFBBR-{org_id}
// (or, on older certificates, an OU of org_id).
func TestCheckCertificate(t *testing.T) {
	t.Parallel()
	const org, software = "7f3c2a10-5b6d-4e8f-9a1b-2c3d4e5f6a7b", "5c0b1f2e-3d4a-4b5c-8d6e-7f8091a2b3c4"
	st := &directory.SoftwareStatement{OrgID: org, SoftwareID: software}
	tests := []struct {
		name      string
		mutualTLS bool
		cert      *x509.Certificate
		want      goidc.ErrorCode // "" accepted
	}{
		{"plain HTTP: nothing to match", false, nil, ""},
		{"current certificate", true, certificate(t, "", map[string]string{"uid": software, "orgIdentifier": "OFBBR-" + org}), ""},
		{"certificate before September 2022", true, certificate(t, org, map[string]string{"uid": software}), ""},
		{"no certificate", true, nil, goidc.ErrorCodeInvalidClientMetadata},
		{"another software", true, certificate(t, "", map[string]string{"uid": "another", "orgIdentifier": "OFBBR-" + org}), ErrorCodeUnapprovedSoftwareStatement},
		{"another organisation", true, certificate(t, "", map[string]string{"uid": software, "orgIdentifier": "OFBBR-" + "another"}), ErrorCodeUnapprovedSoftwareStatement},
		{"organisation without the OFBBR- prefix", true, certificate(t, "", map[string]string{"uid": software, "orgIdentifier": org}), ErrorCodeUnapprovedSoftwareStatement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, PathRegister, nil)
			if tt.cert != nil {
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tt.cert}, VerifiedChains: [][]*x509.Certificate{{tt.cert}}}
			}
			err := registrar{mutualTLS: tt.mutualTLS}.checkCertificate(r, st)
			var gerr goidc.Error
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (!errors.As(err, &gerr) || gerr.Code != tt.want):
				t.Errorf("err = %v, want %s", err, tt.want)
			}
		})
	}
}

// TestRegistrationToken: the storage keeps a hash; the plain token is given
// back to go-oidc only when the request presented it, never for the hash.
func TestRegistrationToken(t *testing.T) {
	t.Parallel()
	stored := hashRegistrationToken("the-token")
	if !strings.HasPrefix(stored, registrationTokenPrefix) || strings.Contains(stored, "the-token") {
		t.Fatalf("stored = %q", stored)
	}
	for presented, want := range map[string]string{"the-token": "the-token", "": "", "other": "", stored: ""} {
		ctx := t.Context()
		if presented != "" {
			ctx = withRegistrationRequest(ctx, &registrationRequest{token: presented})
		}
		if got := registeredToken(ctx, stored); got != want {
			t.Errorf("presented %q: registeredToken = %q, want %q", presented, got, want)
		}
	}
	if got := registeredToken(withRegistrationRequest(t.Context(), &registrationRequest{token: "x"}), ""); got != "" {
		t.Errorf("a client without a registration token matched: %q", got)
	}
}

// FuzzDefaultScope: whatever the body, defaultScope never fails on JSON,
// and when it rewrites the body the result is a JSON object with a string
// scope and every other member unchanged.
func FuzzDefaultScope(f *testing.F) {
	for _, seed := range []string{
		`{"software_statement":"a.b.c","redirect_uris":["https://x.example/cb"]}`,
		`{"scope":""}`, `{"scope":"openid payments"}`, `{"scope":42}`, `{"scope":null}`, `[]`, `null`, `{`, ``,
		`{"scope":"  ","jwks_uri":"https://k.example/a.jwks"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, PathRegister, strings.NewReader(body))
		req := &registrationRequest{}
		if err := defaultScope(r, req); err != nil {
			t.Fatalf("defaultScope: %v", err)
		}
		out, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !req.noScope {
			if string(out) != body {
				t.Fatalf("body changed without a default scope: %q → %q", body, out)
			}
			return
		}
		var before, after map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &before) != nil || json.Unmarshal(out, &after) != nil {
			t.Fatalf("rewrote a body that is not a JSON object: %q → %q", body, out)
		}
		if string(after["scope"]) != `"openid"` || len(after) != len(before)+boolInt(before["scope"] == nil) {
			t.Fatalf("rewritten body %q from %q", out, body)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSubjectMatches: tls_client_auth_subject_dn is compared with the
// certificate's subject by distinguishedNameMatch, in DCR-BR's format
// (descriptors, OIDs with #hex DER values) or Go's, in any order.
func TestSubjectMatches(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	oid := func(s string) asn1ObjectIdentifier { return mustOID(t, s) }
	subject := pkix.Name{
		Country: []string{"BR"}, Province: []string{"DF"}, Locality: []string{"BRASILIA"}, Organization: []string{"My Public Bank"},
		OrganizationalUnit: []string{"497e1ffe-b2a2-4a4e-8ef0-70633fd11b59"}, CommonName: "mycn.bank.gov.br",
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oid("0.9.2342.19200300.100.1.1"), Value: "67c57882-043b-11ec-9a03-0242ac130003"},
			{Type: oid("1.3.6.1.4.1.311.60.2.1.3"), Value: "BR"},
			{Type: oid("2.5.4.15"), Value: "Private Organization"},
			{Type: oid("2.5.4.5"), Value: "13353236000189"},
		},
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dn      string
		match   bool
		invalid bool
	}{
		// DCR-BR's first example of a subject_dn.
		{"UID=67c57882-043b-11ec-9a03-0242ac130003,1.3.6.1.4.1.311.60.2.1.3=#13024252,2.5.4.15=#131450726976617465204f7267616e697a6174696f6e," +
			"2.5.4.5=#130e3133333533323336303030313839,CN=mycn.bank.gov.br,OU=497e1ffe-b2a2-4a4e-8ef0-70633fd11b59,O=My Public Bank,L=BRASILIA,ST=DF,C=BR", true, false},
		// Other order, other case, UTF8String instead of PrintableString.
		{"c=br,st=df,l=brasilia,o=MY PUBLIC BANK,ou=497E1FFE-B2A2-4A4E-8EF0-70633FD11B59,cn=MYCN.bank.gov.br,2.5.4.5=#0c0e3133333533323336303030313839," +
			"2.5.4.15=Private Organization,1.3.6.1.4.1.311.60.2.1.3=BR,0.9.2342.19200300.100.1.1=67c57882-043b-11ec-9a03-0242ac130003", true, false},
		{cert.Subject.String(), true, false},
		{"CN=mycn.bank.gov.br,O=My Public Bank", false, false},
		{"UID=another,1.3.6.1.4.1.311.60.2.1.3=#13024252,2.5.4.15=#131450726976617465204f7267616e697a6174696f6e," +
			"2.5.4.5=#130e3133333533323336303030313839,CN=mycn.bank.gov.br,OU=497e1ffe-b2a2-4a4e-8ef0-70633fd11b59,O=My Public Bank,L=BRASILIA,ST=DF,C=BR", false, false},
		{"businessCategory=Private Organization", false, true},
		{"CN", false, true},
		{"2.5.4.5=#zz", false, true},
		{"", false, true},
	}
	for _, tt := range tests {
		ok, err := subjectMatches(tt.dn, cert)
		if ok != tt.match || (err != nil) != tt.invalid {
			t.Errorf("subjectMatches(%q) = %v, %v; want %v, invalid %v", tt.dn, ok, err, tt.match, tt.invalid)
		}
	}
}

type asn1ObjectIdentifier = asn1.ObjectIdentifier

func mustOID(t *testing.T, s string) asn1.ObjectIdentifier {
	t.Helper()
	var oid asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		n := 0
		for _, c := range p {
			n = n*10 + int(c-'0')
		}
		oid = append(oid, n)
	}
	return oid
}

// FuzzParseDN: parsing a tls_client_auth_subject_dn never panics, and what
// it accepts has attributes with an OID each.
func FuzzParseDN(f *testing.F) {
	for _, seed := range []string{"CN=a,O=b", `CN=a\,b+UID=c`, "2.5.4.97=#132a4f464242522d", "UID=x,,", "=", `CN=\`, "1.2.3=#13"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		attrs, err := parseDN(dn)
		if err != nil {
			return
		}
		for _, a := range attrs {
			if !isOID(a.oid) {
				t.Fatalf("parseDN(%q) gave attribute type %q", dn, a.oid)
			}
		}
	})
}
