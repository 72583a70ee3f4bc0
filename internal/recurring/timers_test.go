package recurring_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/app/apptest"
	"github.com/ponte-ofb/ponte/internal/payments"
	"github.com/ponte-ofb/ponte/internal/recurring"
)

// storedStatus reads a consent's status straight from the database, so the
// GET's own timeout check does not hide whether the job ran.
func storedStatus(t *testing.T, s *apptest.Server, id string) string {
	t.Helper()
	var st string
	if err := s.App.DB.Read().QueryRow(`SELECT status FROM recurring_consents WHERE id = $1`, id).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func runDue(t *testing.T, s *apptest.Server) int {
	t.Helper()
	n, err := s.App.Jobs.RunDue(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var debtor = &payments.Account{ISPB: "37241230", Issuer: "0001", Number: "1234567", AccountType: "CACC"}

func TestAuthorisationTimeout(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		id := create(t, s, happyBody).Data.RecurringConsentID
		s.Clock.Advance(recurring.AuthorisationWindow - time.Second)
		if runDue(t, s); storedStatus(t, s, id) != "AWAITING_AUTHORISATION" {
			t.Fatalf("before 60 min: status %s", storedStatus(t, s, id))
		}
		s.Clock.Advance(time.Second)
		if n := runDue(t, s); n == 0 {
			t.Fatal("at 60 min: no job ran")
		}
		if st := storedStatus(t, s, id); st != "REJECTED" {
			t.Fatalf("status %s after the timer", st)
		}
		g := get(t, s, id)
		r := g.Data.Rejection
		if g.Data.Status != "REJECTED" || r == nil || r.Reason.Code != "TEMPO_EXPIRADO_AUTORIZACAO" || r.RejectedBy != "DETENTORA" ||
			r.RejectedFrom != "DETENTORA" || r.RejectedAt != "2024-10-15T19:55:15Z" || g.Data.StatusUpdateDateTime != "2024-10-15T19:55:15Z" {
			t.Errorf("after expiry: %+v %+v", g.Data, r)
		}
		if _, err := s.App.Recurring.Authorise(t.Context(), id, debtor); !errors.Is(err, recurring.ErrInvalidTransition) {
			t.Errorf("authorise a rejected consent: %v", err)
		}
	})
}

func TestTimerFiresAfterRestart(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		id := create(t, s, happyBody).Data.RecurringConsentID
		s = s.Restart(t)
		s.Clock.Advance(61 * time.Minute)
		if n := runDue(t, s); n == 0 {
			t.Fatal("after restart: no job ran")
		}
		if st := storedStatus(t, s, id); st != "REJECTED" {
			t.Fatalf("status %s", st)
		}
	})
}

// TestReadBeforeTheJob: a GET past the window shows the timeout even if no
// job ran yet, and the job then finds nothing to do.
func TestReadBeforeTheJob(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	id := create(t, s, happyBody).Data.RecurringConsentID
	s.Clock.Advance(2 * time.Hour)
	if g := get(t, s, id); g.Data.Status != "REJECTED" || g.Data.Rejection.Reason.Code != "TEMPO_EXPIRADO_AUTORIZACAO" {
		t.Fatalf("get = %+v", g.Data)
	}
	runDue(t, s)
	if st := storedStatus(t, s, id); st != "REJECTED" {
		t.Fatalf("status %s", st)
	}
}

// TestAuthoriseThenConsumed: an authorised consent is CONSUMED at its
// expirationDateTime, even across a restart; one without an end date never is.
func TestAuthoriseThenConsumed(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, s *apptest.Server) {
		body := mutate(t, happyBody, func(m map[string]any) { at(m, "data")["expirationDateTime"] = "2024-10-20T18:55:15Z" })
		id := create(t, s, body).Data.RecurringConsentID
		endless := create(t, s, pjBody).Data.RecurringConsentID
		s.Clock.Advance(10 * time.Minute)
		for _, c := range []string{id, endless} {
			if _, err := s.App.Recurring.Authorise(t.Context(), c, debtor); err != nil {
				t.Fatal(err)
			}
		}
		g := get(t, s, id)
		if g.Data.Status != "AUTHORISED" || g.Data.AuthorisedAtDateTime != "2024-10-15T19:05:15Z" || g.Data.DebtorAccount["number"] != "1234567" {
			t.Fatalf("authorised = %+v", g.Data)
		}
		// The authorisation window's job finds the consent moved on.
		s.Clock.Advance(time.Hour)
		runDue(t, s)
		if st := storedStatus(t, s, id); st != "AUTHORISED" {
			t.Fatalf("status %s after the authorisation window", st)
		}
		s = s.Restart(t)
		s.Clock.Advance(5 * 24 * time.Hour)
		runDue(t, s)
		if st := storedStatus(t, s, id); st != "CONSUMED" {
			t.Fatalf("status %s after expirationDateTime", st)
		}
		if st := storedStatus(t, s, endless); st != "AUTHORISED" {
			t.Fatalf("consent without end: %s", st)
		}
		if g := get(t, s, id); g.Data.Status != "CONSUMED" || g.Data.StatusUpdateDateTime != "2024-10-20T18:55:15Z" {
			t.Errorf("consumed = %+v", g.Data)
		}
	})
}

func TestAuthoriseAndRejectRules(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t, apptest.Options{})
	svc := s.App.Recurring
	id := create(t, s, happyBody).Data.RecurringConsentID
	for _, tc := range []struct {
		name string
		acct *payments.Account
		want error
	}{
		{"no account at all", nil, recurring.ErrDebtorAccount},
		{"malformed account", &payments.Account{ISPB: "1", Number: "1", AccountType: "CACC"}, recurring.ErrDebtorAccount},
	} {
		if _, err := svc.Authorise(t.Context(), id, tc.acct); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := svc.Reject(t.Context(), id, "CANSEI"); !errors.Is(err, recurring.ErrRejectionCode) {
		t.Errorf("unknown code: %v", err)
	}
	c, err := svc.Reject(t.Context(), id, recurring.RejectRejeitadoUsuario)
	if err != nil || c.Status != recurring.StatusRejected || c.Rejection.RejectedBy != recurring.ActorUser || c.Rejection.RejectedFrom != recurring.ActorHolder {
		t.Fatalf("user reject: %+v %v", c, err)
	}
	if _, err := svc.Reject(t.Context(), id, recurring.RejectRejeitadoUsuario); !errors.Is(err, recurring.ErrInvalidTransition) {
		t.Errorf("reject twice: %v", err)
	}
	// The initiator's account is used when the user names none; another
	// account is the user's choice (the specification lets the user change it).
	pj := create(t, s, pjBody).Data.RecurringConsentID
	other := &payments.Account{ISPB: "37241230", Issuer: "0001", Number: "7654321", AccountType: "CACC"}
	if c, err := svc.Authorise(t.Context(), pj, other); err != nil || c.DebtorAccount.Number != "7654321" {
		t.Fatalf("authorise with another account: %+v %v", c, err)
	}
	late := create(t, s, pjBody).Data.RecurringConsentID
	s.Clock.Advance(recurring.AuthorisationWindow)
	if _, err := svc.Authorise(t.Context(), late, nil); !errors.Is(err, recurring.ErrExpired) {
		t.Errorf("authorise after the window: %v", err)
	}
}
