package recurring_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

// FuzzDecodeBodies feeds arbitrary bytes through the request's checks (the
// edge's text check, the body decoders, the validations behind them) and
// stores the consents that pass on every engine: nothing panics, every
// refusal is a 400 or a 422 with one to three problems, and nothing accepted
// fails in a database.
func FuzzDecodeBodies(f *testing.F) {
	for _, seed := range []string{happyBody, pjBody, patchBody("REVOKED", "REVOGADO_USUARIO"), patchBody("REJECTED", "NAO_INFORMADO"),
		`{"data":{"creditors":[null],"recurringConfiguration":{"sweeping":{"periodicLimits":{"day":{}}}}}}`,
		`{"data":{"recurringConfiguration":{"sweeping":{"startDateTime":"2024-2-30T00:00:00Z"}}}}`, `{"data":null}`, `[]`, ``,
		strings.Replace(happyBody, "Marco Antonio", `Marco\u0000Antonio`, 1), strings.Replace(happyBody, "Transferências", "Transfer\xffncias", 1),
		strings.Replace(pjBody, `"issuer":"0001"`, `"issuer":"00\u00001"`, 1)} {
		f.Add([]byte(seed))
	}
	now := time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)
	dbs := storetest.OpenEach(f)
	services := make([]*recurring.Service, len(dbs))
	for i, db := range dbs {
		storetest.AddApplication(f, db.DB, "a1")
		services[i] = recurring.NewService(db.DB, clock.NewFake(now), slog.New(slog.NewTextHandler(io.Discard, nil)), "https://ponte.example")
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, body []byte) {
		if herr := httpx.CheckJSON(body); herr != nil {
			return // refused at the edge with a 400
		}
		if req, verr := recurring.DecodeCreate(body); verr != nil {
			if verr.Status != http.StatusBadRequest && verr.Status != http.StatusUnprocessableEntity {
				t.Fatalf("create decode status %d", verr.Status)
			}
		} else if verr := req.Validate(now); verr != nil && (len(verr.Problems) == 0 || len(verr.Problems) > 3 || verr.Status != http.StatusUnprocessableEntity) {
			t.Fatalf("create validation %+v", verr)
		} else if verr == nil {
			key := strconv.FormatInt(n.Add(1), 10)
			for i, svc := range services {
				_, err := svc.Create(context.Background(), recurring.CreateInput{ApplicationID: "a1", IdempotencyKey: key, Request: *req})
				var ve *payments.ValidationError
				if err != nil && !errors.As(err, &ve) && !errors.Is(err, idempotency.ErrKeyReused) {
					t.Fatalf("%s: store: %v", dbs[i].Engine, err)
				}
			}
		}
		if req, verr := recurring.DecodePatch(body); verr == nil {
			if verr := req.Validate(); verr != nil && (len(verr.Problems) == 0 || len(verr.Problems) > 3) {
				t.Fatalf("patch validation %+v", verr)
			}
		}
	})
}
