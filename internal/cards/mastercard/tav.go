// Package mastercard builds Mastercard MDES artefacts an issuer signs itself:
// the Tokenization Authentication Value (TAV), which Apple Pay carries as
// activationData and the Google Pay OPC as tokenizationAuthenticationValue,
// and the RSA keys the sandbox uses in place of keys registered with MDES.
package mastercard

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TAV format constants.
const (
	// DefaultTAVVersion is the TAV format version used when TAVSigner.Version
	// is empty; processors document version 3 for this field list.
	DefaultTAVVersion = "3"
	// SignatureAlgorithm names RSASSA-PKCS1-v1_5 with SHA-256.
	SignatureAlgorithm = "RSA-SHA256"
	// IncludedFieldsInOrder lists the signed values, in signing order.
	IncludedFieldsInOrder = "dataValidUntilTimestamp|accountNumber|accountExpiry"
	// Validity is how long a TAV is valid; Mastercard recommends now + 30 minutes.
	Validity = 30 * time.Minute
	// TimestampLayout formats dataValidUntilTimestamp (UTC, milliseconds).
	TimestampLayout = "2006-01-02T15:04:05.000Z"
	// MinRSABits is the smallest RSA modulus accepted for signing and for
	// generated keys.
	MinRSABits = 2048
)

// Errors for invalid TAV input. Messages never contain the card number.
var (
	ErrInvalidAccountNumber = errors.New("mastercard: account number must be 12 to 19 digits with a valid check digit")
	ErrInvalidExpiry        = errors.New("mastercard: account expiry must be MMYY")
	ErrNoKey                = errors.New("mastercard: no TAV signing key configured")
)

// TAV is the decoded activation data. Field order is the JSON order.
type TAV struct {
	Version                 string `json:"version"`
	SignatureAlgorithm      string `json:"signatureAlgorithm"`
	IncludedFieldsInOrder   string `json:"includedFieldsInOrder"`
	DataValidUntilTimestamp string `json:"dataValidUntilTimestamp"`
	Signature               string `json:"signature"`
}

// TAVSigner signs TAVs with the issuer's TAV private key, whose public half
// is registered with MDES (in the sandbox, a local key).
type TAVSigner struct {
	// Key is the TAV signing key, at least MinRSABits.
	Key *rsa.PrivateKey
	// Version is the TAV format version; empty means DefaultTAVVersion.
	Version string
}

// Sign returns the TAV as standard base64 of the JSON
//
//	{"version","signatureAlgorithm":"RSA-SHA256",
//	 "includedFieldsInOrder":"dataValidUntilTimestamp|accountNumber|accountExpiry",
//	 "dataValidUntilTimestamp","signature"}
//
// dataValidUntilTimestamp is now+Validity in UTC as TimestampLayout;
// accountExpiry is "MMYY". The signature is standard base64 of RSASSA-PKCS1-v1_5
// with SHA-256 over the UTF-8 string
//
//	dataValidUntilTimestamp + "|" + accountNumber + "|" + accountExpiry
//
// i.e. the values named by includedFieldsInOrder, joined with the same '|'
// separator. That canonical string is a reconstruction from processor
// documentation (Paymentology, Thredd); MDES "TAV Creation" is the normative
// source and is not public, so confirm it during MDES onboarding.
func (s TAVSigner) Sign(now time.Time, accountNumber, accountExpiry string) (string, error) {
	if s.Key == nil {
		return "", ErrNoKey
	}
	if s.Key.N.BitLen() < MinRSABits {
		return "", fmt.Errorf("mastercard: TAV key has %d bits, need at least %d", s.Key.N.BitLen(), MinRSABits)
	}
	if !ValidPAN(accountNumber) {
		return "", ErrInvalidAccountNumber
	}
	if !validExpiry(accountExpiry) {
		return "", ErrInvalidExpiry
	}
	version := s.Version
	if version == "" {
		version = DefaultTAVVersion
	}
	validUntil := now.Add(Validity).UTC().Format(TimestampLayout)

	digest := sha256.Sum256([]byte(validUntil + "|" + accountNumber + "|" + accountExpiry))
	sig, err := rsa.SignPKCS1v15(nil, s.Key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("mastercard: sign TAV: %w", err)
	}
	b, err := json.Marshal(TAV{
		Version:                 version,
		SignatureAlgorithm:      SignatureAlgorithm,
		IncludedFieldsInOrder:   IncludedFieldsInOrder,
		DataValidUntilTimestamp: validUntil,
		Signature:               base64.StdEncoding.EncodeToString(sig),
	})
	if err != nil {
		return "", fmt.Errorf("mastercard: encode TAV: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// ValidPAN reports whether pan is 12 to 19 ASCII digits with a valid Luhn
// check digit.
func ValidPAN(pan string) bool {
	if len(pan) < 12 || len(pan) > 19 {
		return false
	}
	sum := 0
	double := false // the check digit (rightmost) is not doubled
	for i := len(pan) - 1; i >= 0; i-- {
		c := pan[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// validExpiry reports whether s is "MMYY" with a month from 01 to 12.
func validExpiry(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < 4; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	month := int(s[0]-'0')*10 + int(s[1]-'0')
	return month >= 1 && month <= 12
}
