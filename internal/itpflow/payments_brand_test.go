package itpflow_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/officialspec"
)

// The test brand's payment APIs: POST /pix/payments (Payments v4) and POST
// /pix/recurring-payments (Automatic Payments v2) with signed bodies checked
// with Ponte's key, an unexpired access token and an idempotency key that
// replays the first answer; GET by id steps through the statuses the test
// queued for the payment.

func (b *brand) createPayment(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	claims, err := b.verify(string(body), "JWT")
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	b.mu.Lock()
	issued, known := b.issued[token]
	b.mu.Unlock()
	if err != nil || !known || !b.clock.Now().Before(issued.Add(300*time.Second)) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]string{{"code": "UNAUTHORIZED", "title": "Unauthorized", "detail": "token"}}})
		return
	}
	key := r.Header.Get("x-idempotency-key")
	b.mu.Lock()
	b.payments = append(b.payments, paymentCall{Path: r.URL.Path, Token: token, IdempotencyKey: key,
		InteractionID: r.Header.Get("x-fapi-interaction-id"), Claims: claims})
	refuse := b.payRefuse
	b.payRefuse = nil
	replay, seen := b.payAnswers[key]
	b.mu.Unlock()
	if refuse != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(refuse.status)
		_, _ = io.WriteString(w, refuse.body)
		return
	}
	if seen {
		w.Header().Set("Content-Type", "application/jwt")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, replay)
		return
	}
	now := b.clock.Now().UTC().Format(time.RFC3339)
	answerOf := func(item map[string]any, idField string) map[string]any {
		id := "pay-" + uuid.NewString()
		b.payStatus[id] = []string{"ACCP", "ACSC"}
		if b.afterCreate != nil {
			b.afterCreate(id)
		}
		out := map[string]any{idField: id, "status": "RCVD", "creationDateTime": now, "statusUpdateDateTime": now}
		for _, k := range []string{"endToEndId", "localInstrument", "payment", "creditorAccount", "cnpjInitiator", "date", "document"} {
			if v, ok := item[k]; ok {
				out[k] = v
			}
		}
		return out
	}
	b.mu.Lock()
	var data any
	if r.PathValue("collection") == "recurring-payments" {
		item, _ := claims["data"].(map[string]any)
		data = answerOf(item, "recurringPaymentId")
	} else {
		items, _ := claims["data"].([]any)
		list := make([]map[string]any, 0, len(items))
		for _, it := range items {
			item, _ := it.(map[string]any)
			list = append(list, answerOf(item, "paymentId"))
		}
		data = list
	}
	b.mu.Unlock()
	signed := b.sign(b.key, brandKeyID, "PS256", map[string]any{"aud": ponteClientID, "iss": b.issuer(),
		"iat": b.clock.Now().Unix(), "jti": uuid.NewString(), "data": data})
	b.mu.Lock()
	b.payAnswers[key] = signed
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/jwt")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, signed)
}

func (b *brand) readPayment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b.mu.Lock()
	steps, ok := b.payStatus[id]
	status := ""
	if ok && len(steps) > 0 {
		status = steps[0]
		if len(steps) > 1 {
			b.payStatus[id] = steps[1:]
		}
	}
	b.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []map[string]string{{"code": "NAO_ENCONTRADO", "title": "Not Found", "detail": "no payment"}}})
		return
	}
	idField := "paymentId"
	if r.PathValue("collection") == "recurring-payments" {
		idField = "recurringPaymentId"
	}
	data := map[string]any{idField: id, "status": status}
	if status == "RJCT" {
		data["rejectionReason"] = map[string]string{"code": "SALDO_INSUFICIENTE", "detail": "A conta selecionada não possui saldo suficiente"}
	}
	b.signed(w, http.StatusOK, data)
}

// paymentCalls returns the payment creations the brand received.
func (b *brand) paymentCalls() []paymentCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]paymentCall(nil), b.payments...)
}

// validateOfficial checks a request's {"data": ...} against the named
// schema of an official file (skipped without PONTE_SPECS_DIR).
func validateOfficial(t *testing.T, file, schema string, claims map[string]any) {
	t.Helper()
	doc := officialspec.Load(t, file)
	if doc == nil {
		return
	}
	raw, _ := json.Marshal(map[string]any{"data": claims["data"]})
	var v any
	_ = json.Unmarshal(raw, &v)
	ref := doc.Components.Schemas[schema]
	if ref == nil || ref.Value == nil {
		t.Fatalf("schema %s not in %s", schema, file)
	}
	if err := ref.Value.VisitJSON(v); err != nil {
		t.Errorf("the payment request does not match %s %s: %v\n%s", file, schema, err, raw)
	}
}
