package directory

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/clock"
)

var epoch = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

const (
	testIssuer   = "Test Directory SSA issuer"
	testKeystore = "https://keystore.test"
	testOrg      = "b961c4eb-509d-4edf-afeb-35642b38185d"
	testSoftware = "25556d5a-b9dd-4e27-aa1a-cce732fe74de"
)

func newKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign returns claims as a compact JWS signed by key with alg, naming kid.
func sign(t testing.TB, key any, alg jose.SignatureAlgorithm, kid string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims is a valid statement's claims issued at iat, as a map so cases
// can drop or change any of them.
func claims(iat time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "iat": iat.Unix(),
		"org_id": testOrg, "org_name": "Open Banking Brasil", "org_status": "Active", "org_number": "13353236000189",
		"software_id": testSoftware, "software_client_name": "Raidiam Accounting", "software_status": "Active",
		"software_version":          1.10,
		"software_jwks_uri":         KeystoreJWKSURI(testKeystore, testOrg, testSoftware),
		"software_redirect_uris":    []string{"https://www.raidiam.com/accounting/cb"},
		"software_api_webhook_uris": []string{"https://www.myitp.com/mykong3"},
		"software_roles":            []string{"DADOS", "PAGTO"},
		"software_statement_roles": []map[string]string{
			{"role": "DADOS", "authorisation_domain": "Open Banking", "status": "Active"},
			{"role": "PAGTO", "authorisation_domain": "Open Banking", "status": "Active"},
		},
	}
}

func with(c map[string]any, changes map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func publicSet(key *rsa.PrivateKey, kid string) jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "PS256", Use: "sig"}}}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	key, other := newKey(t), newKey(t)
	clk := clock.NewFake(epoch)
	v := &Verifier{Keys: StaticKeys(publicSet(key, "signer")), Issuer: testIssuer, Keystore: testKeystore, Clock: clk}
	valid := claims(epoch.Add(-time.Minute))
	for _, tc := range []struct {
		name string
		ssa  string
		code string // "" → accepted
		want string // in the description
	}{
		{"valid", sign(t, key, jose.PS256, "signer", valid), "", ""},
		{"issued just now", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"iat": epoch.Unix()})), "", ""},
		{"a few seconds ahead of Ponte's clock", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"iat": epoch.Add(10 * time.Second).Unix()})), "", ""},
		{"forged signature", sign(t, other, jose.PS256, "signer", valid), CodeInvalidStatement, "signature does not verify"},
		{"RS256", sign(t, key, jose.RS256, "signer", valid), CodeInvalidStatement, `signed with "RS256"`},
		{"HS256", sign(t, []byte("0123456789abcdef0123456789abcdef"), jose.HS256, "signer", valid), CodeInvalidStatement, `signed with "HS256"`},
		{"no kid", sign(t, key, jose.PS256, "", valid), CodeInvalidStatement, "no kid"},
		{"unknown kid", sign(t, key, jose.PS256, "nobody", valid), CodeInvalidStatement, `kid "nobody" is not among`},
		{"expired", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"iat": epoch.Add(-5*time.Minute - time.Second).Unix()})), CodeInvalidStatement, "more than 5m0s ago"},
		{"in the future", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"iat": epoch.Add(time.Minute).Unix()})), CodeInvalidStatement, "in the future"},
		{"wrong issuer", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"iss": "Someone else"})), CodeInvalidStatement, `iss "Someone else"`},
		{"no iat", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"iat": nil})), CodeInvalidStatement, "lacks iat"},
		{"missing claims", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"org_id": nil, "software_jwks_uri": nil, "software_redirect_uris": []string{}})),
			CodeInvalidStatement, "lacks org_id, software_jwks_uri, software_redirect_uris"},
		{"no roles at all", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"software_roles": nil, "software_statement_roles": nil})),
			CodeInvalidStatement, "lacks software_statement_roles"},
		{"claim of the wrong type", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"software_redirect_uris": "https://x"})), CodeInvalidStatement, "claims are not"},
		{"redirect not a URL", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"software_redirect_uris": []string{"/cb"}})), CodeInvalidStatement, `"/cb"`},
		{"foreign jwks_uri", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"software_jwks_uri": "https://evil.example/jwks"})), CodeInvalidStatement, "not the Directory keystore's"},
		{"inactive organisation", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"org_status": "Withdrawn"})), CodeUnapprovedStatement, `"Withdrawn"`},
		{"inactive software", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"software_status": "Inactive"})), CodeUnapprovedStatement, `"Inactive"`},
		{"no active role", sign(t, key, jose.PS256, "signer", with(valid, map[string]any{"software_statement_roles": []map[string]string{
			{"role": "PAGTO", "authorisation_domain": "Open Banking", "status": "Inactive"}}})), CodeUnapprovedStatement, "no active role"},
		{"empty", "", CodeInvalidStatement, "empty"},
		{"two parts", "eyJhbGciOiJQUzI1NiJ9.e30", CodeInvalidStatement, "compact JWS"},
		{"garbage", "a.b.c", CodeInvalidStatement, "not a valid JWS"},
		{"unsigned (alg none)", "eyJhbGciOiJub25lIn0." + strings.Split(sign(t, key, jose.PS256, "signer", valid), ".")[1] + ".", CodeInvalidStatement, "not a valid JWS"},
		{"too long", strings.Repeat("a", maxStatementBytes) + "..", CodeInvalidStatement, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := v.Verify(context.Background(), tc.ssa)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if st.OrgID != testOrg || st.SoftwareID != testSoftware || st.SoftwareVersion != "1.1" ||
					!slices.Equal(st.ActiveRoles(), []string{"DADOS", "PAGTO"}) {
					t.Fatalf("statement = %+v", st)
				}
				return
			}
			var se *StatementError
			if !errors.As(err, &se) || se.Code != tc.code || !strings.Contains(se.Description, tc.want) {
				t.Fatalf("Verify error = %v, want %s containing %q", err, tc.code, tc.want)
			}
			sentinel := ErrInvalidStatement
			if tc.code == CodeUnapprovedStatement {
				sentinel = ErrUnapprovedStatement
			}
			if !errors.Is(err, sentinel) || st != nil {
				t.Fatalf("errors.Is(%v, %v) false, or statement %v returned", err, sentinel, st)
			}
		})
	}
}

