package webhooks

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

var suspect = regexp.MustCompile(SuspectPattern)

// TestSuspectPatternCoversCardNumbers holds the statement path's prefilter
// to being a superset of Emit's exact check: whatever containsCardNumber
// refuses, SuspectPattern must flag, or a card number could reach a
// webhook body through the one-statement path.
func TestSuspectPatternCoversCardNumbers(t *testing.T) {
	cards := []string{"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "5500005555555559",
		"378282246310005", "3782 822463 10005", "6011111111111117", "2223000048400011", "4222222222222"}
	for _, c := range cards {
		for _, v := range []string{c, "x " + c, c + "-", "\"" + c + "\"", "pan=" + c + ";"} {
			if !containsCardNumber([]byte(v)) {
				continue // not a card to Emit either: nothing to cover
			}
			if !suspect.MatchString(v) {
				t.Errorf("%q is a card number to Emit but not suspect", v)
			}
		}
	}
	// Random values over the characters that matter, with card numbers
	// spliced in half the time.
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789012345678901234567890123456789 --ab\""
	found := 0
	for range 200000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if r.IntN(2) == 0 {
			i := r.IntN(len(b) + 1)
			b = append(b[:i], append([]byte(cards[r.IntN(len(cards))]), b[i:]...)...)
		}
		if containsCardNumber(b) {
			found++
			if !suspect.Match(b) {
				t.Fatalf("%q is a card number to Emit but not suspect", b)
			}
		}
	}
	if found < 1000 {
		t.Fatalf("only %d generated values held card numbers: the test checks too little", found)
	}
}

// TestSuspectPatternSparesIDs shows the prefilter lets the usual ids through:
// a UUID's digits are broken up by letters, or start with 0, 1, 7, 8 or 9.
func TestSuspectPatternSparesIDs(t *testing.T) {
	for _, id := range []string{"a50c6c3b-3529-4b25-ad5f-11d32063c825", "7481c175-4a50-4af2-b3b1-b24a109f92ad",
		"17307eb8-e9e6-4ce1-a14d-6f30923746f2", "01a251f6d728b9b5095ae31215672054", "abc1234567890123456", "1234567890123"} {
		if suspect.MatchString(id) {
			t.Errorf("%q is suspect", id)
		}
	}
}

// FuzzSuspectPattern: no value is a card number to Emit without being suspect.
func FuzzSuspectPattern(f *testing.F) {
	f.Add("4111 1111 1111 1111")
	f.Add("a50c6c3b-3529-4b25-ad5f-11d32063c825")
	f.Fuzz(func(t *testing.T, v string) {
		if containsCardNumber([]byte(v)) && !suspect.MatchString(v) {
			t.Fatalf("%q is a card number to Emit but not suspect", v)
		}
	})
}
