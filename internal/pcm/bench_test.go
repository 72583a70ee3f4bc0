package pcm_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/pcm"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// benchOwners owns the consents of the bench_owners table (as tableOwners,
// for a benchmark's many consents).
type benchOwners struct{ db *store.DB }

const benchOwnerSQL = `SELECT brand_id FROM bench_owners WHERE application_id = $1 AND consent_id = $2`

func (o benchOwners) ConsentOwnerSQL() string { return benchOwnerSQL }

func (o benchOwners) ConsentOwner(ctx context.Context, applicationID, consentID string) (string, bool, error) {
	var brand string
	err := o.db.Read().QueryRowContext(ctx, benchOwnerSQL, applicationID, consentID).Scan(&brand)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return brand, err == nil, err
}

// BenchmarkReport runs reports of new steps through the report API's
// service, 8 at a time, on each engine:
//
//	go test ./internal/pcm -run '^$' -bench Report -benchtime 3000x
func BenchmarkReport(b *testing.B) {
	for _, e := range storetest.Engines() {
		b.Run(e.Name, func(b *testing.B) {
			db := storetest.Open(b, e.URL(b))
			consents := b.N
			err := db.Write(b.Context(), func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(b.Context(), `CREATE TABLE bench_owners (application_id TEXT, consent_id TEXT, brand_id TEXT, PRIMARY KEY (application_id, consent_id))`); err != nil {
					return err
				}
				_, err := tx.ExecContext(b.Context(), `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
					INSERT INTO bench_owners SELECT 'A', 'c' || i, 'B1' FROM n`, consents)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			c := clock.NewFake(day0)
			svc := &pcm.Service{DB: db, Clock: c, Recorder: &pcm.Recorder{Clock: c, DB: db, Outbox: true}, Owners: benchOwners{db}}
			in := report(pcm.StepRedirectToServer, nil)
			var n atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, created, _, err := svc.Report(context.Background(), "A", fmt.Sprintf("c%d", n.Add(1)), in); err != nil || !created {
						b.Errorf("report: created %v, %v", created, err)
						return
					}
				}
			})
		})
	}
}
