package itpflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// brt is Brasília time, the zone of the Payments API's dates.
var brt = time.FixedZone("BRT", -3*3600)

// consentSchedule is payment.schedule of a Payments v4 consent (one of its
// members is set).
type consentSchedule struct {
	Single *struct {
		Date string `json:"date"`
	} `json:"single"`
	Daily *struct {
		StartDate string `json:"startDate"`
		Quantity  int    `json:"quantity"`
	} `json:"daily"`
	Weekly *struct {
		DayOfWeek string `json:"dayOfWeek"`
		StartDate string `json:"startDate"`
		Quantity  int    `json:"quantity"`
	} `json:"weekly"`
	Monthly *struct {
		DayOfMonth int    `json:"dayOfMonth"`
		StartDate  string `json:"startDate"`
		Quantity   int    `json:"quantity"`
	} `json:"monthly"`
	Custom *struct {
		Dates []string `json:"dates"`
	} `json:"custom"`
}

var weekdays = map[string]time.Weekday{
	"SEGUNDA_FEIRA": time.Monday, "TERCA_FEIRA": time.Tuesday, "QUARTA_FEIRA": time.Wednesday,
	"QUINTA_FEIRA": time.Thursday, "SEXTA_FEIRA": time.Friday, "SABADO": time.Saturday, "DOMINGO": time.Sunday,
}

// maxScheduled bounds a schedule's payments, as the Payments v4 file does
// (quantity and custom dates up to 60).
const maxScheduled = 60

var errSchedule = errors.New("itpflow: the consent's schedule cannot be paid")

func parseDate(s string) (time.Time, error) {
	d, err := time.ParseInLocation("2006-01-02", s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: date %q", errSchedule, s)
	}
	return d, nil
}

// dates expands a schedule into the settlement date of each payment, in
// order. A monthly day the month lacks (29, 30, 31) moves to the first day
// of the next month: the file asks the initiator to send the day after the
// planned date in that case.
func (s *consentSchedule) dates() ([]time.Time, error) {
	count := func(q int) error {
		if q < 1 || q > maxScheduled {
			return fmt.Errorf("%w: quantity %d", errSchedule, q)
		}
		return nil
	}
	var out []time.Time
	switch {
	case s.Single != nil:
		d, err := parseDate(s.Single.Date)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	case s.Daily != nil:
		start, err := parseDate(s.Daily.StartDate)
		if err != nil {
			return nil, err
		}
		if err := count(s.Daily.Quantity); err != nil {
			return nil, err
		}
		for i := range s.Daily.Quantity {
			out = append(out, start.AddDate(0, 0, i))
		}
	case s.Weekly != nil:
		start, err := parseDate(s.Weekly.StartDate)
		if err != nil {
			return nil, err
		}
		wd, ok := weekdays[s.Weekly.DayOfWeek]
		if !ok {
			return nil, fmt.Errorf("%w: dayOfWeek %q", errSchedule, s.Weekly.DayOfWeek)
		}
		if err := count(s.Weekly.Quantity); err != nil {
			return nil, err
		}
		first := start.AddDate(0, 0, (int(wd)-int(start.Weekday())+7)%7)
		for i := range s.Weekly.Quantity {
			out = append(out, first.AddDate(0, 0, 7*i))
		}
	case s.Monthly != nil:
		start, err := parseDate(s.Monthly.StartDate)
		if err != nil {
			return nil, err
		}
		day := s.Monthly.DayOfMonth
		if day < 1 || day > 31 {
			return nil, fmt.Errorf("%w: dayOfMonth %d", errSchedule, day)
		}
		if err := count(s.Monthly.Quantity); err != nil {
			return nil, err
		}
		month := time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC)
		if monthDay(month, day).Before(start) {
			month = month.AddDate(0, 1, 0)
		}
		for i := range s.Monthly.Quantity {
			out = append(out, monthDay(month.AddDate(0, i, 0), day))
		}
	case s.Custom != nil:
		if len(s.Custom.Dates) < 1 || len(s.Custom.Dates) > maxScheduled {
			return nil, fmt.Errorf("%w: %d custom dates", errSchedule, len(s.Custom.Dates))
		}
		for _, v := range s.Custom.Dates {
			d, err := parseDate(v)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	default:
		return nil, fmt.Errorf("%w: no schedule", errSchedule)
	}
	for _, d := range out {
		if d.Year() > 9999 {
			return nil, fmt.Errorf("%w: a date past year 9999", errSchedule)
		}
	}
	return out, nil
}

