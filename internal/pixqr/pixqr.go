// Package pixqr reads a Pix "BR Code": the text behind a Pix QR Code, an EMV
// QRCPS Merchant-Presented Mode payload as the Banco Central's Manual de
// Padrões para Iniciação do Pix profiles it.
//
// A payload is a run of fields, each a two-digit ID, a two-digit length and
// that many characters of value. The top level must start with the Payload
// Format Indicator (00 = "01") and end with the CRC (63), four upper-case hex
// digits of CRC16-CCITT (polynomial 0x1021, initial 0xFFFF) over everything
// before them, "6304" included. The Pix merchant account information
// (template 26, GUI br.gov.bcb.pix) carries the key (01) of a static code or
// the payload URL (25) of a dynamic one, never both. Parse checks the fields
// the Pix profile makes mandatory (52, 53 = 986, 58 = BR, 59, 60, 62 with its
// txid 05) and returns what a payment needs from them.
package pixqr

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// GUI is the Pix arrangement's globally unique identifier (template 26, 00).
const GUI = "br.gov.bcb.pix"

// Errors of Parse; every returned error wraps one of them.
var (
	ErrSyntax   = errors.New("pixqr: malformed payload")
	ErrCRC      = errors.New("pixqr: CRC does not match")
	ErrField    = errors.New("pixqr: invalid field")
	ErrNotPix   = errors.New("pixqr: no Pix merchant account information")
	ErrMissing  = errors.New("pixqr: mandatory field missing")
	ErrTooLong  = errors.New("pixqr: payload longer than 512 bytes")
	ErrEncoding = errors.New("pixqr: payload is not printable ASCII")
)

// MaxLen is the most bytes a BR Code may have (the Payments API's qrCode bound).
const MaxLen = 512

// Code is a parsed BR Code.
type Code struct {
	// Key is the Pix key of a static code ("" for a dynamic one).
	Key string
	// URL is the payload location of a dynamic code, without scheme ("" for a static one).
	URL string
	// Amount is field 54 as written ("10.50"), "" when the code has none.
	Amount string
	// Cents is Amount in integer cents (0 when Amount is "").
	Cents int64
	// TxID is field 62's reference label; "" when it is "***" (none).
	TxID string
	// Info is the free text of template 26, field 02.
	Info string
	// MCC is the merchant category code (52).
	MCC string
	// Name and City are the receiver's (59 and 60).
	Name, City string
	// PostalCode is field 61, optional.
	PostalCode string
	// Unique reports Point of Initiation Method 12: the code may be paid once.
	Unique bool
}

// Dynamic reports whether the code points at a payload URL (QRDN) rather
// than carrying a key (QRES).
func (c *Code) Dynamic() bool { return c.URL != "" }

var (
	amountPattern = regexp.MustCompile(`^\d{1,10}(\.\d{1,2})?$`)
	mccPattern    = regexp.MustCompile(`^\d{4}$`)
	txidPattern   = regexp.MustCompile(`^[A-Za-z0-9]{1,25}$`)
)

// field is one ID-length-value element.
type field struct {
	id, value string
}

