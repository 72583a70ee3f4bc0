package recurring_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/recurring"
)

// FuzzDecodeBodies feeds arbitrary bytes through the body decoders and the
// validations behind them: nothing panics, and every refusal is a 400 or a
// 422 with one to three problems.
func FuzzDecodeBodies(f *testing.F) {
	for _, seed := range []string{happyBody, pjBody, patchBody("REVOKED", "REVOGADO_USUARIO"), patchBody("REJECTED", "NAO_INFORMADO"),
		`{"data":{"creditors":[null],"recurringConfiguration":{"sweeping":{"periodicLimits":{"day":{}}}}}}`,
		`{"data":{"recurringConfiguration":{"sweeping":{"startDateTime":"2024-2-30T00:00:00Z"}}}}`, `{"data":null}`, `[]`, ``} {
		f.Add([]byte(seed))
	}
	now := time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		if req, verr := recurring.DecodeCreate(body); verr != nil {
			if verr.Status != http.StatusBadRequest && verr.Status != http.StatusUnprocessableEntity {
				t.Fatalf("create decode status %d", verr.Status)
			}
		} else if verr := req.Validate(now); verr != nil && (len(verr.Problems) == 0 || len(verr.Problems) > 3 || verr.Status != http.StatusUnprocessableEntity) {
			t.Fatalf("create validation %+v", verr)
		}
		if req, verr := recurring.DecodePatch(body); verr == nil {
			if verr := req.Validate(); verr != nil && (len(verr.Problems) == 0 || len(verr.Problems) > 3) {
				t.Fatalf("patch validation %+v", verr)
			}
		}
	})
}
