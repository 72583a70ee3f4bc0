package pixqr

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// crcBitwise is CRC16-CCITT-FALSE computed one input bit at a time, written
// apart from the package's table so that a shared mistake cannot hide.
func crcBitwise(s string) uint16 {
	var reg uint32 = 0xFFFF
	for _, b := range []byte(s) {
		for bit := 7; bit >= 0; bit-- {
			in := uint32(b>>uint(bit)) & 1
			top := (reg >> 15) & 1
			reg = (reg << 1) & 0xFFFF
			if top^in == 1 {
				reg ^= 0x1021
			}
		}
	}
	return uint16(reg)
}

// tlv writes one field.
func tlv(id, v string) string { return fmt.Sprintf("%s%02d%s", id, len(v), v) }

// seal appends field 63 with the bitwise CRC.
func seal(body string) string {
	body += "6304"
	return body + fmt.Sprintf("%04X", crcBitwise(body))
}

// static builds a static BR Code; amount and txid may be "".
func static(key, amount, txid string) string {
	if txid == "" {
		txid = "***"
	}
	s := tlv("00", "01") + tlv("26", tlv("00", "br.gov.bcb.pix")+tlv("01", key)) + tlv("52", "0000") + tlv("53", "986")
	if amount != "" {
		s += tlv("54", amount)
	}
	return seal(s + tlv("58", "BR") + tlv("59", "MARIA SILVA") + tlv("60", "SAO PAULO") + tlv("62", tlv("05", txid)))
}

func dynamic(url, amount string) string {
	s := tlv("00", "01") + tlv("01", "12") + tlv("26", tlv("00", "BR.GOV.BCB.PIX")+tlv("25", url)) + tlv("52", "0000") + tlv("53", "986")
	if amount != "" {
		s += tlv("54", amount)
	}
	return seal(s + tlv("58", "BR") + tlv("59", "LOJA") + tlv("60", "BRASILIA") + tlv("62", tlv("05", "***")))
}

// encode writes c's fields as a BR Code, in the manual's order.
func encode(c *Code) string {
	s := tlv("00", "01")
	if c.Unique {
		s += tlv("01", "12")
	}
	acct := tlv("00", GUI)
	if c.Key != "" {
		acct += tlv("01", c.Key)
	}
	if c.Info != "" {
		acct += tlv("02", c.Info)
	}
	if c.URL != "" {
		acct += tlv("25", c.URL)
	}
	s += tlv("26", acct) + tlv("52", c.MCC) + tlv("53", "986")
	if c.Amount != "" {
		s += tlv("54", c.Amount)
	}
	s += tlv("58", "BR") + tlv("59", c.Name) + tlv("60", c.City)
	if c.PostalCode != "" {
		s += tlv("61", c.PostalCode)
	}
	txid := c.TxID
	if txid == "" {
		txid = "***"
	}
	return seal(s + tlv("62", tlv("05", txid)))
}

// TestChecksumKnown: the CCITT-FALSE check value and the manual's static example.
func TestChecksumKnown(t *testing.T) {
	if got := Checksum("123456789"); got != 0x29B1 {
		t.Fatalf("Checksum(123456789) = %04X, want 29B1", got)
	}
	if got := crcBitwise("123456789"); got != 0x29B1 {
		t.Fatalf("crcBitwise(123456789) = %04X, want 29B1", got)
	}
	manual := "00020126360014BR.GOV.BCB.PIX0114+5511943214321520400005303986540566.665802BR5907EMPRESA6008BRASILIA62080503***6304"
	if got := fmt.Sprintf("%04X", Checksum(manual)); got != "170E" {
		t.Fatalf("manual example CRC = %s, want 170E", got)
	}
	// That example's template 62 declares 8 characters but holds 7, so it
	// serves as a CRC vector only; Parse rightly refuses it.
	if _, err := Parse(manual + "170E"); !errors.Is(err, ErrSyntax) {
		t.Fatalf("manual static example: %v, want ErrSyntax", err)
	}
	dyn := "00020101021226770014BR.GOV.BCB.PIX2555pix.example.com/qr/93598be0-1bd0-4997-8318-81776a1d8a9952040000530398658" +
		"02BR5907EMPRESA6009SAO PAULO62070503***6304"
	if got := fmt.Sprintf("%04X", Checksum(dyn)); got != "EEAB" {
		t.Fatalf("manual dynamic example CRC = %s, want EEAB", got)
	}
	if c, err := Parse(dyn + "EEAB"); err != nil || !c.Dynamic() {
		t.Fatalf("manual dynamic example: %+v, %v", c, err)
	}
}

