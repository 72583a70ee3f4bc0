package dataapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
)

// TestErrorAnswers pins, byte for byte, the Open Finance answer the handlers
// give each error of the service: the data APIs' refusals with their
// Portuguese texts, and the import's refusals; a wrapped error is found, any
// other is no refusal (a server fault).
func TestErrorAnswers(t *testing.T) {
	at := time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)
	h := &Handler{Service: &Service{clock: clock.NewFake(at)}, Logger: slog.New(slog.DiscardHandler)}
	const meta = `,"meta":{"requestDateTime":"2024-10-15T18:55:15Z"}}`
	for _, tc := range []struct {
		err    error
		status int
		body   string
	}{
		{ErrNoConsent, 403, `{"errors":[{"code":"FORBIDDEN","title":"Forbidden","detail":"O token não está vinculado a um consentimento de compartilhamento de dados com o escopo desta API."}]` + meta},
		{fmt.Errorf("dataapi: authorize: %w", ErrConsentUnusable), 401, `{"errors":[{"code":"UNAUTHORIZED","title":"Unauthorized","detail":"O consentimento vinculado ao token não está com status AUTHORISED."}]` + meta},
		{ErrMissingPermission, 403, `{"errors":[{"code":"FORBIDDEN","title":"Forbidden","detail":"O consentimento não possui a permissão necessária para este recurso."}]` + meta},
		{ErrResourceNotGranted, 403, `{"errors":[{"code":"FORBIDDEN","title":"Forbidden","detail":"A conta solicitada não faz parte do consentimento."}]` + meta},
		{ErrResourceTemporarilyUnavailable, 403, `{"errors":[{"code":"STATUS_RESOURCE_TEMPORARILY_UNAVAILABLE","title":"Forbidden","detail":"A conta está temporariamente indisponível na instituição transmissora."}]` + meta},
		{ErrResourceUnavailable, 403, `{"errors":[{"code":"STATUS_RESOURCE_UNAVAILABLE","title":"Forbidden","detail":"A conta não está mais disponível na instituição transmissora."}]` + meta},
	} {
		rec := httptest.NewRecorder()
		e := refusal(tc.err)
		if e == nil {
			t.Errorf("%v: no refusal", tc.err)
			continue
		}
		h.fail(rec, httptest.NewRequest("GET", "/", nil), metaPlain, e)
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%v: %d %s\nwant %d %s", tc.err, rec.Code, rec.Body, tc.status, tc.body)
		}
	}
	errs := httpx.OpenFinance{Now: func() time.Time { return at }}
	for _, tc := range []struct {
		err    error
		status int
		body   string
	}{
		{&ValidationError{Fields: []FieldError{{"csv", "misses the required column amount"}, {"balances.currency", "must be BRL"}}}, 400,
			`{"errors":[{"code":"PARAMETRO_INVALIDO","title":"Bad Request","detail":"csv misses the required column amount"},` +
				`{"code":"PARAMETRO_INVALIDO","title":"Bad Request","detail":"balances.currency must be BRL"}]` + meta},
		{fmt.Errorf("dataapi: import: %w", ErrAccountNotFound), 404,
			`{"errors":[{"code":"ACCOUNT_NOT_FOUND","title":"Not Found","detail":"the customer has no account with this number"}]` + meta},
		{ErrAccountAmbiguous, 409,
			`{"errors":[{"code":"ACCOUNT_AMBIGUOUS","title":"Conflict","detail":"the customer has several accounts with this number (at different institutions or agencies)"}]` + meta},
		{ErrUnsupportedFormat, 415, `{"errors":[{"code":"UNSUPPORTED_MEDIA_TYPE","title":"Unsupported Media Type","detail":"send application/json or text/csv"}]` + meta},
	} {
		rec := httptest.NewRecorder()
		e := importError(tc.err)
		if e == nil {
			t.Errorf("%v: no answer", tc.err)
			continue
		}
		errs.WriteError(rec, httptest.NewRequest("POST", "/", nil), e)
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%v: %d %s\nwant %d %s", tc.err, rec.Code, rec.Body, tc.status, tc.body)
		}
	}
	if e := refusal(errors.New("connection reset")); e != nil {
		t.Errorf("a server fault taken for a refusal: %+v", e)
	}
	if e := importError(errors.New("connection reset")); e != nil {
		t.Errorf("a server fault taken for a refused import: %+v", e)
	}
}
