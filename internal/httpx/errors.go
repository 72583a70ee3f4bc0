// Package httpx is the HTTP plumbing every route shares: error writers for each
// API family, strict JSON decoding, correlation ids, bearer authentication with
// scope checks, panic recovery, access logs and request metrics.
package httpx

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// Error is a client-facing error: an HTTP status, a machine code, a human
// message, and for validation failures every offending field.
type Error struct {
	Status  int
	Code    string
	Message string
	Fields  []FieldError
}

// FieldError names one invalid input field and what is wrong with it.
type FieldError struct {
	Field   string
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + " " + f.Message)
	}
	return b.String()
}

// ErrorWriter renders errors in the shape of one API family.
type ErrorWriter interface {
	WriteError(w http.ResponseWriter, r *http.Request, e *Error)
}

// Bankly renders the Bankly family's errors (seeds 000 and 001):
//
//	{"errors":[{"code":"INVALID_PARAMETER","message":"...","propertyName":"documentNumber"}]}
//
// A validation error lists one entry per offending field.
type Bankly struct{}

type banklyError struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	PropertyName string `json:"propertyName,omitempty"`
}

// Bankly's documented common codes, by status.
var banklyCodes = map[int]string{
	http.StatusBadRequest:            "INVALID_PARAMETER",
	http.StatusUnauthorized:          "UNAUTHORIZED",
	http.StatusForbidden:             "FORBIDDEN",
	http.StatusNotFound:              "NOT_FOUND",
	http.StatusMethodNotAllowed:      "METHOD_NOT_ALLOWED",
	http.StatusConflict:              "CONFLICT",
	http.StatusGone:                  "GONE",
	http.StatusRequestEntityTooLarge: "PAYLOAD_TOO_LARGE",
	http.StatusUnsupportedMediaType:  "UNSUPPORTED_MEDIA_TYPE",
	http.StatusUnprocessableEntity:   "UNPROCESSABLE",
	http.StatusTooManyRequests:       "TOO_MANY_REQUESTS",
	http.StatusInternalServerError:   "INTERNAL_SERVER_ERROR",
	http.StatusServiceUnavailable:    "SERVICE_UNAVAILABLE",
}

// WriteError implements ErrorWriter.
func (Bankly) WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	code := e.Code
	if code == "" {
		code = banklyCodes[e.Status]
	}
	var body struct {
		Errors []banklyError `json:"errors"`
	}
	if len(e.Fields) > 0 {
		for _, f := range e.Fields {
			body.Errors = append(body.Errors, banklyError{Code: code, Message: f.Field + " " + f.Message, PropertyName: f.Field})
		}
	} else {
		body.Errors = []banklyError{{Code: code, Message: e.Message}}
	}
	WriteJSON(w, r, e.Status, body)
}

// Marshal is json.Marshal without HTML escaping. Answers carry URLs
// (journeySessionUrl, links) that people copy from a terminal, where
// "\u0026" in place of "&" breaks them; no answer is embedded in HTML.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// WriteJSON encodes v (see Marshal) as the response body with the given status.
func WriteJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := Marshal(v)
	if err != nil {
		slog.ErrorContext(r.Context(), "encode response", "err", err)
		writeInternal(w)
		return
	}
	WriteRawJSON(w, status, b)
}

// internalBody is the last-resort answer to a fault met while answering.
const internalBody = `{"errors":[{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error"}]}`

// writeInternal writes internalBody as JSON. http.Error would label it
// text/plain; the nosniff it sets is kept.
func writeInternal(w http.ResponseWriter) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	WriteRawJSON(w, http.StatusInternalServerError, []byte(internalBody))
}

// WriteRawJSON writes already-encoded JSON, e.g. a stored idempotent response.
func WriteRawJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Internal is the error every family returns for a server fault: no internals.
func Internal() *Error {
	return &Error{Status: http.StatusInternalServerError, Message: "Internal server error"}
}
