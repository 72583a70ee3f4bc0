package payments_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// storedStatus reads a consent's status straight from the database, so the
// GET's own expiry check does not hide whether the job ran.
func storedStatus(t *testing.T, s *apptest.Server, id string) string {
	t.Helper()
	var st string
	if err := s.App.DB.Read().QueryRow(`SELECT status FROM payment_consents WHERE id = $1`, id).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// runDue runs the due jobs and returns how many consent-expiry jobs
// completed: other features' periodic jobs may run too.
func runDue(t *testing.T, s *apptest.Server) int {
	t.Helper()
	count := func() int {
		var n int
		if err := s.App.DB.Read().QueryRow(`SELECT COUNT(*) FROM jobs WHERE kind = $1 AND state = 'completed'`, payments.JobExpire).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	if _, err := s.App.Jobs.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	return count() - before
}

// service is a payments.Service on the test server's database and clock, as
// the WebView journey will hold one.
func service(s *apptest.Server) *payments.Service {
	return payments.NewService(s.App.DB, s.App.Clock, nil, s.URL)
}

var debtor = &payments.Account{ISPB: "37241230", Issuer: "0001", Number: "123456", AccountType: "CACC"}

func TestAuthorisationTimeout(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "payments")
		id := create(t, s, tok, "t-1", happyBody).Data.ConsentID
		s.Clock.Advance(payments.AuthorisationWindow - time.Second)
		if n := runDue(t, s); n != 0 || storedStatus(t, s, id) != "AWAITING_AUTHORISATION" {
			t.Fatalf("before 5 min: ran %d jobs, status %s", n, storedStatus(t, s, id))
		}
		s.Clock.Advance(time.Second)
		if n := runDue(t, s); n != 1 {
			t.Fatalf("at 5 min: ran %d jobs, want 1", n)
		}
		if st := storedStatus(t, s, id); st != "REJECTED" {
			t.Fatalf("status %s after the timer", st)
		}
		g := get(t, s, id)
		if g.Data.Status != "REJECTED" || g.Data.RejectionReason == nil || g.Data.RejectionReason.Code != "TEMPO_EXPIRADO_AUTORIZACAO" ||
			g.Data.StatusUpdateDateTime != "2024-10-15T19:00:15Z" {
			t.Errorf("after expiry: %+v %+v", g.Data, g.Data.RejectionReason)
		}
		if _, err := service(s).Authorise(t.Context(), id, debtor); !errors.Is(err, payments.ErrInvalidTransition) {
			t.Errorf("authorise a rejected consent: %v", err)
		}
	})
}

func TestTimerFiresAfterRestart(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		id := create(t, s, s.Token(t, "payments"), "r-1", happyBody).Data.ConsentID
		s = s.Restart(t)
		s.Clock.Advance(6 * time.Minute)
		if n := runDue(t, s); n != 1 {
			t.Fatalf("after restart: ran %d jobs, want 1", n)
		}
		if st := storedStatus(t, s, id); st != "REJECTED" {
			t.Fatalf("status %s", st)
		}
		g := get(t, s, id)
		if g.Data.RejectionReason == nil || g.Data.RejectionReason.Code != "TEMPO_EXPIRADO_AUTORIZACAO" {
			t.Errorf("rejectionReason = %+v", g.Data.RejectionReason)
		}
	})
}

func TestAuthoriseThenConsumptionTimeout(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "payments")
		id := create(t, s, tok, "a-1", happyBody).Data.ConsentID
		s.Clock.Advance(2 * time.Minute)
		c, err := service(s).Authorise(t.Context(), id, debtor)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != payments.StatusAuthorised || !c.ExpiresAt.Equal(s.Clock.Now().Add(payments.ConsumptionWindow)) {
			t.Errorf("authorised: %+v", c)
		}
		g := get(t, s, id)
		if g.Data.Status != "AUTHORISED" || g.Data.DebtorAccount == nil || *g.Data.DebtorAccount != *debtor ||
			g.Data.StatusUpdateDateTime != "2024-10-15T18:57:15Z" || g.Data.ExpirationDateTime != "2024-10-15T19:57:15Z" {
			t.Errorf("get after authorise: %+v", g.Data)
		}
		if _, err := service(s).Authorise(t.Context(), id, debtor); !errors.Is(err, payments.ErrInvalidTransition) {
			t.Errorf("authorise twice: %v", err)
		}
		// The authorisation timer fires but finds the consent authorised.
		s.Clock.Advance(5 * time.Minute)
		runDue(t, s)
		if st := storedStatus(t, s, id); st != "AUTHORISED" {
			t.Fatalf("status %s after the authorisation timer", st)
		}
		s = s.Restart(t)
		s.Clock.Advance(payments.ConsumptionWindow)
		if n := runDue(t, s); n != 1 {
			t.Fatalf("consumption timer: ran %d jobs", n)
		}
		if st := storedStatus(t, s, id); st != "REJECTED" {
			t.Fatalf("status %s after the consumption timer", st)
		}
		g = get(t, s, id)
		if g.Data.RejectionReason == nil || g.Data.RejectionReason.Code != "TEMPO_EXPIRADO_CONSUMO" || g.Data.DebtorAccount == nil {
			t.Errorf("after consumption timeout: %+v", g.Data)
		}
	})
}