// split reads s as consecutive fields.
func split(s string) ([]field, error) {
	var out []field
	for i := 0; i < len(s); {
		if len(s)-i < 4 {
			return nil, fmt.Errorf("%w: truncated field header at offset %d", ErrSyntax, i)
		}
		id, ln := s[i:i+2], s[i+2:i+4]
		if !digits(id) || !digits(ln) {
			return nil, fmt.Errorf("%w: non-numeric ID or length at offset %d", ErrSyntax, i)
		}
		n, _ := strconv.Atoi(ln)
		if n == 0 {
			return nil, fmt.Errorf("%w: field %s is empty", ErrSyntax, id)
		}
		if i+4+n > len(s) {
			return nil, fmt.Errorf("%w: field %s runs past the end", ErrSyntax, id)
		}
		out = append(out, field{id, s[i+4 : i+4+n]})
		i += 4 + n
	}
	return out, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Parse reads and checks a BR Code.
func Parse(s string) (*Code, error) {
	if len(s) > MaxLen {
		return nil, ErrTooLong
	}
	for i := 0; i < len(s); i++ {
		// The EMV "ans" character set; UTF-8 names are not part of it.
		if s[i] < 0x20 || s[i] > 0x7e {
			return nil, fmt.Errorf("%w: byte %d", ErrEncoding, i)
		}
	}
	fields, err := split(s)
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 || fields[0].id != "00" {
		return nil, fmt.Errorf("%w: payload must start with field 00", ErrSyntax)
	}
	last := fields[len(fields)-1]
	if last.id != "63" || len(last.value) != 4 {
		return nil, fmt.Errorf("%w: payload must end with field 63 of 4 characters", ErrSyntax)
	}
	want := fmt.Sprintf("%04X", Checksum(s[:len(s)-4]))
	if last.value != want {
		return nil, fmt.Errorf("%w: field 63 is %s, payload gives %s", ErrCRC, last.value, want)
	}
	c := &Code{}
	seen := map[string]bool{}
	pix := false
	for _, f := range fields[:len(fields)-1] {
		if seen[f.id] {
			return nil, fmt.Errorf("%w: field %s repeated", ErrSyntax, f.id)
		}
		seen[f.id] = true
		switch f.id {
		case "00":
			if f.value != "01" {
				return nil, fmt.Errorf("%w: payload format indicator %q, want 01", ErrField, f.value)
			}
		case "01":
			switch f.value {
			case "11":
			case "12":
				c.Unique = true
			default:
				return nil, fmt.Errorf("%w: point of initiation method %q", ErrField, f.value)
			}
		case "26":
			if err := c.merchantAccount(f.value); err != nil {
				return nil, err
			}
			pix = true
		case "52":
			if !mccPattern.MatchString(f.value) {
				return nil, fmt.Errorf("%w: merchant category code %q", ErrField, f.value)
			}
			c.MCC = f.value
		case "53":
			if f.value != "986" {
				return nil, fmt.Errorf("%w: currency %q, want 986", ErrField, f.value)
			}
		case "54":
			if len(f.value) > 13 || !amountPattern.MatchString(f.value) {
				return nil, fmt.Errorf("%w: amount %q", ErrField, f.value)
			}
			cents, err := toCents(f.value)
			if err != nil || cents == 0 {
				return nil, fmt.Errorf("%w: amount %q", ErrField, f.value)
			}
			c.Amount, c.Cents = f.value, cents
		case "58":
			if f.value != "BR" {
				return nil, fmt.Errorf("%w: country %q, want BR", ErrField, f.value)
			}
		case "59":
			if len(f.value) > 25 {
				return nil, fmt.Errorf("%w: merchant name longer than 25", ErrField)
			}
			c.Name = f.value
		case "60":
			if len(f.value) > 15 {
				return nil, fmt.Errorf("%w: merchant city longer than 15", ErrField)
			}
			c.City = f.value
		case "61":
			if len(f.value) > 99 {
				return nil, fmt.Errorf("%w: postal code", ErrField)
			}
			c.PostalCode = f.value
		case "62":
			if err := c.additionalData(f.value); err != nil {
				return nil, err
			}
		case "63":
			return nil, fmt.Errorf("%w: field 63 must be last", ErrSyntax)
		}
		// Other IDs (02–25 and 27–51 other arrangements, 64, 80–99 templates)
		// belong to other schemes or to the payee; they are read past.
	}
	if !pix {
		return nil, ErrNotPix
	}
	for _, id := range []string{"52", "53", "58", "59", "60", "62"} {
		if !seen[id] {
			return nil, fmt.Errorf("%w: field %s", ErrMissing, id)
		}
	}
	return c, nil
}

// merchantAccount reads template 26.
func (c *Code) merchantAccount(v string) error {
	subs, err := split(v)
	if err != nil {
		return fmt.Errorf("field 26: %w", err)
	}
	seen := map[string]bool{}
	for _, f := range subs {
		if seen[f.id] {
			return fmt.Errorf("%w: field 26.%s repeated", ErrSyntax, f.id)
		}
		seen[f.id] = true
		switch f.id {
		case "00":
			if !strings.EqualFold(f.value, GUI) {
				return fmt.Errorf("%w: field 26 GUI %q", ErrNotPix, f.value)
			}
		case "01":
			if len(f.value) > 77 {
				return fmt.Errorf("%w: Pix key longer than 77", ErrField)
			}
			c.Key = f.value
		case "02":
			c.Info = f.value
		case "25":
			c.URL = f.value
		}
	}
	switch {
	case !seen["00"]:
		return fmt.Errorf("%w: field 26 has no GUI", ErrNotPix)
	case c.Key != "" && c.URL != "":
		return fmt.Errorf("%w: field 26 has both a key (01) and a URL (25)", ErrField)
	case c.Key == "" && c.URL == "":
		return fmt.Errorf("%w: field 26 has neither a key (01) nor a URL (25)", ErrMissing)
	}
	return nil
}

// additionalData reads template 62; its reference label 05 is mandatory in
// Pix, "***" meaning no txid.
func (c *Code) additionalData(v string) error {
	subs, err := split(v)
	if err != nil {
		return fmt.Errorf("field 62: %w", err)
	}
	found := false
	for _, f := range subs {
		if f.id != "05" {
			continue
		}
		if found {
			return fmt.Errorf("%w: field 62.05 repeated", ErrSyntax)
		}
		found = true
		if f.value != "***" {
			if !txidPattern.MatchString(f.value) {
				return fmt.Errorf("%w: txid %q", ErrField, f.value)
			}
			c.TxID = f.value
		}
	}
	if !found {
		return fmt.Errorf("%w: field 62.05 (txid)", ErrMissing)
	}
	return nil
}

// toCents converts "12", "12.3" or "12.34" to cents.
func toCents(a string) (int64, error) {
	whole, frac, _ := strings.Cut(a, ".")
	for len(frac) < 2 {
		frac += "0"
	}
	return strconv.ParseInt(whole+frac, 10, 64)
}

// crcTable is CRC16-CCITT (0x1021, MSB first) per byte value.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// Checksum is the BR Code CRC of s: CRC16-CCITT, polynomial 0x1021, initial
// value 0xFFFF, no reflection, no final XOR.
func Checksum(s string) uint16 {
	crc := uint16(0xFFFF)
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^s[i]]
	}
	return crc
}
