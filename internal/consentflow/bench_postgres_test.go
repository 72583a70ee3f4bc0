package consentflow_test

import (
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ponte-ofb/ponte/internal/consentflow"
)

// BenchmarkTicketsOnPostgres measures the ticket hot paths' service calls
// on PostgreSQL, from 4×GOMAXPROCS goroutines, with a webhook subscription
// to the ticket event (each redemption records an event, a delivery and a
// job). Run with PONTE_TEST_DATABASE_URL set:
//
//	go test ./internal/consentflow -run '^$' -bench TicketsOnPostgres -benchtime 3000x
func BenchmarkTicketsOnPostgres(b *testing.B) {
	s, p, _ := pgServer(b)
	tickets := s.App.Tickets
	in := consentflow.CreateTicket{RequestURI: "urn:ietf:params:oauth:request_uri:bench", ClientID: "c", DocumentNumber: "47742663023"}
	const route = "POST /openfinance/consent-flow/ticket"
	run := rand.Text() // keys unique to this run, whatever b.N
	var seq atomic.Int64
	create := func(b *testing.B) string {
		c, err := tickets.Create(b.Context(), p, in, fmt.Sprint(run, seq.Add(1)), route)
		if err != nil {
			b.Fatal(err)
		}
		return c.Ticket.TicketID
	}

	b.Run("create", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				create(b)
			}
		})
	})
	b.Run("redeem", func(b *testing.B) {
		ids := make([]string, b.N)
		for i := range ids {
			ids[i] = create(b)
		}
		var next atomic.Int64
		b.ResetTimer()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := tickets.Redeem(b.Context(), ids[next.Add(1)-1]); err != nil {
					b.Error(err)
				}
			}
		})
	})
	// One caller: the latency of one request, where round trips show most.
	b.Run("create-serial", func(b *testing.B) {
		for b.Loop() {
			create(b)
		}
	})
	b.Run("redeem-serial", func(b *testing.B) {
		ids := make([]string, b.N)
		for i := range ids {
			ids[i] = create(b)
		}
		b.ResetTimer()
		for i := range b.N {
			if _, _, err := tickets.Redeem(b.Context(), ids[i]); err != nil {
				b.Error(err)
			}
		}
	})
	b.Run("get", func(b *testing.B) {
		id := create(b)
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := tickets.Get(b.Context(), p, id); err != nil {
					b.Error(err)
				}
			}
		})
	})
}
