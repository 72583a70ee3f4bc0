package payments_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
)

const creditorKey = "12345678909" // pixConsent's proxy

// qrConsent is pixConsent (amount 100.00) paid by localInstrument li with qr.
func qrConsent(t testing.TB, li, qr string) string {
	return mutate(t, pixConsent("100.00", ""), func(m map[string]any) {
		d := at(m, "data", "payment", "details")
		d["localInstrument"], d["qrCode"] = li, qr
	})
}

// badCRC is a static code whose last CRC digit is off by one.
func badCRC() string {
	qr := payments.BRCode(creditorKey, "", "100.00", "")
	last := qr[len(qr)-1]
	if last == '0' {
		return qr[:len(qr)-1] + "1"
	}
	return qr[:len(qr)-1] + "0"
}

// TestConsentQRCode: a QRES or QRDN consent's qrCode is read at creation;
// each refusal with the code of POST /consents' 422 list, nothing stored.
func TestConsentQRCode(t *testing.T) {
	t.Parallel()
	dynamicURL := "pix.example.com/qr/v2/9d36b84fc70b478fb95c12729b90ca25"
	cases := []struct {
		name, li, qr string
		proxy        string // "" keeps creditorKey
		code         string // "" for 201
	}{
		{name: "QRES static with its amount", li: "QRES", qr: payments.BRCode(creditorKey, "", "100.00", "PED123")},
		{name: "QRES static without amount", li: "QRES", qr: payments.BRCode(creditorKey, "", "", "")},
		{name: "QRDN dynamic", li: "QRDN", qr: payments.BRCode("", dynamicURL, "", "")},
		{name: "made-up payload", li: "QRES", qr: "000201", code: "PARAMETRO_INVALIDO"},
		{name: "CRC does not match", li: "QRES", qr: badCRC(), code: "PARAMETRO_INVALIDO"},
		{name: "QRES with a dynamic code", li: "QRES", qr: payments.BRCode("", dynamicURL, "", ""), code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "QRDN with a static code", li: "QRDN", qr: payments.BRCode(creditorKey, "", "100.00", ""), code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "QRES key is not the proxy", li: "QRES", qr: payments.BRCode(creditorKey, "", "100.00", ""), proxy: "maria@example.com", code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "QRES amount differs from the code's", li: "QRES", qr: payments.BRCode(creditorKey, "", "99.99", ""), code: "DETALHE_PAGAMENTO_INVALIDO"},
		{name: "QRDN amount differs from the code's", li: "QRDN", qr: payments.BRCode("", dynamicURL, "100.01", ""), code: "DETALHE_PAGAMENTO_INVALIDO"},
	}
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "payments")
		refused := 0
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				body := qrConsent(t, tc.li, tc.qr)
				if tc.proxy != "" {
					body = mutate(t, body, func(m map[string]any) { at(m, "data", "payment", "details")["proxy"] = tc.proxy })
				}
				key := fmt.Sprintf("qr-consent-%d", i)
				if tc.code == "" {
					c := create(t, s, tok, key, body)
					if c.Data.Status != "AWAITING_AUTHORISATION" {
						t.Fatalf("status %s", c.Data.Status)
					}
					return
				}
				refused++
				validateSpec(t, nil, "CreatePaymentConsent", []byte(body))
				checkError(t, s, s.Do(t, "POST", consentsPath, headers(tok, key), body), http.StatusUnprocessableEntity, tc.code)
			})
		}
		var n int
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM payment_consents`).Scan(&n); err != nil || n != len(cases)-refused {
			t.Errorf("%d consents stored, want %d (err %v)", n, len(cases)-refused, err)
		}
	})
}

// TestPixQRCode: a QRES payment is held to its QR Code: an amount other than
// the code's is VALOR_INVALIDO, a qrCode that is not a BR Code is
// PARAMETRO_INVALIDO, a missing or different TxId is
// DETALHE_PAGAMENTO_INVALIDO; the right payment is accepted.
func TestPixQRCode(t *testing.T) {
	t.Parallel()
	qr := payments.BRCode(creditorKey, "", "100.00", "PED123")
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		_, tok := authorised(t, s, qrConsent(t, "QRES", qr))
		item := func(change func(m map[string]any)) string {
			it := pixItem(e2eAt(s.Clock.Now()), "100.00")
			it["localInstrument"], it["qrCode"], it["transactionIdentification"] = "QRES", qr, "PED123"
			change(it)
			return pixBody(t, it)
		}
		cases := []struct {
			name   string
			change func(m map[string]any)
			code   string
		}{
			{"amount other than the code's", func(m map[string]any) { m["payment"] = map[string]any{"amount": "90.00", "currency": "BRL"} }, "VALOR_INVALIDO"},
			{"qrCode not a BR Code", func(m map[string]any) { m["qrCode"] = strings.Repeat("0", 40) }, "PARAMETRO_INVALIDO"},
			{"qrCode with a wrong CRC", func(m map[string]any) { m["qrCode"] = badCRC() }, "PARAMETRO_INVALIDO"},
			{"no TxId of the code", func(m map[string]any) { delete(m, "transactionIdentification") }, "DETALHE_PAGAMENTO_INVALIDO"},
			{"another TxId", func(m map[string]any) { m["transactionIdentification"] = "PED124" }, "DETALHE_PAGAMENTO_INVALIDO"},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp := postPix(t, s, tok, fmt.Sprintf("qr-pix-%d", i), item(tc.change))
				checkPixError(t, s, resp, http.StatusUnprocessableEntity, tc.code, "422ResponseErrorCreatePixPayments")
			})
		}
		out := createPix(t, s, tok, "qr-pix-ok", item(func(map[string]any) {}))
		if len(out.Data) != 1 || (out.Data[0].Status != "RCVD" && out.Data[0].Status != "ACCP") {
			t.Fatalf("created %+v", out.Data)
		}
	})
}