func TestParse(t *testing.T) {
	good := static("12345678909", "10.50", "PED123")
	flip := []byte(good)
	flip[30] ^= 1 // a changed key: the CRC no longer matches
	noCRC := good[:len(good)-8]
	tests := []struct {
		name string
		in   string
		want *Code
		err  error
	}{
		{"static with amount and txid", good, &Code{Key: "12345678909", Amount: "10.50", Cents: 1050, TxID: "PED123", MCC: "0000", Name: "MARIA SILVA", City: "SAO PAULO"}, nil},
		{"static without amount", static("maria@example.com", "", ""), &Code{Key: "maria@example.com", MCC: "0000", Name: "MARIA SILVA", City: "SAO PAULO"}, nil},
		{"static whole amount", static("+5511999990000", "7", ""), &Code{Key: "+5511999990000", Amount: "7", Cents: 700, MCC: "0000", Name: "MARIA SILVA", City: "SAO PAULO"}, nil},
		{"dynamic", dynamic("pix.example.com/qr/v2/9d36b84fc70b478fb95c12729b90ca25", ""), &Code{URL: "pix.example.com/qr/v2/9d36b84fc70b478fb95c12729b90ca25", MCC: "0000", Name: "LOJA", City: "BRASILIA", Unique: true}, nil},
		{"empty", "", nil, ErrSyntax},
		{"garbage", "not a qr code", nil, ErrSyntax},
		{"made-up prefix", "000201", nil, ErrSyntax},
		{"bad CRC", string(flip), nil, ErrCRC},
		{"lower-case CRC", good[:len(good)-4] + strings.ToLower(good[len(good)-4:]), nil, ErrCRC},
		{"no CRC", noCRC + tlv("99", "x"), nil, ErrSyntax},
		{"truncated", good[:len(good)-2], nil, ErrSyntax},
		{"format indicator 02", seal(tlv("00", "02") + good[6:len(good)-8]), nil, ErrField},
		{"not first 00", seal(tlv("52", "0000") + tlv("00", "01")), nil, ErrSyntax},
		{"other GUI", seal(tlv("00", "01") + tlv("26", tlv("00", "com.example")+tlv("01", "k")) + tlv("52", "0000") + tlv("53", "986") + tlv("58", "BR") + tlv("59", "A") + tlv("60", "B") + tlv("62", tlv("05", "***"))), nil, ErrNotPix},
		{"no template 26", seal(tlv("00", "01") + tlv("52", "0000") + tlv("53", "986") + tlv("58", "BR") + tlv("59", "A") + tlv("60", "B") + tlv("62", tlv("05", "***"))), nil, ErrNotPix},
		{"key and URL", seal(tlv("00", "01") + tlv("26", tlv("00", GUI)+tlv("01", "k")+tlv("25", "u")) + tlv("52", "0000") + tlv("53", "986") + tlv("58", "BR") + tlv("59", "A") + tlv("60", "B") + tlv("62", tlv("05", "***"))), nil, ErrField},
		{"currency USD", strings.Replace(static("k", "", ""), "5303986", "5303840", 1), nil, ErrCRC},
		{"currency 840", seal(tlv("00", "01") + tlv("26", tlv("00", GUI)+tlv("01", "k")) + tlv("52", "0000") + tlv("53", "840") + tlv("58", "BR") + tlv("59", "A") + tlv("60", "B") + tlv("62", tlv("05", "***"))), nil, ErrField},
		{"amount with comma", static("k", "10,50", ""), nil, ErrField},
		{"amount zero", static("k", "0.00", ""), nil, ErrField},
		{"amount three decimals", static("k", "1.005", ""), nil, ErrField},
		{"country AR", seal(strings.Replace(static("k", "", "")[:len(static("k", "", ""))-8], "5802BR", "5802AR", 1)), nil, ErrField},
		{"no txid", seal(tlv("00", "01") + tlv("26", tlv("00", GUI)+tlv("01", "k")) + tlv("52", "0000") + tlv("53", "986") + tlv("58", "BR") + tlv("59", "A") + tlv("60", "B") + tlv("62", tlv("50", "x"))), nil, ErrMissing},
		{"no 62", seal(tlv("00", "01") + tlv("26", tlv("00", GUI)+tlv("01", "k")) + tlv("52", "0000") + tlv("53", "986") + tlv("58", "BR") + tlv("59", "A") + tlv("60", "B")), nil, ErrMissing},
		{"txid with dash", static("k", "", "abc-1"), nil, ErrField},
		{"name too long", seal(tlv("00", "01") + tlv("26", tlv("00", GUI)+tlv("01", "k")) + tlv("52", "0000") + tlv("53", "986") + tlv("58", "BR") + tlv("59", strings.Repeat("A", 26)) + tlv("60", "B") + tlv("62", tlv("05", "***"))), nil, ErrField},
		{"repeated field", seal(tlv("00", "01") + tlv("26", tlv("00", GUI)+tlv("01", "k")) + tlv("52", "0000") + tlv("52", "0000") + tlv("53", "986") + tlv("58", "BR") + tlv("59", "A") + tlv("60", "B") + tlv("62", tlv("05", "***"))), nil, ErrSyntax},
		{"non-ASCII name", seal(tlv("00", "01") + tlv("26", tlv("00", GUI)+tlv("01", "k")) + tlv("52", "0000") + tlv("53", "986") + tlv("58", "BR") + tlv("59", "JOÃO") + tlv("60", "B") + tlv("62", tlv("05", "***"))), nil, ErrEncoding},
		{"too long", strings.Repeat("0", MaxLen+1), nil, ErrTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Parse error = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if *got != *tc.want {
				t.Fatalf("Parse = %+v, want %+v", *got, *tc.want)
			}
			if again, err := Parse(encode(got)); err != nil || *again != *got {
				t.Fatalf("re-encoded reads %+v, %v", again, err)
			}
			if got.Dynamic() != (got.URL != "") {
				t.Fatal("Dynamic disagrees with URL")
			}
		})
	}
}