// TestVerifyRotatedKey: the Directory publishes a new key; a statement
// signed with it verifies once the cache fetched the set again, which the
// unknown kid triggers.
func TestVerifyRotatedKey(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newKey(t), newKey(t)
	var current atomic.Pointer[jose.JSONWebKeySet]
	old := publicSet(oldKey, "k1")
	current.Store(&old)
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Cache-Control", "max-age=3600")
		_ = json.NewEncoder(w).Encode(current.Load())
	}))
	t.Cleanup(srv.Close)
	clk := clock.NewFake(epoch)
	cache := NewJWKSCache(CacheOptions{Clock: clk})
	keys, err := LoadKeys(srv.URL, cache)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Keys: keys, Issuer: testIssuer, Clock: clk}
	if _, err := v.Verify(context.Background(), sign(t, oldKey, jose.PS256, "k1", claims(epoch))); err != nil {
		t.Fatalf("old key: %v", err)
	}
	rotated := publicSet(newKey, "k2")
	current.Store(&rotated)
	clk.Advance(2 * time.Minute) // past the refresh interval, well within max-age
	if _, err := v.Verify(context.Background(), sign(t, newKey, jose.PS256, "k2", claims(clk.Now()))); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (the first use and the unknown kid)", n)
	}
}

func TestVerifyKeysUnavailable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	clk := clock.NewFake(epoch)
	v := &Verifier{Keys: NewJWKSCache(CacheOptions{Clock: clk}).Source(srv.URL), Issuer: testIssuer, Clock: clk}
	_, err := v.Verify(context.Background(), sign(t, newKey(t), jose.PS256, "k1", claims(epoch)))
	var se *StatementError
	if !errors.Is(err, ErrKeysUnavailable) || errors.As(err, &se) {
		t.Fatalf("Verify = %v, want ErrKeysUnavailable and no StatementError", err)
	}
}

func TestActiveRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		st   SoftwareStatement
		want []string
	}{
		{"active statement roles only", SoftwareStatement{SoftwareRoles: []string{"DADOS", "PAGTO"},
			SoftwareStatementRoles: []Role{{Role: "DADOS", Status: "Inactive"}, {Role: "PAGTO", Status: "Active"}, {Role: "PAGTO", Status: "Active"}}}, []string{"PAGTO"}},
		{"software_roles when no statement roles", SoftwareStatement{SoftwareRoles: []string{"DADOS", "DADOS"}}, []string{"DADOS"}},
		{"none", SoftwareStatement{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.ActiveRoles(); !slices.Equal(got, tc.want) {
				t.Fatalf("ActiveRoles = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScopesForRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		roles []string
		want  []string
	}{
		{[]string{"PAGTO"}, []string{"openid", "payments", "recurring-payments"}},
		{[]string{"DADOS"}, []string{"accounts", "consents", "openid", "resources"}},
		{[]string{"DADOS", "PAGTO", "PAGTO"}, []string{"accounts", "consents", "openid", "payments", "recurring-payments", "resources"}},
		{[]string{"CONTA"}, []string{"openid"}},
		{[]string{"UNKNOWN"}, nil},
		{nil, nil},
	} {
		if got := ScopesForRoles(tc.roles); !slices.Equal(got, tc.want) {
			t.Errorf("ScopesForRoles(%v) = %v, want %v", tc.roles, got, tc.want)
		}
	}
}

func TestKeystoreJWKSURI(t *testing.T) {
	t.Parallel()
	got := KeystoreJWKSURI("https://keystore.directory.openbankingbrasil.org.br/", testOrg, testSoftware)
	// The layout of the real keystore (DCR-BR's example client).
	want := "https://keystore.directory.openbankingbrasil.org.br/b961c4eb-509d-4edf-afeb-35642b38185d/25556d5a-b9dd-4e27-aa1a-cce732fe74de/application.jwks"
	if got != want {
		t.Fatalf("KeystoreJWKSURI = %s, want %s", got, want)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Version{`1.10`: "1.10", `"2.0.1"`: "2.0.1", `3`: "3"} {
		var v Version
		if err := json.Unmarshal([]byte(in), &v); err != nil || v != want {
			t.Errorf("Unmarshal(%s) = %q, %v; want %q", in, v, err, want)
		}
	}
	for _, in := range []string{`true`, `{}`, `[1]`} {
		var v Version
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("Unmarshal(%s) accepted %q", in, v)
		}
	}
}

// FuzzVerify feeds arbitrary statements to the verifier: it never panics,
// and anything it accepts carries the claims registration needs.
func FuzzVerify(f *testing.F) {
	key := newKey(f)
	clk := clock.NewFake(epoch)
	v := &Verifier{Keys: StaticKeys(publicSet(key, "signer")), Issuer: testIssuer, Keystore: testKeystore, Clock: clk}
	f.Add(sign(f, key, jose.PS256, "signer", claims(epoch)))
	f.Add(sign(f, key, jose.PS256, "signer", with(claims(epoch), map[string]any{"software_version": "x", "org_status": "Pending"})))
	f.Add(sign(f, key, jose.RS256, "signer", claims(epoch)))
	f.Add("eyJhbGciOiJQUzI1NiIsImtpZCI6InNpZ25lciJ9.e30.AAAA")
	f.Add("...")
	f.Add("")
	f.Fuzz(func(t *testing.T, ssa string) {
		st, err := v.Verify(context.Background(), ssa)
		if err != nil {
			var se *StatementError
			if !errors.As(err, &se) || se.Description == "" {
				t.Fatalf("error %v is not a StatementError with a description", err)
			}
			return
		}
		if st.OrgID == "" || st.SoftwareID == "" || len(st.SoftwareRedirectURIs) == 0 || len(ScopesForRoles(st.ActiveRoles())) == 0 {
			t.Fatalf("accepted a statement without what registration needs: %+v", st)
		}
	})
}

// FuzzDecodeClaims: any payload decodes or is refused with a
// StatementError, never a panic.
func FuzzDecodeClaims(f *testing.F) {
	b, _ := json.Marshal(claims(epoch))
	f.Add(b)
	f.Add([]byte(`{"software_version":1.10,"iat":1}`))
	f.Add([]byte(`{"software_statement_roles":[{"role":1}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		st, err := DecodeClaims(payload)
		var se *StatementError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("error %v is not a StatementError", err)
		}
		if err == nil && (st.OrgID == "" || st.SoftwareJWKSURI == "") {
			t.Fatalf("accepted %s without org_id or software_jwks_uri", payload)
		}
	})
}
