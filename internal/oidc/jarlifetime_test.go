package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func signedClaims(t testing.TB, alg jose.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestRequestObjectTimes(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ps256 := func(c map[string]any) string { return signedClaims(t, jose.PS256, key, c) }
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"nbf":100,"exp":200}`))
	tests := []struct {
		name     string
		raw      string
		nbf, exp int64
		ok       bool
	}{
		{"both", ps256(map[string]any{"nbf": 1000, "exp": 4600}), 1000, 4600, true},
		{"fractional", ps256(map[string]any{"nbf": 1000.5, "exp": 4600.9}), 1000, 4600, true},
		{"no nbf", ps256(map[string]any{"exp": 4600}), 0, 0, false},
		{"no exp", ps256(map[string]any{"nbf": 1000}), 0, 0, false},
		{"exp not a number", ps256(map[string]any{"nbf": 1000, "exp": "soon"}), 0, 0, false},
		{"RS256", signedClaims(t, jose.RS256, key, map[string]any{"nbf": 1, "exp": 2}), 0, 0, false},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + payload + ".", 0, 0, false},
		{"empty", "", 0, 0, false},
		{"not a JWS", "a.b", 0, 0, false},
		{"five parts (JWE)", "a.b.c.d.e", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nbf, exp, ok := requestObjectTimes(tt.raw)
			if nbf != tt.nbf || exp != tt.exp || ok != tt.ok {
				t.Errorf("requestObjectTimes = %d, %d, %t; want %d, %d, %t", nbf, exp, ok, tt.nbf, tt.exp, tt.ok)
			}
		})
	}
}

func FuzzRequestObjectTimes(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signedClaims(f, jose.PS256, key, map[string]any{"nbf": 1000, "exp": 4600}))
	f.Add(signedClaims(f, jose.PS256, key, map[string]any{"nbf": -1e300, "exp": 1e300}))
	f.Add("eyJhbGciOiJQUzI1NiJ9.e30.c2ln")
	f.Add("a.b.c.d.e")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		if _, _, ok := requestObjectTimes(raw); ok && strings.Count(raw, ".") != 2 {
			t.Fatalf("times read from %q, which is no compact JWS", raw)
		}
	})
}

// TestRequestObjectLifetime: the PAR guard refuses a request object living
// more than 60 minutes, with go-oidc's error shape, and passes everything
// else, body intact, to the server.
func TestRequestObjectLifetime(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var reached string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reached = string(b)
		w.WriteHeader(http.StatusCreated)
	})
	srv := httptest.NewServer(requestObjectLifetime(next, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	tests := []struct {
		name     string
		nbf, exp int64
		want     int
	}{
		{"60 minutes", 0, 3600, http.StatusCreated},
		{"60 minutes and a second", 0, 3601, http.StatusBadRequest},
		{"two hours", -3600, 3600, http.StatusBadRequest},
		{"exp before nbf", 10, 0, http.StatusCreated}, // go-oidc's to refuse
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached = ""
			body := url.Values{"client_id": {"c1"}, "request": {signedClaims(t, jose.PS256, key, map[string]any{"nbf": tt.nbf, "exp": tt.exp})}}.Encode()
			resp, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusCreated {
				if reached != body {
					t.Errorf("the server read %q, want the whole body", reached)
				}
				return
			}
			var e struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if e.Error != string(goidc.ErrorCodeInvalidResquestObject) || !strings.Contains(e.ErrorDescription, "60 minutes") || reached != "" {
				t.Errorf("refusal %+v (server reached: %t)", e, reached != "")
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// TestPushedRequestOneAuthorize: once /oauth/authorize has taken a pushed
// request up (given it a callback id), its request_uri no longer opens an
// authorization, while consent-flow tickets (PushedRequest) still find it
// for its 60 seconds.
func TestPushedRequestOneAuthorize(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := NewStorage(db, clock.NewFake(epoch))
		m := s.AuthnSessions()
		const uri = RequestURIPrefix + "one-use"
		as := &goidc.AuthnSession{ID: "s1", ClientID: "c1", PushedAuthReqID: uri, ExpiresAtTimestamp: goidc.TimestampNow() + 60}
		if err := m.Save(ctx, as); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SessionByPushedAuthReqID(ctx, uri); err != nil {
			t.Fatalf("fresh pushed request: %v", err)
		}
		as.CallbackID = "cb-1" // go-oidc keeps the request_uri while the user is at the holder
		if err := m.Save(ctx, as); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SessionByPushedAuthReqID(ctx, uri); !errors.Is(err, ErrNotFound) {
			t.Fatalf("taken-up pushed request at /oauth/authorize: err = %v, want ErrNotFound", err)
		}
		if _, err := m.SessionByCallbackID(ctx, "cb-1"); err != nil {
			t.Fatalf("the journey's callback: %v", err)
		}
		err := db.Write(ctx, func(tx *sql.Tx) error {
			_, err := s.PushedRequest(ctx, tx, uri, "c1")
			return err
		})
		if err != nil {
			t.Fatalf("a ticket's lookup of the taken-up request: %v", err)
		}
	})
}