// FuzzParse: Parse never panics; what it accepts carries a CRC the bitwise
// implementation agrees with, exactly one of key and URL, and an amount
// consistent with its cents, reads back the same once re-encoded; a changed
// CRC is always refused.
func FuzzParse(f *testing.F) {
	f.Add(static("12345678909", "10.50", "PED123"))
	f.Add(static("maria@example.com", "", ""))
	f.Add(dynamic("pix.example.com/qr/v2/abc", "1.00"))
	f.Add("000201")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			if c != nil {
				t.Fatal("a code with an error")
			}
			return
		}
		if fmt.Sprintf("%04X", crcBitwise(s[:len(s)-4])) != s[len(s)-4:] {
			t.Fatalf("accepted %q with a CRC the bitwise implementation disputes", s)
		}
		if (c.Key == "") == (c.URL == "") {
			t.Fatalf("accepted %q with key %q and URL %q", s, c.Key, c.URL)
		}
		if c.Amount != "" {
			if want, _ := toCents(c.Amount); want != c.Cents || c.Cents <= 0 {
				t.Fatalf("amount %q gives %d cents", c.Amount, c.Cents)
			}
		}
		// A different CRC must fail.
		bad := s[:len(s)-4] + fmt.Sprintf("%04X", crcBitwise(s[:len(s)-4])^1)
		if _, err := Parse(bad); !errors.Is(err, ErrCRC) {
			t.Fatalf("altered CRC accepted or wrong error: %v", err)
		}
		// Encoding what was read, and nothing else, reads back the same.
		if again, err := Parse(encode(c)); err != nil || *again != *c {
			t.Fatalf("re-encoded %+v reads %+v, %v", *c, again, err)
		}
		// Re-sealing the same body reproduces s.
		if seal(s[:len(s)-8]) != s {
			t.Fatalf("re-sealed payload differs from %q", s)
		}
	})
}
