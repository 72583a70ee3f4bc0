package pcm

import (
	"strings"
	"testing"
	"time"
)

// TestPtBRFormats: the dashboard writes numbers and periods as Brazilian
// readers do.
func TestPtBRFormats(t *testing.T) {
	t.Parallel()
	ints := []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1.000"}, {57923, "57.923"}, {1234567, "1.234.567"}, {-1234, "-1.234"}}
	for _, c := range ints {
		if got := formatInt(c.n); got != c.want {
			t.Errorf("formatInt(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	rates := []struct {
		r    float64
		want string
	}{{0, "0,0%"}, {0.579, "57,9%"}, {1, "100,0%"}, {2.0 / 3, "66,7%"}, {12.345, "1.234,5%"}}
	for _, c := range rates {
		if got := pct(c.r); got != c.want {
			t.Errorf("pct(%v) = %q, want %q", c.r, got, c.want)
		}
	}
	brt := time.FixedZone("-03", -3*60*60)
	periods := []struct {
		from, to time.Time
		want     string
	}{
		{time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC), "01/12/2026 – 07/12/2026"},
		{time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC), "01/12/2026"},
		{time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 14, 30, 0, 0, time.UTC), "01/12/2026 10:00 – 01/12/2026 11:30"},
	}
	for _, c := range periods {
		if got := period(c.from, c.to, brt); got != c.want {
			t.Errorf("period(%s, %s) = %q, want %q", c.from, c.to, got, c.want)
		}
	}
}

// TestDashboardProblemsInPortuguese: every problem of a funnel query reads
// as Portuguese on the page, while the API keeps its English message.
func TestDashboardProblemsInPortuguese(t *testing.T) {
	t.Parallel()
	values := map[string]string{"from": "ontem", "to": "amanhã", "side": "BOTH", "platform": "TV", "os": "BEOS", "brand": strings.Repeat("b", 101)}
	_, ps := ParseQueryIn(func(k string) string { return values[k] }, time.Now(), DashboardLocation)
	_, order := ParseQueryIn(func(k string) string { return map[string]string{"from": "2024-10-05", "to": "2024-10-01"}[k] }, time.Now(), DashboardLocation)
	_, long := ParseQueryIn(func(k string) string { return map[string]string{"from": "2023-01-01", "to": "2024-10-01"}[k] }, time.Now(), DashboardLocation)
	want := []string{
		"“De” não é uma data válida: escolha uma no calendário.",
		"“Até” não é uma data válida: escolha uma no calendário.",
		"“Lado” tem um valor que não existe: escolha uma das opções da lista.",
		"“Plataforma” tem um valor que não existe: escolha uma das opções da lista.",
		"“Sistema” tem um valor que não existe: escolha uma das opções da lista.",
		"“Marca (id)” pode ter no máximo 100 caracteres.",
		"A data em “De” não pode ser depois da data em “Até”.",
		"O período pode ter no máximo 366 dias: aproxime “De” e “Até”.",
	}
	all := append(append(ps, order...), long...)
	if len(all) != len(want) {
		t.Fatalf("problems %+v", all)
	}
	for i, p := range all {
		if got := problemText(p); got != want[i] {
			t.Errorf("problem %s %q reads %q, want %q", p.Field, p.Message, got, want[i])
		}
		if p.Message == "" || p.Message == want[i] {
			t.Errorf("problem %s lost its API message: %q", p.Field, p.Message)
		}
	}
}
