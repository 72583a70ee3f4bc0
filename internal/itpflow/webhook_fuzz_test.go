package itpflow

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzWebhookBody feeds any bytes to the strict reader of a brand's webhook
// notification: it never panics, refuses with a 4xx, and what it accepts is
// an object holding a timestamp of the official pattern and nothing but
// data.timestamp and data.eventType.
func FuzzWebhookBody(f *testing.F) {
	f.Add([]byte(`{"data":{"timestamp":"2026-12-07T14:30:00Z"}}`))
	f.Add([]byte(`{"data":{"timestamp":"2021-5-21T08:30:00Z","eventType":"STATE_CHANGED"}}`))
	f.Add([]byte(`{"data":{"timestamp":"2026-12-07T14:30:00Z","status":"ACSC"}}`))
	f.Add([]byte(`{"data":{"timestamp":"2026-12-07T14:30:00.5Z"}}`))
	f.Add([]byte(`{"data":null}`))
	f.Add([]byte(`{"data":{"timestamp":"2026-12-07T14:30:00Z"}} {}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		at, herr := readWebhookBody(httptest.NewRecorder(), r)
		if herr != nil {
			if herr.Status < 400 || herr.Status > 499 {
				t.Fatalf("refused with %d", herr.Status)
			}
			return
		}
		if len(at) > 20 || !webhookTimePattern.MatchString(at) {
			t.Fatalf("accepted timestamp %q", at)
		}
	})
}
