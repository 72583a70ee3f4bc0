package webhooks

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
)

// TestFailAnswersBankly pins the Bankly answer of every service error, byte
// for byte: a validation error lists every field, wrapped errors are found,
// anything else is a 500 that says nothing.
func TestFailAnswersBankly(t *testing.T) {
	t.Parallel()
	h := &Handler{Logger: slog.New(slog.DiscardHandler)}
	cases := []struct {
		what   string
		err    error
		status int
		body   string
	}{
		{"Subscription", &ValidationError{What: "request body", Fields: []FieldError{{Field: "url", Message: "must use https"}, {Field: "events", Message: "must list at most 50 event names"}}}, 400,
			`{"errors":[{"code":"INVALID_PARAMETER","message":"url must use https","propertyName":"url"},` +
				`{"code":"INVALID_PARAMETER","message":"events must list at most 50 event names","propertyName":"events"}]}`},
		{"Delivery", &ValidationError{What: "query parameters", Fields: []FieldError{{Field: "status", Message: "must be one of pending, failed, delivered, exhausted, cancelled"}}}, 400,
			`{"errors":[{"code":"INVALID_PARAMETER","message":"status must be one of pending, failed, delivered, exhausted, cancelled","propertyName":"status"}]}`},
		{"Subscription", ErrNotFound, 404, `{"errors":[{"code":"NOT_FOUND","message":"Subscription Not Found"}]}`},
		{"Delivery", fmt.Errorf("webhooks: read delivery: %w", ErrNotFound), 404, `{"errors":[{"code":"NOT_FOUND","message":"Delivery Not Found"}]}`},
		{"Delivery", &RetryError{Reason: "an attempt is in progress"}, 409,
			`{"errors":[{"code":"CONFLICT","message":"Delivery cannot be retried: an attempt is in progress"}]}`},
		{"Delivery", errors.New("connection reset"), 500, `{"errors":[{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error"}]}`},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		h.fail(rec, httptest.NewRequest("GET", "/webhooks/v1/deliveries", nil), tc.what, tc.err)
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%v: %d %s\nwant %d %s", tc.err, rec.Code, rec.Body, tc.status, tc.body)
		}
	}
}
