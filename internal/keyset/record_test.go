package keyset

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
)

func entry(t *testing.T, id, fp string) Entry {
	t.Helper()
	k, ok := Lookup(id)
	if !ok {
		t.Fatalf("no key %s", id)
	}
	return Entry{Key: k, Source: "keys/" + k.File, Fingerprint: fp}
}

// TestVerify: the first start records every key; the same keys pass again;
// a different key is refused with an error naming it, its file and what to
// do; a rotated-out key still passes where the key is rotatable.
func TestVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		set := []Entry{entry(t, SigningKey, "sha256:A"), entry(t, DataKeyID, "pbkdf2:D"), entry(t, AdminToken, "pbkdf2:T"),
			entry(t, SandboxAppleRoot, "sha256:not-recorded")}
		if err := Verify(ctx, db, testNow, set); err != nil {
			t.Fatalf("first start: %v", err)
		}
		recs, err := Recorded(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 {
			t.Fatalf("recorded %+v, want the three recorded keys", recs)
		}
		for _, r := range recs {
			if !r.Current || !r.CreatedAt.Equal(testNow) || !r.RetiredAt.IsZero() {
				t.Errorf("record %+v", r)
			}
		}
		if err := Verify(ctx, db, testNow.Add(time.Hour), set); err != nil {
			t.Fatalf("second start with the same keys: %v", err)
		}

		other := []Entry{entry(t, SigningKey, "sha256:B"), entry(t, DataKeyID, "pbkdf2:D"), entry(t, AdminToken, "pbkdf2:U")}
		err = Verify(ctx, db, testNow, other)
		var mismatch *MismatchError
		if !errors.As(err, &mismatch) {
			t.Fatalf("different keys: %v, want a MismatchError", err)
		}
		for _, w := range []string{"token signing key", "keys/signing-key.pem", "sha256:B", "sha256:A", "--keys-dir", "ponte keys rotate-signing-key",
			"admin token", "keys/admin-token"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not name %q", err, w)
			}
		}
		if strings.Contains(err.Error(), "data key") {
			t.Errorf("error names the data key, which matches: %v", err)
		}

		// A rotation: B current, A retired. Both signing keys pass; an old
		// admin token never does (not rotatable).
		if err := Rotate(ctx, db, testNow.Add(time.Minute), SigningKey, "sha256:B"); err != nil {
			t.Fatal(err)
		}
		if err := Verify(ctx, db, testNow, []Entry{entry(t, SigningKey, "sha256:B")}); err != nil {
			t.Errorf("the new current key: %v", err)
		}
		if err := Verify(ctx, db, testNow, []Entry{entry(t, SigningKey, "sha256:A")}); err != nil {
			t.Errorf("the retired key of a rotatable key: %v", err)
		}
		if err := Verify(ctx, db, testNow, []Entry{entry(t, SigningKey, "sha256:C")}); err == nil {
			t.Error("an unknown signing key passed after a rotation")
		}
		if err := Rotate(ctx, db, testNow, AdminToken, "pbkdf2:U"); err != nil {
			t.Fatal(err)
		}
		if err := Verify(ctx, db, testNow, []Entry{entry(t, AdminToken, "pbkdf2:T")}); err == nil {
			t.Error("a replaced admin token passed")
		}
		recs, _ = Recorded(ctx, db)
		var got []string
		for _, r := range recs {
			got = append(got, fmt.Sprintf("%s=%s/%v/%v", r.ID, r.Fingerprint, r.Current, !r.RetiredAt.IsZero()))
		}
		want := "admin-token=pbkdf2:U/true/false admin-token=pbkdf2:T/false/true data-key=pbkdf2:D/true/false " +
			"signing-key=sha256:B/true/false signing-key=sha256:A/false/true"
		if strings.Join(got, " ") != want {
			t.Errorf("recorded\n %s\nwant\n %s", strings.Join(got, " "), want)
		}
		// Rotating back, and forgetting the retired key.
		if err := Rotate(ctx, db, testNow, SigningKey, "sha256:A"); err != nil {
			t.Fatal(err)
		}
		if err := Forget(ctx, db, SigningKey, "sha256:B"); err != nil {
			t.Fatal(err)
		}
		if err := Verify(ctx, db, testNow, []Entry{entry(t, SigningKey, "sha256:B")}); err == nil {
			t.Error("a forgotten key passed")
		}
		if err := Forget(ctx, db, SigningKey, "sha256:A"); err != nil {
			t.Fatal(err)
		}
		if err := Verify(ctx, db, testNow, []Entry{entry(t, SigningKey, "sha256:A")}); err != nil {
			t.Errorf("Forget removed the current key: %v", err)
		}
		if err := Rotate(ctx, db, testNow, "no-such-key", "x"); err == nil {
			t.Error("Rotate of an unknown key succeeded")
		}
	})
}

// TestVerifyConcurrentFirstStarts: instances starting at once on an empty
// table with different keys agree: exactly one signing key is recorded, the
// instances holding it start, the others are refused.
func TestVerifyConcurrentFirstStarts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const n = 12
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fp := fmt.Sprintf("sha256:%d", i%2)
				errs[i] = Verify(ctx, db, testNow, []Entry{entry(t, SigningKey, fp), entry(t, DataKeyID, "pbkdf2:"+fp)})
			}()
		}
		wg.Wait()
		recs, err := Recorded(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || !recs[0].Current || !recs[1].Current {
			t.Fatalf("recorded %+v, want one current row per key", recs)
		}
		winner := recs[1].Fingerprint // signing-key sorts after data-key
		for i, err := range errs {
			holds := fmt.Sprintf("sha256:%d", i%2) == winner
			var mismatch *MismatchError
			switch {
			case holds && err != nil:
				t.Errorf("instance %d holds the recorded key and was refused: %v", i, err)
			case !holds && !errors.As(err, &mismatch):
				t.Errorf("instance %d holds another key: %v, want a MismatchError", i, err)
			}
		}
	})
}

// TestVerifyConfiguredRotation: an initiator encryption key configured
// with the database's current key as a rotated-out one (--itp-encryption-key
// NEW,OLD) is a rotation: recorded as current, the old one retired, and an
// instance still on the old key keeps starting. A key listing other
// rotated-out keys is refused.
func TestVerifyConfiguredRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := Verify(ctx, db, testNow, []Entry{entry(t, ITPEncryptionKey, "sha256:A")}); err != nil {
			t.Fatal(err)
		}
		rotated := entry(t, ITPEncryptionKey, "sha256:B")
		rotated.Previous = []string{"sha256:A"}
		if err := Verify(ctx, db, testNow.Add(time.Hour), []Entry{rotated}); err != nil {
			t.Fatalf("configured rotation: %v", err)
		}
		recs, err := Recorded(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[0].Fingerprint != "sha256:B" || !recs[0].Current || recs[1].Current || !recs[1].RetiredAt.Equal(testNow.Add(time.Hour)) {
			t.Errorf("recorded %+v, want B current and A retired", recs)
		}
		if err := Verify(ctx, db, testNow, []Entry{entry(t, ITPEncryptionKey, "sha256:A")}); err != nil {
			t.Errorf("an instance still on the old key: %v", err)
		}
		stranger := entry(t, ITPEncryptionKey, "sha256:C")
		stranger.Previous = []string{"sha256:X"}
		if err := Verify(ctx, db, testNow, []Entry{stranger}); err == nil {
			t.Error("a key whose rotated-out keys the database never used passed")
		}
	})
}
