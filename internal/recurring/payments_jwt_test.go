package recurring_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

// TestSignedSweepingPayment: an initiator that may not send plain JSON
// pays with a signed JWT (aud the collection's URL, its own iss, a fresh
// jti) and gets signed answers, 422s included; plain JSON, another key, a
// reused jti and the consents' aud are refused with the file's codes.
func TestSignedSweepingPayment(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		sw := authorise(t, s, sweepBody)
		key, rogue := testKeys()
		jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: partnerKID, Algorithm: "PS256", Use: "sig"}}})
		if err != nil {
			t.Fatal(err)
		}
		demo, err := s.App.Apps.SetJWKS(t.Context(), s.App.Demo.ID, jwks)
		if err != nil {
			t.Fatal(err)
		}
		if demo, err = s.App.Apps.SetAcceptPlainJSON(t.Context(), demo.ID, false); err != nil {
			t.Fatal(err)
		}
		p := partner{app: demo, token: sw.token}
		collection := s.URL + paymentsPath

		plain := s.Do(t, "POST", paymentsPath, headers(sw.token, uuid.NewString()), paymentBody(s, "1.00"))
		validateSpec(t, s, "ResponseError", plain.Body)
		wantCodes(t, plain, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")

		cl := claims(t, s, p, collection, paymentBody(s, "1.00"))
		r := s.Do(t, "POST", paymentsPath, jwtHeaders(sw.token, uuid.NewString()), sign(t, key, partnerKID, cl))
		if r.Status != http.StatusCreated {
			t.Fatalf("signed payment: %d %s", r.Status, r.Body)
		}
		body := verifySigned(t, s, p, r)
		validateSpec(t, s, "ResponseRecurringPaymentsIdPost", body)
		var created paymentResp
		if err := json.Unmarshal(body, &created); err != nil {
			t.Fatal(err)
		}

		h := headers(sw.token, "")
		h["Accept"] = payments.MediaTypeJWT
		g := s.Do(t, "GET", paymentsPath+"/"+created.Data.RecurringPaymentID, h, "")
		validateSpec(t, s, "ResponseRecurringPaymentsIdRead", verifySigned(t, s, p, g))
		l := s.Do(t, "GET", paymentsPath+"?recurringConsentId="+sw.consentID, h, "")
		validateSpec(t, s, "ResponseRecurringPixPayment", verifySigned(t, s, p, l))

		over := claims(t, s, p, collection, paymentBody(s, "1000.01"))
		r = s.Do(t, "POST", paymentsPath, jwtHeaders(sw.token, uuid.NewString()), sign(t, key, partnerKID, over))
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("signed 422: %d %s", r.Status, r.Body)
		}
		signed422 := verifySigned(t, s, p, r)
		validateSpec(t, nil, "422ResponseErrorCreatePixRecurringPayment", signed422)
		if !strings.Contains(string(signed422), recurring.CodeLimiteValorTransacaoExcedido) {
			t.Errorf("signed 422 = %s", signed422)
		}

		for _, tc := range []struct {
			name, body string
			status     int
			code       string
		}{
			{"reused jti", sign(t, key, partnerKID, cl), http.StatusForbidden, payments.CodeInvalidClient},
			{"another key", sign(t, rogue, partnerKID, claims(t, s, p, collection, paymentBody(s, "1.00"))), http.StatusBadRequest, payments.CodeBadSignature},
			{"aud of the consents", sign(t, key, partnerKID, claims(t, s, p, s.URL+consentsPath, paymentBody(s, "1.00"))), http.StatusForbidden, payments.CodeInvalidClient},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.Do(t, "POST", paymentsPath, jwtHeaders(sw.token, uuid.NewString()), tc.body)
				validateSpec(t, s, "ResponseError", r.Body)
				wantCodes(t, r, tc.status, tc.code)
			})
		}
	})
}
