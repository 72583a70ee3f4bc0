package recurring

import (
	"fmt"
	"time"
)

// usage is what a consent's payments that count (every status but RJCT and
// CANC) add up to, over the consent's life and in the calendar windows
// (Brasília time) of the day being paid.
type usage struct {
	totalCents                                 int64
	dayCount, weekCount, monthCount, yearCount int64
	dayCents, weekCents, monthCents, yearCents int64
}

// windows are the first days (YYYY-MM-DD) of the day, ISO week (Monday to
// Sunday), month and year that contain day.
type windows struct{ day, week, month, year string }

func windowsOf(day time.Time) windows {
	const layout = "2006-01-02"
	wd := (int(day.Weekday()) + 6) % 7 // Monday = 0
	return windows{
		day:   day.Format(layout),
		week:  day.AddDate(0, 0, -wd).Format(layout),
		month: time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC).Format(layout),
		year:  time.Date(day.Year(), 1, 1, 0, 0, 0, 0, time.UTC).Format(layout),
	}
}

// limitProblem returns the code and detail of the first sweeping limit a
// payment of cents would overrun given u, or "" when it fits. The order is
// the specification's list: per transaction, total, then per period.
func limitProblem(sw *Sweeping, cents int64, u usage) (code, detail string) {
	if sw == nil {
		return "", ""
	}
	if limit, ok := Cents(sw.TransactionLimit); ok && cents > limit {
		return CodeLimiteValorTransacaoExcedido, fmt.Sprintf("%s O limite por transação é %s.",
			paymentDetails[CodeLimiteValorTransacaoExcedido], sw.TransactionLimit)
	}
	if limit, ok := Cents(sw.TotalAllowedAmount); ok && u.totalCents+cents > limit {
		return CodeLimiteValorTotalExcedido, fmt.Sprintf("%s Já utilizado: %s de %s.",
			paymentDetails[CodeLimiteValorTotalExcedido], formatCents(u.totalCents), sw.TotalAllowedAmount)
	}
	p := sw.PeriodicLimits
	if p == nil {
		return "", ""
	}
	for _, w := range []struct {
		name         string
		limit        *Limit
		count, cents int64
	}{
		{"diário", p.Day, u.dayCount, u.dayCents},
		{"semanal", p.Week, u.weekCount, u.weekCents},
		{"mensal", p.Month, u.monthCount, u.monthCents},
		{"anual", p.Year, u.yearCount, u.yearCents},
	} {
		if w.limit == nil {
			continue
		}
		if w.limit.QuantityLimit != nil && w.count+1 > int64(*w.limit.QuantityLimit) {
			return CodeLimitePeriodoQuantidadeExcedido, fmt.Sprintf("%s Limite %s: %d transferências.",
				paymentDetails[CodeLimitePeriodoQuantidadeExcedido], w.name, *w.limit.QuantityLimit)
		}
		if limit, ok := Cents(w.limit.TransactionLimit); ok && w.cents+cents > limit {
			return CodeLimitePeriodoValorExcedido, fmt.Sprintf("%s Limite %s: %s, já utilizado %s.",
				paymentDetails[CodeLimitePeriodoValorExcedido], w.name, w.limit.TransactionLimit, formatCents(w.cents))
		}
	}
	return "", ""
}
