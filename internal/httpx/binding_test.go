package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fixedVerifier struct{ p *Principal }

func (v fixedVerifier) VerifyAccessToken(context.Context, string) (*Principal, error) {
	cp := *v.p
	return &cp, nil
}

// TestRequireScopeChecksCertificateBinding: a token with cnf.x5t#S256 is
// only accepted on a request presenting that verified client certificate.
func TestRequireScopeChecksCertificateBinding(t *testing.T) {
	certA := &x509.Certificate{Raw: []byte("certificate A")}
	certB := &x509.Certificate{Raw: []byte("certificate B")}
	verified := func(c *x509.Certificate) *tls.ConnectionState {
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
	}
	tests := []struct {
		name  string
		bound string
		tls   *tls.ConnectionState
		want  int
	}{
		{"unbound, plain HTTP", "", nil, http.StatusOK},
		{"unbound, with certificate", "", verified(certB), http.StatusOK},
		{"bound, same certificate", CertThumbprint(certA), verified(certA), http.StatusOK},
		{"bound, other certificate", CertThumbprint(certA), verified(certB), http.StatusUnauthorized},
		{"bound, TLS without certificate", CertThumbprint(certA), &tls.ConnectionState{}, http.StatusUnauthorized},
		{"bound, plain HTTP", CertThumbprint(certA), nil, http.StatusUnauthorized},
		{"bound, unverified certificate", CertThumbprint(certA), &tls.ConnectionState{PeerCertificates: []*x509.Certificate{certA}}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := fixedVerifier{&Principal{ClientID: "c", Scopes: []string{"s"}, CertThumbprint: tt.bound}}
			h := RequireScope(v, "s", Bankly{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set("Authorization", "Bearer t")
			r.TLS = tt.tls
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want == http.StatusUnauthorized {
				if !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) || !strings.Contains(w.Body.String(), "invalid_token") {
					t.Errorf("refusal: %v %s", w.Header(), w.Body)
				}
			}
		})
	}
}

// TestCertThumbprint is RFC 8705's x5t#S256: base64url(SHA-256(DER)), unpadded.
func TestCertThumbprint(t *testing.T) {
	// SHA-256("abc"), RFC 6234 test vector.
	got := CertThumbprint(&x509.Certificate{Raw: []byte("abc")})
	if want := "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
