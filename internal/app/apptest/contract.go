package apptest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Contract is api/openapi.yaml, loaded and validated.
type Contract struct {
	Doc    *openapi3.T
	router routers.Router
}

// LoadContract loads the repository's api/openapi.yaml.
func LoadContract(t testing.TB) *Contract {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "..", "api", "openapi.yaml")
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	doc.Servers = nil // match whatever loopback port the test server has
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	return &Contract{Doc: doc, router: router}
}

// ValidateResponse checks that the exchange is described by the contract: the
// path and method exist, the status is declared, and a JSON body matches its schema.
func (c *Contract) ValidateResponse(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: status,
		Header: header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			// Pages and metrics are text; their bodies are checked by their own tests.
			ExcludeResponseBody: !strings.Contains(header.Get("Content-Type"), "json"),
		},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// contractTransport validates every response a test receives.
type contractTransport struct {
	t    testing.TB
	c    *Contract
	base http.RoundTripper
}

func (ct *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := ct.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if verr := ct.c.ValidateResponse(req, resp.StatusCode, resp.Header, body); verr != nil {
		ct.t.Errorf("contract: %s %s → %d does not match api/openapi.yaml: %v\nbody: %.500s", req.Method, req.URL.Path, resp.StatusCode, verr, body)
	}
	return resp, nil
}
