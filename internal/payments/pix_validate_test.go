package payments

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func intp(n int) *int { return &n }

func strp(s string) *string { return &s }

func TestConsentDates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pay  Payment
		want string
	}{
		{"immediate", Payment{Date: "2024-10-15"}, "2024-10-15"},
		{"single", Payment{Schedule: &Schedule{Single: &ScheduleSingle{Date: "2024-11-01"}}}, "2024-11-01"},
		{"daily", Payment{Schedule: &Schedule{Daily: &ScheduleDaily{StartDate: "2024-10-30", Quantity: intp(3)}}},
			"2024-10-30 2024-10-31 2024-11-01"},
		// 2024-10-16 is a Wednesday: the first Friday is the 18th.
		{"weekly", Payment{Schedule: &Schedule{Weekly: &ScheduleWeekly{DayOfWeek: "SEXTA_FEIRA", StartDate: "2024-10-16", Quantity: intp(2)}}},
			"2024-10-18 2024-10-25"},
		// Day 31: months without it pay on the first of the next month.
		{"monthly 31", Payment{Schedule: &Schedule{Monthly: &ScheduleMonthly{DayOfMonth: intp(31), StartDate: "2024-10-16", Quantity: intp(4)}}},
			"2024-10-31 2024-12-01 2024-12-31 2025-01-31"},
		{"monthly 30 february", Payment{Schedule: &Schedule{Monthly: &ScheduleMonthly{DayOfMonth: intp(30), StartDate: "2025-01-31", Quantity: intp(2)}}},
			"2025-03-01 2025-03-30"},
		{"monthly before start", Payment{Schedule: &Schedule{Monthly: &ScheduleMonthly{DayOfMonth: intp(5), StartDate: "2024-10-16", Quantity: intp(2)}}},
			"2024-11-05 2024-12-05"},
		{"custom sorted", Payment{Schedule: &Schedule{Custom: &ScheduleCustom{Dates: []string{"2024-12-01", "2024-11-01"}}}},
			"2024-11-01 2024-12-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, d := range consentDates(&tt.pay) {
				got = append(got, d.Format(time.DateOnly))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("dates = %v, want %s", got, tt.want)
			}
		})
	}
}

func validItem(e2e string) PixPaymentRequest {
	return PixPaymentRequest{EndToEndID: e2e, LocalInstrument: "DICT", Proxy: strp("12345678909"), CNPJInitiator: "50685362000135",
		Payment:         &PixAmount{Amount: "150.00", Currency: "BRL"},
		CreditorAccount: &Account{ISPB: "12345678", Issuer: "1774", Number: "1234567890", AccountType: "CACC"}}
}

