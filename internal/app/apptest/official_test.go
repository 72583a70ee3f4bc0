package apptest

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/officialspec"
)

// TestOfficialCheck: the official-file check refuses what the files do not
// declare — a JSON 200 where they say application/jwt (unless the caller
// opted into plain JSON), a signed body off the schema, an undocumented
// media type, a missing x-fapi-interaction-id — and passes what they do.
func TestOfficialCheck(t *testing.T) {
	if _, ok := officialspec.Dir(t); !ok {
		return // logged by officialspec
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(payload string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := jws.CompactSerialize()
		return c
	}
	const (
		claims   = `"aud":"8d3f6c1a-2b4e-4f5a-9c7d-0e1f2a3b4c5d","iss":"0b7e5f3a-6c2d-4f1e-8a9b-3c4d5e6f7a8b","iat":1728996915,"jti":"j1",`
		errors   = `{"errors":[{"code":"PARAMETRO_INVALIDO","title":"Parâmetro inválido.","detail":"x"}],"meta":{"requestDateTime":"2024-10-15T18:55:15Z"}}`
		offEnum  = `{"errors":[{"code":"NAO_EXISTE","title":"t","detail":"x"}],"meta":{"requestDateTime":"2024-10-15T18:55:15Z"}}`
		notFound = `{"errors":[{"code":"NOT_FOUND","title":"Not Found","detail":"Consentimento não encontrado."}],"meta":{"requestDateTime":"2024-10-15T18:55:15Z"}}`
	)
	s := &Server{URL: "http://127.0.0.1:1"}
	o := newOfficial(t, s)
	for _, tc := range []struct {
		name, method, path string
		plainCaller        bool
		status             int
		contentType, body  string
		noInteraction      bool
		wantErr            string // "" passes
		wantExtension      bool
	}{
		{name: "signed 422 on the schema", method: "POST", path: "/open-banking/payments/v4/consents", status: 422,
			contentType: "application/jwt", body: signed("{" + claims + errors[1:])},
		{name: "signed 422 off the enum", method: "POST", path: "/open-banking/payments/v4/consents", status: 422,
			contentType: "application/jwt", body: signed("{" + claims + offEnum[1:]), wantErr: "schema"},
		{name: "signed body without its claims", method: "POST", path: "/open-banking/payments/v4/consents", status: 422,
			contentType: "application/jwt", body: signed(errors), wantErr: "claim"},
		{name: "JSON 422 for a client that signs", method: "POST", path: "/open-banking/payments/v4/consents", status: 422,
			contentType: "application/json", body: errors, wantErr: "Content-Type"},
		{name: "JSON 422 for a plain-JSON application", method: "POST", path: "/open-banking/payments/v4/consents", status: 422,
			contentType: "application/json", body: errors, plainCaller: true, wantExtension: true},
		{name: "JSON 404", method: "GET", path: "/open-banking/payments/v4/consents/urn:ponte:x", status: 404,
			contentType: "application/json; charset=utf-8", body: notFound},
		{name: "signed 404", method: "GET", path: "/open-banking/payments/v4/consents/urn:ponte:x", status: 404,
			contentType: "application/jwt", body: signed("{" + claims + notFound[1:]), wantErr: "Content-Type"},
		{name: "text 404", method: "GET", path: "/open-banking/automatic-payments/v2/recurring-consents/urn:ponte:rc:x", status: 404,
			contentType: "text/plain", body: "not found", wantErr: "Content-Type"},
		{name: "no interaction id", method: "GET", path: "/open-banking/payments/v4/consents/urn:ponte:x", status: 404,
			contentType: "application/json", body: notFound, noInteraction: true, wantErr: "x-fapi-interaction-id"},
		{name: "data consents 404", method: "GET", path: "/open-banking/consents/v3/consents/urn:ponte:dc:x", status: 404,
			contentType: "application/json", body: notFound},
	} {
		req, err := http.NewRequest(tc.method, s.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		api := o.api(tc.path)
		if api == nil {
			t.Fatalf("%s: no official file for %s", tc.name, tc.path)
		}
		h := http.Header{"Content-Type": {tc.contentType}}
		if !tc.noInteraction {
			h.Set("x-fapi-interaction-id", "d78fc4e5-37ca-4da3-adf2-9b082bf92280")
		}
		before := o.count
		err = o.check(api, req, tc.plainCaller, tc.status, h, []byte(tc.body))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: %v, want an error about %s", tc.name, err, tc.wantErr)
		case tc.wantErr == "" && tc.wantExtension && o.count.Extension != before.Extension+1:
			t.Errorf("%s: not counted as the plain-JSON extension: %+v", tc.name, o.count)
		case tc.wantErr == "" && !tc.wantExtension && o.count.Validated != before.Validated+1:
			t.Errorf("%s: not counted as validated: %+v", tc.name, o.count)
		}
	}
}
