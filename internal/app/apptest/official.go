package apptest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/officialspec"
)

// OfficialFiles are the official OpenAPI files every exchange of a test
// server is checked against, by the path prefix of their servers.
var OfficialFiles = map[string]string{
	"/open-banking/payments/v4":           "payments-4.0.0.yml",
	"/open-banking/automatic-payments/v2": "automatic-payments-2.0.0.yml",
	"/open-banking/consents/v3":           "consents-3.3.1.yml",
}

// officialHost stands in for the test server's host when routing a request
// in an official file (whose servers are the banks' own).
const officialHost = "http://ponte.test"

// OfficialSelf stands in for the test server's http://127.0.0.1:port in the
// bodies checked: the files' link patterns require an https URL with a
// domain name, which a loopback test server cannot have.
const OfficialSelf = "https://ponte.example.com"

// OfficialCount is what a server's official-file checks saw.
type OfficialCount struct {
	// Validated exchanges: the status is documented, the Content-Type is
	// the documented media type and the body (a signed body's claims)
	// matches the documented schema.
	Validated int
	// Extension exchanges: an application opted into plain JSON (a Ponte
	// extension) got JSON where the file documents application/jwt; the
	// body matched the schema.
	Extension int
	// Failed exchanges (each also failed the test).
	Failed int
}

// official checks the exchanges of one test server against the official
// files (PONTE_SPECS_DIR; nothing is checked when it is unset). It runs on
// the server side, so the initiator side's calls to the sandbox brand are
// checked as well as the tests' own, with the headers the handlers wrote.
type official struct {
	t    testing.TB
	apps []officialspec.API
	s    *Server

	mu    sync.Mutex
	count OfficialCount
}

var (
	officialOnce sync.Once
	officialAPIs []officialspec.API
)

// newOfficial loads the files once per test binary; nil when PONTE_SPECS_DIR is unset.
func newOfficial(t testing.TB, s *Server) *official {
	if _, ok := officialspec.Dir(t); !ok {
		return nil
	}
	officialOnce.Do(func() { officialAPIs = officialspec.Routers(t, officialHost, OfficialFiles) })
	return &official{t: t, apps: officialAPIs, s: s}
}

// Official returns what the server's official-file checks saw so far.
func (s *Server) Official() OfficialCount {
	if s.official == nil {
		return OfficialCount{}
	}
	s.official.mu.Lock()
	defer s.official.mu.Unlock()
	return s.official.count
}

// capture keeps what a handler wrote.
type capture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

func (c *capture) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// wrap checks every exchange under an official file's prefix.
func (o *official) wrap(a *app.App, next http.Handler) http.Handler {
	if o == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api := o.api(r.URL.Path)
		if api == nil {
			next.ServeHTTP(w, r)
			return
		}
		plain := plainJSONCaller(r.Context(), a, r.Header.Get("Authorization"))
		req := r.Clone(context.Background())
		c := &capture{ResponseWriter: w}
		next.ServeHTTP(c, r)
		if c.status == 0 {
			c.status = http.StatusOK
		}
		header := w.Header().Clone()
		if header.Get("Content-Type") == "" && c.body.Len() > 0 {
			header.Set("Content-Type", http.DetectContentType(c.body.Bytes())) // what net/http sends
		}
		if err := o.check(api, req, plain, c.status, header, c.body.Bytes()); err != nil {
			o.record(false, false)
			o.t.Errorf("official file: %s %s → %d: %v\nContent-Type: %s\nbody: %.1000s", req.Method, req.URL.Path, c.status, err,
				header.Get("Content-Type"), c.body.Bytes())
		}
	})
}

func (o *official) record(ok, extension bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case !ok:
		o.count.Failed++
	case extension:
		o.count.Extension++
	default:
		o.count.Validated++
	}
}

func (o *official) api(path string) *officialspec.API {
	for i := range o.apps {
		if strings.HasPrefix(path, o.apps[i].Prefix+"/") {
			return &o.apps[i]
		}
	}
	return nil
}

