package consentflow

import (
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// The 201 body is written without encoding/json; it must be exactly what
// httpx.Marshal(t.JSON()) writes, as every other answer is (no HTML escapes).
func TestTicketJSONIsJSONMarshal(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 7, 0, time.UTC)
	strs := []string{"", "plain", "urn:ietf:params:oauth:request_uri:abc-DEF_123.~", "a<b>&c", `quo"te`, `back\slash`,
		"tab\there", "ünïcødé", "\u2028", "\x7f", "47742663023", "ZZ 9 !#$%'()*+,-./:;=?@[]^`{|}"}
	for c := 0; c < 0x100; c++ {
		strs = append(strs, "x"+string(rune(c))+"y", "x"+string([]byte{byte(c)})+"y")
	}
	for _, s := range strs {
		tk := &Ticket{TicketID: "0123456789abcdef0123456789abcdef", CompanyKey: s, DocumentNumber: "47742663023",
			RequestURI: s, ClientID: s + "x", Status: TicketUnused, CreatedAt: at, UpdatedAt: at.Add(time.Second)}
		want, err := httpx.Marshal(tk.JSON())
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendTicketJSON(nil, tk)
		if ok && string(got) != string(want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
		resp, err := createdResponse(Created{Ticket: asCreated(tk)})
		if err != nil {
			t.Fatal(err)
		}
		created := *tk
		created.UpdatedAt = tk.CreatedAt
		want, _ = httpx.Marshal(created.JSON())
		if string(resp.Body) != string(want) || resp.Status != 201 {
			t.Errorf("%q: createdResponse of asCreated %d %s, want 201 %s", s, resp.Status, resp.Body, want)
		}
	}
}
