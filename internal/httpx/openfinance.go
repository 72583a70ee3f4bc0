package httpx

import (
	"net/http"
	"strings"
	"time"
)

// OpenFinance renders errors in the Open Finance Brasil shape, which the
// Brick family (seed 002: interactions, initiator consents, journey reports)
// uses too:
//
//	{"errors":[{"code":"PARAMETRO_INVALIDO","title":"...","detail":"..."}],"meta":{"requestDateTime":"2024-10-15T18:55:15Z"}}
//
// A validation error has one entry per offending field, its detail starting
// with the field's name.
type OpenFinance struct {
	// Now stamps meta.requestDateTime; nil means the system clock.
	Now func() time.Time
}

// openFinanceCodes are the default codes per status, those of the Open
// Finance specifications where they define one.
var openFinanceCodes = map[int]string{
	http.StatusBadRequest:            "PARAMETRO_INVALIDO",
	http.StatusUnauthorized:          "UNAUTHORIZED",
	http.StatusForbidden:             "FORBIDDEN",
	http.StatusNotFound:              "NOT_FOUND",
	http.StatusMethodNotAllowed:      "METHOD_NOT_ALLOWED",
	http.StatusConflict:              "CONFLICT",
	http.StatusGone:                  "GONE",
	http.StatusRequestEntityTooLarge: "PAYLOAD_TOO_LARGE",
	http.StatusUnsupportedMediaType:  "UNSUPPORTED_MEDIA_TYPE",
	http.StatusUnprocessableEntity:   "NAO_INFORMADO",
	http.StatusTooManyRequests:       "TOO_MANY_REQUESTS",
	http.StatusInternalServerError:   "INTERNAL_SERVER_ERROR",
	http.StatusServiceUnavailable:    "SERVICE_UNAVAILABLE",
}

type openFinanceError struct {
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// WriteError implements ErrorWriter.
func (o OpenFinance) WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	code := e.Code
	if code == "" {
		code = openFinanceCodes[e.Status]
		if code == "" {
			code = strings.ToUpper(strings.ReplaceAll(http.StatusText(e.Status), " ", "_"))
		}
	}
	title := http.StatusText(e.Status)
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	var body struct {
		Errors []openFinanceError `json:"errors"`
		Meta   struct {
			RequestDateTime string `json:"requestDateTime"`
		} `json:"meta"`
	}
	body.Meta.RequestDateTime = now().UTC().Format("2006-01-02T15:04:05Z")
	if len(e.Fields) > 0 {
		for _, f := range e.Fields {
			body.Errors = append(body.Errors, openFinanceError{Code: code, Title: title, Detail: f.Field + " " + f.Message})
		}
	} else {
		body.Errors = []openFinanceError{{Code: code, Title: title, Detail: e.Message}}
	}
	WriteJSON(w, r, e.Status, body)
}