// TestValidatePixPayments: one case per rule that needs no consent.
func TestValidatePixPayments(t *testing.T) {
	t.Parallel()
	const e2e = "E1234567820241015185512345678901"
	tests := []struct {
		name   string
		change func(p *PixPaymentRequest)
		code   string
	}{
		{"valid", func(*PixPaymentRequest) {}, ""},
		{"no endToEndId", func(p *PixPaymentRequest) { p.EndToEndID = "" }, CodeParametroNaoInformado},
		{"endToEndId pattern", func(p *PixPaymentRequest) { p.EndToEndID = "X" + e2e[1:] }, CodeParametroInvalido},
		{"endToEndId date that does not exist", func(p *PixPaymentRequest) { p.EndToEndID = "E12345678202502301500" + e2e[21:] }, CodeParametroInvalido},
		{"localInstrument", func(p *PixPaymentRequest) { p.LocalInstrument = "TED" }, CodeParametroInvalido},
		{"no payment", func(p *PixPaymentRequest) { p.Payment = nil }, CodeParametroNaoInformado},
		{"amount pattern", func(p *PixPaymentRequest) { p.Payment.Amount = "150" }, CodeParametroInvalido},
		{"zero amount", func(p *PixPaymentRequest) { p.Payment.Amount = "0.00" }, CodeDetalhePagamentoInvalido},
		{"no creditorAccount", func(p *PixPaymentRequest) { p.CreditorAccount = nil }, CodeParametroNaoInformado},
		{"issuer for CACC", func(p *PixPaymentRequest) { p.CreditorAccount.Issuer = "" }, CodeDetalhePagamentoInvalido},
		{"no cnpjInitiator", func(p *PixPaymentRequest) { p.CNPJInitiator = "" }, CodeParametroNaoInformado},
		{"cnpjInitiator pattern", func(p *PixPaymentRequest) { p.CNPJInitiator = "5068536200013" }, CodeParametroInvalido},
		{"remittance too long", func(p *PixPaymentRequest) { p.RemittanceInformation = strp(strings.Repeat("a", 141)) }, CodeParametroInvalido},
		{"DICT without proxy", func(p *PixPaymentRequest) { p.Proxy = nil }, CodeDetalhePagamentoInvalido},
		{"MANU with proxy", func(p *PixPaymentRequest) { p.LocalInstrument = "MANU" }, CodeDetalhePagamentoInvalido},
		{"DICT with qrCode", func(p *PixPaymentRequest) { p.QRCode = strp(BRCode("12345678909", "", "", "")) }, CodeDetalhePagamentoInvalido},
		{"QRES without qrCode", func(p *PixPaymentRequest) { p.LocalInstrument = "QRES" }, CodeDetalhePagamentoInvalido},
		{"DICT with transactionIdentification", func(p *PixPaymentRequest) { p.TransactionIdentification = strp("abc") }, CodeDetalhePagamentoInvalido},
		{"INIC without transactionIdentification", func(p *PixPaymentRequest) { p.LocalInstrument = "INIC" }, CodeDetalhePagamentoInvalido},
		{"QRDN short TxId", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode, p.TransactionIdentification = "QRDN", strp(BRCode("", testDynamicURL, "", "")), strp("abc")
		}, CodeDetalhePagamentoInvalido},
		{"QRES static code", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode = "QRES", strp(BRCode("12345678909", "", "150.00", ""))
		}, ""},
		{"QRES static code with its TxId", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode, p.TransactionIdentification = "QRES", strp(BRCode("12345678909", "", "", "PED1")), strp("PED1")
		}, ""},
		{"QRDN dynamic code", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode, p.TransactionIdentification = "QRDN", strp(BRCode("", testDynamicURL, "150.00", "")), strp(strings.Repeat("a", 30))
		}, ""},
		{"QRES made-up qrCode", func(p *PixPaymentRequest) { p.LocalInstrument, p.QRCode = "QRES", strp("000201") }, CodeParametroInvalido},
		{"QRES qrCode with another CRC", func(p *PixPaymentRequest) {
			qr := BRCode("12345678909", "", "", "")
			p.LocalInstrument, p.QRCode = "QRES", strp(qr[:len(qr)-4]+"0000")
		}, CodeParametroInvalido},
		{"QRES dynamic code", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode = "QRES", strp(BRCode("", testDynamicURL, "", ""))
		}, CodeDetalhePagamentoInvalido},
		{"QRDN static code", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode, p.TransactionIdentification = "QRDN", strp(BRCode("12345678909", "", "", "")), strp(strings.Repeat("a", 30))
		}, CodeDetalhePagamentoInvalido},
		{"QRES key is not the proxy", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode = "QRES", strp(BRCode("maria@example.com", "", "", ""))
		}, CodeDetalhePagamentoInvalido},
		{"QRES amount other than the code's", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode = "QRES", strp(BRCode("12345678909", "", "150.01", ""))
		}, CodeValorInvalido},
		{"QRDN amount other than the code's", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode, p.TransactionIdentification = "QRDN", strp(BRCode("", testDynamicURL, "15.00", "")), strp(strings.Repeat("a", 30))
		}, CodeValorInvalido},
		{"QRES without the code's TxId", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode = "QRES", strp(BRCode("12345678909", "", "", "PED1"))
		}, CodeDetalhePagamentoInvalido},
		{"QRES TxId the code lacks", func(p *PixPaymentRequest) {
			p.LocalInstrument, p.QRCode, p.TransactionIdentification = "QRES", strp(BRCode("12345678909", "", "", "")), strp("PED1")
		}, CodeDetalhePagamentoInvalido},
		{"transactionIdentification pattern", func(p *PixPaymentRequest) { p.TransactionIdentification = strp("a-b") }, CodeParametroInvalido},
		{"ibgeTownCode", func(p *PixPaymentRequest) { p.IBGETownCode = "123" }, CodeParametroInvalido},
		{"authorisationFlow", func(p *PixPaymentRequest) { p.AuthorisationFlow = "OTHER" }, CodeParametroInvalido},
		{"CIBA not supported", func(p *PixPaymentRequest) { p.AuthorisationFlow = "CIBA_FLOW" }, CodeDetalhePagamentoInvalido},
		{"consentId pattern", func(p *PixPaymentRequest) { p.ConsentID = "not-a-urn" }, CodeParametroInvalido},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validItem(e2e)
			tt.change(&p)
			v := validatePixPayments([]PixPaymentRequest{p})
			switch {
			case tt.code == "" && v != nil:
				t.Fatalf("refused: %v", v)
			case tt.code != "" && (v == nil || v.Problems[0].Code != tt.code || v.Status != 422):
				t.Fatalf("got %v, want %s", v, tt.code)
			}
		})
	}
	t.Run("repeated endToEndId", func(t *testing.T) {
		if v := validatePixPayments([]PixPaymentRequest{validItem(e2e), validItem(e2e)}); v == nil || !v.Has(CodeParametroInvalido) {
			t.Fatalf("got %v", v)
		}
	})
	t.Run("more than 60", func(t *testing.T) {
		items := make([]PixPaymentRequest, 61)
		for i := range items {
			items[i] = validItem(e2e)
		}
		v := validatePixPayments(items)
		if v == nil || v.Problems[0].Detail != "Quantidade permitida de pagamentos excedida" {
			t.Fatalf("got %v", v)
		}
	})
	t.Run("at most 9 problems", func(t *testing.T) {
		items := make([]PixPaymentRequest, 20)
		if v := validatePixPayments(items); v == nil || len(v.Problems) != 9 {
			t.Fatalf("got %v", v)
		}
	})
}

