package holder

import (
	"testing"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/ofb"
)

// FuzzCreateTicketBody runs the ticket body through the same decoding and
// validation as the handler: never a panic, and whatever passes is a valid ticket request.
func FuzzCreateTicketBody(f *testing.F) {
	f.Add([]byte(`{"requestUri":"17307eb8","clientId":"7481c175","documentNumber":"47742663023"}`))
	f.Add([]byte(`{"requestUri":1,"clientId":null}`))
	f.Add([]byte(`{"documentNumber":"11222333000181","requestUri":"\u0000","clientId":"x"}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var in CreateTicket
		if err := httpx.DecodeObject(b, &in); err != nil {
			if err.Status != 400 || len(err.Merge(in.Validate()).Fields) == 0 {
				t.Fatalf("bad error %+v", err)
			}
			return
		}
		if fields := in.Validate(); len(fields) == 0 {
			if ofb.ValidateDocument(in.DocumentNumber) != nil || in.RequestURI == "" || in.ClientID == "" ||
				len(in.RequestURI) > maxRequestURI || len(in.ClientID) > maxClientID {
				t.Fatalf("accepted invalid %+v", in)
			}
		}
	})
}