func TestRejectByUser(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "payments")
		id := create(t, s, tok, "u-1", happyBody).Data.ConsentID
		svc := service(s)
		if _, err := svc.Reject(t.Context(), id, "NOPE"); !errors.Is(err, payments.ErrRejectionCode) {
			t.Errorf("unknown code: %v", err)
		}
		s.Clock.Advance(time.Minute)
		c, err := svc.Reject(t.Context(), id, payments.RejectRejeitadoUsuario)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != payments.StatusRejected || c.Rejection.Code != payments.RejectRejeitadoUsuario {
			t.Errorf("rejected: %+v", c)
		}
		if _, err := svc.Reject(t.Context(), id, payments.RejectRejeitadoUsuario); !errors.Is(err, payments.ErrInvalidTransition) {
			t.Errorf("reject twice: %v", err)
		}
		if _, err := svc.Authorise(t.Context(), id, debtor); !errors.Is(err, payments.ErrInvalidTransition) {
			t.Errorf("authorise after reject: %v", err)
		}
		g := get(t, s, id)
		if g.Data.RejectionReason == nil || g.Data.RejectionReason.Code != "REJEITADO_USUARIO" || g.Data.StatusUpdateDateTime != "2024-10-15T18:56:15Z" {
			t.Errorf("get: %+v", g.Data)
		}
		// The expiry job later finds nothing to do.
		s.Clock.Advance(10 * time.Minute)
		runDue(t, s)
		if g := get(t, s, id); g.Data.RejectionReason.Code != "REJEITADO_USUARIO" {
			t.Errorf("expiry overwrote the user's rejection: %+v", g.Data.RejectionReason)
		}
		if _, err := svc.Reject(t.Context(), "urn:ponte:unknown", payments.RejectRejeitadoUsuario); !errors.Is(err, payments.ErrNotFound) {
			t.Errorf("unknown consent: %v", err)
		}
	})
}

func TestAuthoriseRules(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		tok := s.Token(t, "payments")
		svc := service(s)
		// Without a debtor account from either side.
		id := create(t, s, tok, "d-1", happyBody).Data.ConsentID
		if _, err := svc.Authorise(t.Context(), id, nil); !errors.Is(err, payments.ErrDebtorAccount) {
			t.Errorf("no debtor account: %v", err)
		}
		// The initiator's debtor account is kept; another one is refused.
		withDebtor := mutate(t, happyBody, func(m map[string]any) {
			at(m, "data")["debtorAccount"] = map[string]any{"ispb": "37241230", "issuer": "0001", "number": "123456", "accountType": "CACC"}
		})
		id2 := create(t, s, tok, "d-2", withDebtor).Data.ConsentID
		if _, err := svc.Authorise(t.Context(), id2, &payments.Account{ISPB: "37241230", Issuer: "0001", Number: "999", AccountType: "CACC"}); !errors.Is(err, payments.ErrDebtorAccount) {
			t.Errorf("other debtor account: %v", err)
		}
		if c, err := svc.Authorise(t.Context(), id2, nil); err != nil || *c.DebtorAccount != *debtor {
			t.Errorf("initiator's debtor account: %+v %v", c, err)
		}
		// Past its expiry, before the job ran: expired, and GET shows REJECTED.
		s.Clock.Advance(payments.AuthorisationWindow)
		if _, err := svc.Authorise(t.Context(), id, debtor); !errors.Is(err, payments.ErrExpired) {
			t.Errorf("expired: %v", err)
		}
		if g := get(t, s, id); g.Data.Status != "REJECTED" || g.Data.RejectionReason.Code != "TEMPO_EXPIRADO_AUTORIZACAO" {
			t.Errorf("lazy expiry on read: %+v", g.Data)
		}
	})
}
