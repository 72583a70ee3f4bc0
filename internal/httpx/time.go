package httpx

import (
	"fmt"
	"time"
)

// BanklyTimeLayout is the Bankly family's timestamp: UTC, seconds, no zone
// designator, e.g. 2024-10-15T18:55:15.
const BanklyTimeLayout = "2006-01-02T15:04:05"

// BanklyTime marshals as a Bankly timestamp.
type BanklyTime time.Time

// MarshalJSON implements json.Marshaler.
func (t BanklyTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(BanklyTimeLayout) + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler (for clients and tests).
func (t *BanklyTime) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("bankly time: want a string, got %s", b)
	}
	v, err := time.Parse(BanklyTimeLayout, string(b[1:len(b)-1]))
	if err != nil {
		return err
	}
	*t = BanklyTime(v)
	return nil
}
