package payments

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

var now = time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)

func validRequest(t testing.TB) ConsentRequest {
	t.Helper()
	var r ConsentRequest
	err := json.Unmarshal([]byte(`{
	  "loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},
	  "creditor":{"personType":"PESSOA_JURIDICA","cpfCnpj":"11222333000181","name":"Loja & Cia"},
	  "payment":{"type":"PIX","date":"2024-10-15","currency":"BRL","amount":"0.01",
	    "details":{"localInstrument":"MANU","creditorAccount":{"ispb":"12345678","number":"1","accountType":"TRAN"}}}}`), &r)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestValidateRules(t *testing.T) {
	t.Parallel()
	if err := func() *ValidationError { r := validRequest(t); return r.Validate(now) }(); err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	// Brasília's date: 02:00 UTC on the 16th is still the 15th in Brasília.
	r := validRequest(t)
	if err := r.Validate(time.Date(2024, 10, 16, 2, 0, 0, 0, time.UTC)); err != nil {
		t.Errorf("date in Brasília time: %v", err)
	}
	cases := map[string]struct {
		change func(r *ConsentRequest)
		code   string
	}{
		"PJ with CPF":     {func(r *ConsentRequest) { r.Creditor.CPFCNPJ = "12345678909" }, CodeDetalhePagamentoInvalido},
		"impossible date": {func(r *ConsentRequest) { r.Payment.Date = "2024-02-30" }, CodeParametroInvalido},
		"weekly beyond two years": {func(r *ConsentRequest) {
			q := 60
			r.Payment.Date = ""
			r.Payment.Schedule = &Schedule{Weekly: &ScheduleWeekly{DayOfWeek: "SEGUNDA_FEIRA", StartDate: "2026-01-01", Quantity: &q}}
		}, CodeDataPagamentoInvalida},
		"monthly quantity above 24": {func(r *ConsentRequest) {
			q, d := 25, 1
			r.Payment.Date = ""
			r.Payment.Schedule = &Schedule{Monthly: &ScheduleMonthly{DayOfMonth: &d, StartDate: "2024-11-01", Quantity: &q}}
		}, CodeParametroInvalido},
		"two schedule kinds": {func(r *ConsentRequest) {
			r.Payment.Date = ""
			r.Payment.Schedule = &Schedule{Single: &ScheduleSingle{Date: "2024-10-20"}, Custom: &ScheduleCustom{}}
		}, CodeParametroInvalido},
		"QR code too long": {func(r *ConsentRequest) {
			p, q := "k", strings.Repeat("x", 513)
			r.Payment.Details.LocalInstrument, r.Payment.Details.Proxy, r.Payment.Details.QRCode = "QRES", &p, &q
		}, CodeParametroInvalido},
		"QRES made-up qrCode": {func(r *ConsentRequest) {
			p, q := "k", "000201"
			r.Payment.Details.LocalInstrument, r.Payment.Details.Proxy, r.Payment.Details.QRCode = "QRES", &p, &q
		}, CodeParametroInvalido},
		"QRES key other than the proxy": {func(r *ConsentRequest) {
			p, q := "k", BRCode("other-key", "", "", "")
			r.Payment.Details.LocalInstrument, r.Payment.Details.Proxy, r.Payment.Details.QRCode = "QRES", &p, &q
		}, CodeDetalhePagamentoInvalido},
		"QRES amount other than the code's": {func(r *ConsentRequest) {
			p, q := "k", BRCode("k", "", "0.02", "")
			r.Payment.Details.LocalInstrument, r.Payment.Details.Proxy, r.Payment.Details.QRCode = "QRES", &p, &q
		}, CodeDetalhePagamentoInvalido},
		"QRDN static code": {func(r *ConsentRequest) {
			p, q := "k", BRCode("k", "", "", "")
			r.Payment.Details.LocalInstrument, r.Payment.Details.Proxy, r.Payment.Details.QRCode = "QRDN", &p, &q
		}, CodeDetalhePagamentoInvalido},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := validRequest(t)
			tc.change(&r)
			err := r.Validate(now)
			if err == nil || !err.Has(tc.code) || err.Status != 422 {
				t.Errorf("got %v, want %s", err, tc.code)
			}
		})
	}
	// At most three problems.
	r = validRequest(t)
	r.LoggedUser, r.Creditor, r.Payment = nil, nil, nil
	r.DebtorAccount = &Account{}
	if err := r.Validate(now); err == nil || len(err.Problems) != 3 {
		t.Errorf("problems: %v", err)
	}
}

func TestValidIdempotencyKey(t *testing.T) {
	t.Parallel()
	for k, want := range map[string]bool{
		"a": true, "04106038-4063-48bc-a0e4-13c178dd058f": true, "with inner space": true,
		"": false, " lead": false, "trail ": false, strings.Repeat("k", 41): false, "line\nbreak": false,
	} {
		if got := validIdempotencyKey(k); got != want {
			t.Errorf("validIdempotencyKey(%q) = %v", k, got)
		}
	}
}

// FuzzDecodeCreate runs a plain JSON body through the request's checks (the
// edge's text check, decoding, validation) and stores what passes on every
// engine: never a panic, never a database error.
func FuzzDecodeCreate(f *testing.F) {
	f.Add([]byte(`{"data":{"payment":{"amount":"1.00","schedule":{"custom":{"dates":["2024-1-1"]}}}}}`))
	f.Add([]byte(`{"data":null}`))
	f.Add([]byte(`[]`))
	valid := `{"data":{"loggedUser":{"document":{"identification":"47742663023","rel":"CPF"}},` +
		`"creditor":{"personType":"PESSOA_JURIDICA","cpfCnpj":"11222333000181","name":"NAME"},` +
		`"payment":{"type":"PIX","date":"2024-10-15","currency":"BRL","amount":"0.01",` +
		`"details":{"localInstrument":"MANU","creditorAccount":{"ispb":"12345678","number":"1","accountType":"TRAN"}}}}}`
	for _, name := range []string{"Loja & Cia", `Loja\u0000Cia`, "Loja\xffCia"} {
		f.Add([]byte(strings.Replace(valid, "NAME", name, 1)))
	}
	f.Add([]byte(strings.Replace(strings.Replace(valid, "NAME", "Loja", 1), `"localInstrument":"MANU"`,
		`"localInstrument":"QRES","proxy":"k","qrCode":"`+BRCode("k", "", "0.01", "")+`"`, 1)))
	store := fuzzStore(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if herr := httpx.CheckJSON(body); herr != nil {
			return // refused at the edge with a 400
		}
		in, verr := decodeCreate(body)
		if (in == nil) == (verr == nil) {
			t.Fatalf("decodeCreate(%q) = %v, %v", body, in, verr)
		}
		if in != nil {
			if err := in.Validate(now); err != nil && (len(err.Problems) == 0 || len(err.Problems) > 3) {
				t.Fatalf("%d problems", len(err.Problems))
			}
			store(t, *in, "")
		}
	})
}