// check validates one exchange; a route the file does not have (Ponte's
// fallback for an unknown path, a method the file lacks) is not checked.
func (o *official) check(api *officialspec.API, req *http.Request, plainCaller bool, status int, header http.Header, body []byte) error {
	u, err := url.Parse(officialHost + req.URL.RequestURI())
	if err != nil {
		return err
	}
	r2 := req.Clone(context.Background())
	r2.URL, r2.Host, r2.RequestURI = u, u.Host, ""
	route, _, err := api.Router.FindRoute(r2)
	if err != nil {
		if err == routers.ErrPathNotFound || err == routers.ErrMethodNotAllowed {
			return nil
		}
		return fmt.Errorf("route: %w", err)
	}
	if id := header.Get("x-fapi-interaction-id"); id == "" {
		return fmt.Errorf("no x-fapi-interaction-id in the response")
	}
	resp := route.Operation.Responses.Status(status)
	if resp == nil {
		resp = route.Operation.Responses.Default()
	}
	if resp == nil || resp.Value == nil {
		return fmt.Errorf("status %d is not documented for %s %s", status, req.Method, route.Path)
	}
	if len(resp.Value.Content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("status %d is documented without a body, got %d bytes", status, len(body))
		}
		o.record(true, false)
		return nil
	}
	got, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("Content-Type %q: %w", header.Get("Content-Type"), err)
	}
	var declared []string
	var media *openapi3.MediaType
	for key, mt := range resp.Value.Content {
		base, _, _ := mime.ParseMediaType(key)
		declared = append(declared, key)
		if base == got {
			media = mt
		}
	}
	extension := false
	if media == nil && got == "application/json" && plainCaller {
		// A Ponte extension: the application opted into plain JSON.
		if mt := resp.Value.Content.Get("application/jwt"); mt != nil {
			media, extension = mt, true
		}
	}
	if media == nil {
		return fmt.Errorf("Content-Type %s, the file documents %s", got, strings.Join(declared, " or "))
	}
	doc := body
	if got == "application/jwt" {
		if doc, err = signedClaims(body); err != nil {
			return err
		}
	}
	doc = bytes.ReplaceAll(doc, []byte(o.s.URL), []byte(OfficialSelf))
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	if media.Schema == nil || media.Schema.Value == nil {
		return fmt.Errorf("status %d has no schema", status)
	}
	if err := media.Schema.Value.VisitJSON(v); err != nil {
		return fmt.Errorf("does not match the documented schema: %w", err)
	}
	o.record(true, extension)
	return nil
}

// signedClaims is a compact JWS's payload without the message-signing
// claims (aud, iss, iat, jti), which the files' schemas do not list.
// Signatures are verified by the tests of each API.
func signedClaims(body []byte) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(string(bytes.TrimSpace(body)), []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		return nil, fmt.Errorf("application/jwt body is not a PS256 compact JWS: %w", err)
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return nil, fmt.Errorf("JWS payload is not a JSON object: %w", err)
	}
	for _, k := range []string{"aud", "iss", "iat", "jti"} {
		if _, ok := claims[k]; !ok {
			return nil, fmt.Errorf("signed body without the %s claim", k)
		}
		delete(claims, k)
	}
	return json.Marshal(claims)
}

// plainJSONCaller reports whether the bearer token belongs to an application
// that opted into plain JSON: a partner JWT's subject, or the client of an
// authorization server token.
func plainJSONCaller(ctx context.Context, a *app.App, authorization string) bool {
	scheme, raw, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	raw = strings.TrimSpace(raw)
	var clientID string
	if parts := strings.Split(raw, "."); len(parts) == 3 {
		b, err := base64.RawURLEncoding.DecodeString(parts[1])
		var claims struct {
			Sub string `json:"sub"`
		}
		if err != nil || json.Unmarshal(b, &claims) != nil {
			return false
		}
		clientID = claims.Sub
	} else if info, err := a.AuthServer.TokenInfo(ctx, raw); err == nil && info.IsActive {
		clientID = info.ClientID
	}
	if clientID == "" {
		return false
	}
	application, err := a.Apps.Get(ctx, clientID)
	return err == nil && application.AcceptPlainJSON
}