// TestMatchConsent: the rules that compare the payments with their consent.
func TestMatchConsent(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)
	var req ConsentRequest
	body := `{"payment":{"type":"PIX","date":"2024-10-15","currency":"BRL","amount":"150.00","ibgeTownCode":"5300108",
		"details":{"localInstrument":"DICT","proxy":"12345678909","creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}}}`
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	immediate := &Consent{ID: "urn:ponte:a", Request: req}
	sched := &Consent{ID: "urn:ponte:b", Request: req}
	p := *req.Payment
	p.Date, p.Schedule = "", &Schedule{Daily: &ScheduleDaily{StartDate: "2024-10-16", Quantity: intp(2)}}
	sched.Request.Payment = &p
	item := func(e2e string, change func(p *PixPaymentRequest)) PixPaymentRequest {
		it := validItem(e2e)
		it.IBGETownCode = "5300108"
		if change != nil {
			change(&it)
		}
		return it
	}
	const nowE2E = "E1234567820241015185500000000001"
	tests := []struct {
		name  string
		c     *Consent
		items []PixPaymentRequest
		code  string
	}{
		{"immediate", immediate, []PixPaymentRequest{item(nowE2E, nil)}, ""},
		{"amount", immediate, []PixPaymentRequest{item(nowE2E, func(p *PixPaymentRequest) { p.Payment.Amount = "150.01" })}, CodePagamentoDivergente},
		{"currency", immediate, []PixPaymentRequest{item(nowE2E, func(p *PixPaymentRequest) { p.Payment.Currency = "USD" })}, CodePagamentoDivergente},
		{"creditor account", immediate, []PixPaymentRequest{item(nowE2E, func(p *PixPaymentRequest) { p.CreditorAccount.Number = "1" })}, CodePagamentoDivergente},
		{"localInstrument", immediate, []PixPaymentRequest{item(nowE2E, func(p *PixPaymentRequest) { p.LocalInstrument = "INIC" })}, CodePagamentoDivergente},
		{"proxy", immediate, []PixPaymentRequest{item(nowE2E, func(p *PixPaymentRequest) { p.Proxy = strp("x@y.com") })}, CodePagamentoDivergente},
		{"ibgeTownCode", immediate, []PixPaymentRequest{item(nowE2E, func(p *PixPaymentRequest) { p.IBGETownCode = "" })}, CodePagamentoDivergente},
		{"consentId", immediate, []PixPaymentRequest{item(nowE2E, func(p *PixPaymentRequest) { p.ConsentID = "urn:ponte:other" })}, CodePagamentoDivergente},
		{"count", immediate, []PixPaymentRequest{item(nowE2E, nil), item(nowE2E, nil)}, CodePagamentoDivergente},
		{"immediate endToEndId 13 h ahead", immediate, []PixPaymentRequest{item("E1234567820241016080000000000001", nil)}, CodeParametroInvalido},
		{"immediate endToEndId 11 h ahead", immediate, []PixPaymentRequest{item("E1234567820241016055500000000001", nil)}, ""},
		{"scheduled", sched, []PixPaymentRequest{item("E1234567820241016150000000000001", nil), item("E1234567820241017150000000000002", nil)}, ""},
		{"scheduled not 15:00", sched, []PixPaymentRequest{item("E1234567820241016140000000000001", nil), item("E1234567820241017150000000000002", nil)}, CodeParametroInvalido},
		{"scheduled other date", sched, []PixPaymentRequest{item("E1234567820241016150000000000001", nil), item("E1234567820241018150000000000002", nil)}, CodeParametroInvalido},
		{"scheduled same date twice", sched, []PixPaymentRequest{item("E1234567820241016150000000000001", nil), item("E1234567820241016150000000000002", nil)}, CodeParametroInvalido},
		{"scheduled count", sched, []PixPaymentRequest{item("E1234567820241016150000000000001", nil)}, CodePagamentoDivergente},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dates, v := matchConsent(tt.c, tt.items, now)
			switch {
			case tt.code == "" && v != nil:
				t.Fatalf("refused: %v", v)
			case tt.code == "" && len(dates) != len(tt.items):
				t.Fatalf("dates %v", dates)
			case tt.code != "" && (v == nil || v.Problems[0].Code != tt.code):
				t.Fatalf("got %v, want %s", v, tt.code)
			}
		})
	}
}

