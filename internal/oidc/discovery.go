package oidc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/luikyv/go-oidc/pkg/goidc"
)

// AcceptedResponseTypes are the response types a pushed authorization
// request may ask for: FAPI-BR's hybrid code id_token, the only one
// initiatorPolicy gives clients. go-oidc derives its discovery list from
// the grant types (the implicit grant, which the hybrid flow needs, adds
// token, id_token, code token...), none of which PAR would accept.
var AcceptedResponseTypes = []goidc.ResponseType{goidc.ResponseTypeCodeAndIDToken}

// discovery serves go-oidc's discovery document with response_types_supported
// narrowed to AcceptedResponseTypes, so the document lists only what the
// server does.
func discovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		var doc map[string]json.RawMessage
		if rec.code == http.StatusOK && json.Unmarshal(body, &doc) == nil && doc != nil {
			if types, err := json.Marshal(AcceptedResponseTypes); err == nil {
				doc["response_types_supported"] = types
				if b, err := json.Marshal(doc); err == nil {
					body = b
				}
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.code)
		_, _ = w.Write(body)
	})
}

// recorder keeps a response in memory for discovery to rewrite.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
