package consentflow

import (
	"context"
	"database/sql"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// FuzzCreateTicketBody runs the ticket body through the same checks as a
// request (the edge's text check, decoding, validation) and stores what
// passes on every engine: never a panic, never a database error, and
// whatever passes is a valid ticket request.
func FuzzCreateTicketBody(f *testing.F) {
	f.Add([]byte(`{"requestUri":"17307eb8","clientId":"7481c175","documentNumber":"47742663023"}`))
	f.Add([]byte(`{"requestUri":1,"clientId":null}`))
	f.Add([]byte(`{"documentNumber":"11222333000181","requestUri":"\u0000","clientId":"x"}`))
	f.Add([]byte(`{"documentNumber":"47742663023","requestUri":"a\u0000b","clientId":"x"}`))
	f.Add([]byte("{\"documentNumber\":\"47742663023\",\"requestUri\":\"r\",\"clientId\":\"a\xffb\"}"))
	f.Add([]byte(`[`))
	dbs := storetest.OpenEach(f)
	tickets := make([]*Tickets, len(dbs))
	for i, db := range dbs {
		storetest.AddApplication(f, db.DB, "a1")
		tickets[i] = NewTickets(db.DB, clock.NewFake(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), SandboxRequestURIs{},
			NewTicketMetrics(prometheus.NewRegistry()), nil)
	}
	p := &httpx.Principal{ApplicationID: "a1", CompanyKey: "K"}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := httpx.CheckJSON(b); err != nil {
			if err.Status != 400 || len(err.Fields) != 1 {
				t.Fatalf("bad text refusal %+v", err)
			}
			return
		}
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
			key := strconv.FormatInt(n.Add(1), 10)
			for i, tk := range tickets {
				if _, err := tk.Create(context.Background(), p, in, key, "POST /openfinance/consent-flow/ticket"); err != nil {
					t.Fatalf("%s: store %+v: %v", dbs[i].Engine, in, err)
				}
			}
		}
	})
}

// FuzzInteractionBodies runs the login, consent and cancel bodies through the
// request's checks (the edge's text check, decoding, validation): never a
// panic, errors are 400s naming a field, and whatever passes carries a valid
// device (and account). A cancel that passes is stored, its device with its
// step, on every engine without a database error.
func FuzzInteractionBodies(f *testing.F) {
	f.Add([]byte(`{"device":{"platform":"APP","os":"ANDROID","osVersion":"14\u0000"}}`))
	f.Add([]byte("{\"device\":{\"platform\":\"APP\",\"os\":\"IOS\",\"osVersion\":\"17\xff\"}}"))
	f.Add([]byte(`{"accessToken":"a.b.c","device":{"platform":"BROWSER","os":"LINUX","osVersion":"20.04"}}`))
	f.Add([]byte(`{"partialApproval":false,"debtorAccount":{"ispb":"37241230","issuer":"0001","number":"4261073573","accountType":"CACC"},"device":{"platform":"APP","os":"IOS","osVersion":"17.5"}}`))
	f.Add([]byte(`{"device":{"platform":"APP","os":"ANDROID","osVersion":"14"}}`))
	f.Add([]byte(`{"device":null,"partialApproval":"no","debtorAccount":[]}`))
	f.Add([]byte(`{"device":{"platform":"TV","os":"","osVersion":"` + "\u00e9" + `"}}`))
	dbs := storetest.OpenEach(f)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	interactions := make([]*Interactions, len(dbs))
	for i, db := range dbs {
		storetest.AddApplication(f, db.DB, "a1")
		interactions[i] = NewInteractions(db.DB, clock.NewFake(now), nil, fuzzPartners{}, nil, "https://ponte.example")
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := httpx.CheckJSON(b); err != nil {
			return // refused at the edge with a 400
		}
		check := func(decodeErr *httpx.Error, validate func() []httpx.FieldError, device *Device) {
			if decodeErr != nil {
				if decodeErr.Status != 400 {
					t.Fatalf("decode error status %d", decodeErr.Status)
				}
				return
			}
			if fields := validate(); len(fields) > 0 {
				for _, f := range fields {
					if f.Field == "" {
						t.Fatalf("unnamed field error %+v", f)
					}
				}
				return
			}
			if device == nil || !oneOf(device.Platform, Platforms) || !oneOf(device.OS, OSes) || !osVersionPattern.MatchString(device.OSVersion) {
				t.Fatalf("accepted invalid device %+v", device)
			}
		}
		var login LoginRequest
		check(httpx.DecodeObject(b, &login), login.Validate, login.Device)
		var consent ConsentRequest
		err := httpx.DecodeObject(b, &consent)
		check(err, consent.Validate, consent.Device)
		if err == nil && len(consent.Validate()) == 0 {
			a := consent.DebtorAccount
			if a == nil || consent.PartialApproval == nil || !ispbPattern.MatchString(a.ISPB) || !numberPattern.MatchString(a.Number) {
				t.Fatalf("accepted invalid consent %+v", consent)
			}
		}
		var cancel CancelRequest
		err = httpx.DecodeObject(b, &cancel)
		check(err, cancel.Validate, cancel.Device)
		if err == nil && len(cancel.Validate()) == 0 {
			for i, db := range dbs {
				it := &Interaction{ID: uuid.NewString(), ApplicationID: "a1", ConsentID: "c", ClientID: "c", CallbackID: uuid.NewString(),
					Document: "47742663023", Status: InteractionPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
				if err := db.Write(context.Background(), func(tx *sql.Tx) error { return insertInteraction(context.Background(), tx, it) }); err != nil {
					t.Fatal(err)
				}
				if _, err := interactions[i].Cancel(context.Background(), Actor{ApplicationID: "a1"}, "bank", it.ID, cancel); err != nil {
					t.Fatalf("%s: store the cancel of %+v: %v", db.Engine, cancel.Device, err)
				}
			}
		}
	})
}

// fuzzPartners serves application a1 as the holder partner "bank".
type fuzzPartners struct{}

func (fuzzPartners) Partner(_ context.Context, id string) (*Partner, error) {
	if id != "a1" {
		return nil, ErrPartnerNotFound
	}
	return &Partner{ApplicationID: id, ClientID: id, Name: "bank"}, nil
}