func TestAmountCents(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"0.01": 1, "150.00": 15000, "100000.12": 10000012, "9999999999999999.99": 999999999999999999} {
		if got, err := amountCents(in); err != nil || got != want {
			t.Errorf("amountCents(%s) = %d, %v", in, got, err)
		}
	}
}

// FuzzDecodePixPayments: whatever the body, the payment decoder and the
// validation answer a 400 or 422 or accept it; they never panic, and an
// accepted body re-encodes to items that validate the same way.
func FuzzDecodePixPayments(f *testing.F) {
	f.Add(`{"data":[{"endToEndId":"E1234567820241015185500000000001","localInstrument":"DICT","proxy":"12345678909","cnpjInitiator":"50685362000135","payment":{"amount":"150.00","currency":"BRL"},"creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}]}`)
	f.Add(`{"data":[]}`)
	f.Add(`{"data":{}}`)
	f.Add(`{"data":[{"endToEndId":1}]}`)
	f.Add(`[]`)
	f.Add(`{"data":[{"localInstrument":"QRDN","qrCode":"","transactionIdentification":"` + strings.Repeat("a", 40) + `"}]}`)
	f.Add(`{"data":[{"endToEndId":"E1234567820241015185500000000001","localInstrument":"QRES","proxy":"12345678909","qrCode":"` +
		BRCode("12345678909", "", "150.00", "PED1") + `","transactionIdentification":"PED1","cnpjInitiator":"50685362000135",` +
		`"payment":{"amount":"150.00","currency":"BRL"},"creditorAccount":{"ispb":"12345678","issuer":"1774","number":"1234567890","accountType":"CACC"}}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		items, verr := decodePixPayments([]byte(body))
		if verr != nil {
			if verr.Status != 400 && verr.Status != 422 || len(verr.Problems) == 0 {
				t.Fatalf("decode error %+v", verr)
			}
			return
		}
		v := validatePixPayments(items)
		if v != nil && (v.Status != 422 || len(v.Problems) == 0 || len(v.Problems) > 9) {
			t.Fatalf("validation error %+v", v)
		}
		if v == nil {
			for _, it := range items {
				if _, err := amountCents(it.Payment.Amount); err != nil {
					t.Fatalf("accepted an amount that does not convert: %v", err)
				}
				if _, ok := endToEndTime(it.EndToEndID); !ok {
					t.Fatalf("accepted an endToEndId without a date: %s", it.EndToEndID)
				}
			}
		}
	})
}