// monthDay is day of month's month, or the first of the next month when the
// month is shorter.
func monthDay(month time.Time, day int) time.Time {
	last := time.Date(month.Year(), month.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if day > last {
		return time.Date(month.Year(), month.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(month.Year(), month.Month(), day, 0, 0, 0, 0, time.UTC)
}

// pixConsent is what a Pix payment takes from its Payments v4 consent (the
// brand's answer after the user authorised it).
type pixConsent struct {
	ConsentID string `json:"consentId"`
	Payment   struct {
		Date         string           `json:"date"`
		Schedule     *consentSchedule `json:"schedule"`
		Currency     string           `json:"currency"`
		Amount       string           `json:"amount"`
		IBGETownCode string           `json:"ibgeTownCode"`
		Details      struct {
			LocalInstrument string          `json:"localInstrument"`
			QRCode          string          `json:"qrCode"`
			Proxy           string          `json:"proxy"`
			CreditorAccount json.RawMessage `json:"creditorAccount"`
		} `json:"details"`
	} `json:"payment"`
}

// PaymentOptions are what a partner adds to the payments Ponte creates
// under a consent: fields of the payment request that the consent does not
// carry.
type PaymentOptions struct {
	// RemittanceInformation is the payer's message to the creditor.
	RemittanceInformation string `json:"remittanceInformation,omitempty"`
	// TransactionIdentification is the txid: required for INIC and QRDN,
	// absent for MANU and DICT (Payments v4).
	TransactionIdentification string `json:"transactionIdentification,omitempty"`
}

// pixPaymentItems builds the items of POST /pix/payments for a consent:
// one per settlement date (the consent's date, or each date of its
// schedule), each with its own endToEndId generated by Ponte as the
// initiator, amount, currency, creditor account, localInstrument, proxy and
// qrCode as the consent has them.
func pixPaymentItems(data json.RawMessage, opts PaymentOptions, initiator Initiator, now time.Time) ([]map[string]any, error) {
	var c pixConsent
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("itpflow: the consent's data: %w", err)
	}
	d := c.Payment.Details
	if c.ConsentID == "" || c.Payment.Amount == "" || d.LocalInstrument == "" || len(d.CreditorAccount) == 0 {
		return nil, errors.New("itpflow: the consent lacks its id, amount, localInstrument or creditorAccount")
	}
	if initiator.CNPJ == "" {
		return nil, errors.New("itpflow: the initiator's CNPJ is not configured")
	}
	currency := c.Payment.Currency
	if currency == "" {
		currency = "BRL"
	}
	// An immediate payment's endToEndId carries the submission minute;
	// a scheduled one's its date at 15:00 UTC.
	var instants []time.Time
	if c.Payment.Schedule != nil {
		dates, err := c.Payment.Schedule.dates()
		if err != nil {
			return nil, err
		}
		for _, day := range dates {
			instants = append(instants, scheduledInstant(day))
		}
	} else {
		instants = append(instants, now.UTC())
	}
	items := make([]map[string]any, 0, len(instants))
	for _, at := range instants {
		e2e, err := newEndToEndID(initiator.ISPB, at)
		if err != nil {
			return nil, err
		}
		item := map[string]any{
			"endToEndId": e2e, "localInstrument": d.LocalInstrument,
			"payment":         map[string]string{"amount": c.Payment.Amount, "currency": currency},
			"creditorAccount": d.CreditorAccount, "cnpjInitiator": initiator.CNPJ,
			"authorisationFlow": "HYBRID_FLOW", "consentId": c.ConsentID,
		}
		if d.Proxy != "" {
			item["proxy"] = d.Proxy
		}
		if d.QRCode != "" {
			item["qrCode"] = d.QRCode
		}
		if c.Payment.IBGETownCode != "" {
			item["ibgeTownCode"] = c.Payment.IBGETownCode
		}
		if opts.RemittanceInformation != "" {
			item["remittanceInformation"] = opts.RemittanceInformation
		}
		if opts.TransactionIdentification != "" {
			item["transactionIdentification"] = opts.TransactionIdentification
		}
		items = append(items, item)
	}
	return items, nil
}
