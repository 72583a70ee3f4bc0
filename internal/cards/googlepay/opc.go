// Package googlepay builds the Opaque Payment Card (OPC) a partner app hands
// to Google Pay's pushTokenize for a Mastercard card: MDES issuer-initiated
// digitization data, i.e. card data encrypted for Mastercard's payload
// encryption key plus the issuer's TAV. It is not a JWE (that is Visa's OPC).
package googlepay

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/ponte-ofb/ponte/internal/cards/mastercard"
)

// OPC format constants.
const (
	// OAEPSHA512 and OAEPSHA256 are the oaepHashingAlgorithm values MDES
	// accepts; SHA512 is the default.
	OAEPSHA512 = "SHA512"
	OAEPSHA256 = "SHA256"
	// Source tells MDES how the card reached the wallet.
	Source = "ACCOUNT_ADDED_VIA_APPLICATION"
	// Validity is how long the encrypted data is valid; MDES allows up to 30
	// days and recommends now + 30 minutes.
	Validity = 30 * time.Minute
	// TimestampLayout formats dataValidUntilTimestamp (UTC, milliseconds).
	TimestampLayout = "2006-01-02T15:04:05.000Z"

	aesKeySize = 32 // AES-256
	ivSize     = aes.BlockSize
)

// Errors for invalid OPC input. Messages never contain the card number.
var (
	ErrNoKey       = errors.New("googlepay: no Mastercard payload-encryption key configured")
	ErrInvalidCard = errors.New("googlepay: invalid card data")
	ErrInvalidData = errors.New("googlepay: invalid account holder data")
)

// CardAccountData is the card part of the encrypted payload.
type CardAccountData struct {
	// AccountNumber is the card number, digits only.
	AccountNumber string
	// ExpiryMonth is "MM".
	ExpiryMonth string
	// ExpiryYear is "YY".
	ExpiryYear string
}

// AccountHolderData is the card holder part of the encrypted payload. Empty
// fields are omitted; Google's terms forbid placeholder addresses.
type AccountHolderData struct {
	Name           string
	BillingAddress BillingAddress
	MobilePhone    MobilePhone
}

// BillingAddress is the MDES billing address.
type BillingAddress struct {
	Line1              string
	Line2              string
	City               string
	CountrySubdivision string // e.g. state code "SP"
	PostalCode         string
	Country            string // ISO 3166-1 alpha-3, e.g. "BRA"
}

// MobilePhone is the MDES mobile phone number.
type MobilePhone struct {
	CountryDialInCode string // e.g. "55"
	PhoneNumber       string
}

// Encryptor encrypts card data for Mastercard's payload encryption public key.
type Encryptor struct {
	// PublicKey is Mastercard's payload encryption key (PEPK); in the sandbox,
	// a local stand-in.
	PublicKey *rsa.PublicKey
	// OAEPHash is OAEPSHA512 (the default when empty) or OAEPSHA256.
	OAEPHash string
}

// PublicKeyFingerprint returns the lowercase hex SHA-256 of the key's DER
// SubjectPublicKeyInfo. Mastercard's field-level encryption libraries can
// also fingerprint the certificate instead of the key; compare with the
// fingerprint MDES shows for the key before going live.
func (e Encryptor) PublicKeyFingerprint() (string, error) {
	if e.PublicKey == nil {
		return "", ErrNoKey
	}
	der, err := x509.MarshalPKIXPublicKey(e.PublicKey)
	if err != nil {
		return "", fmt.Errorf("googlepay: encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// oaep returns the configured hash name and constructor.
func (e Encryptor) oaep() (string, func() hash.Hash, error) {
	switch e.OAEPHash {
	case "", OAEPSHA512:
		return OAEPSHA512, sha512.New, nil
	case OAEPSHA256:
		return OAEPSHA256, sha256.New, nil
	}
	return "", nil, fmt.Errorf("googlepay: unsupported OAEP hash %q (want %s or %s)", e.OAEPHash, OAEPSHA512, OAEPSHA256)
}

// OPC returns the Opaque Payment Card: standard base64 of
//
//	{"fundingAccountInfo":{"encryptedPayload":{"publicKeyFingerprint","encryptedKey",
//	  "oaepHashingAlgorithm","iv","encryptedData"}},"tokenizationAuthenticationValue":tav}
//
// The plaintext is the JSON {"cardAccountData","accountHolderData","source",
// "dataValidUntilTimestamp"} (now+Validity), encrypted with a fresh AES-256
// key and 16-byte IV in CBC mode with PKCS#7 padding; the AES key is wrapped
// with RSA-OAEP (MGF1 with the same hash, no label). encryptedKey, iv and
// encryptedData are lowercase hex, as MDES field-level encryption expects.
// random may be nil for crypto/rand.
func (e Encryptor) OPC(random io.Reader, now time.Time, card CardAccountData, holder AccountHolderData, tav string) (string, error) {
	if e.PublicKey == nil {
		return "", ErrNoKey
	}
	if e.PublicKey.N.BitLen() < mastercard.MinRSABits {
		return "", fmt.Errorf("googlepay: payload encryption key has %d bits, need at least %d", e.PublicKey.N.BitLen(), mastercard.MinRSABits)
	}
	hashName, newHash, err := e.oaep()
	if err != nil {
		return "", err
	}
	if err := validate(card, holder); err != nil {
		return "", err
	}
	if _, err := base64.StdEncoding.DecodeString(tav); tav == "" || err != nil {
		return "", errors.New("googlepay: TAV must be a non-empty standard base64 string")
	}
	fingerprint, err := e.PublicKeyFingerprint()
	if err != nil {
		return "", err
	}
	if random == nil {
		random = rand.Reader
	}

	plaintext, err := marshalJSON(newPlaintext(now, card, holder))
	if err != nil {
		return "", fmt.Errorf("googlepay: encode card data: %w", err)
	}
	defer clear(plaintext)

	secret := make([]byte, aesKeySize+ivSize)
	if _, err := io.ReadFull(random, secret); err != nil {
		return "", fmt.Errorf("googlepay: random key and IV: %w", err)
	}
	defer clear(secret)
	key, iv := secret[:aesKeySize], secret[aesKeySize:]

	block, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("googlepay: aes: %w", err)
	}
	padded := pkcs7Pad(plaintext, aes.BlockSize)
	defer clear(padded)
	ciphertext := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ciphertext, padded)

	wrapped, err := rsa.EncryptOAEP(newHash(), random, e.PublicKey, key, nil)
	if err != nil {
		return "", fmt.Errorf("googlepay: wrap AES key: %w", err)
	}

	var out opc
	out.FundingAccountInfo.EncryptedPayload = encryptedPayload{
		PublicKeyFingerprint: fingerprint,
		EncryptedKey:         hex.EncodeToString(wrapped),
		OAEPHashingAlgorithm: hashName,
		IV:                   hex.EncodeToString(iv),
		EncryptedData:        hex.EncodeToString(ciphertext),
	}
	out.TokenizationAuthenticationValue = tav
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("googlepay: encode OPC: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// validate checks the inputs; errors name the field, never its value.
func validate(card CardAccountData, holder AccountHolderData) error {
	if !mastercard.ValidPAN(card.AccountNumber) {
		return fmt.Errorf("%w: accountNumber must be 12 to 19 digits with a valid check digit", ErrInvalidCard)
	}
	if len(card.ExpiryMonth) != 2 || !digits(card.ExpiryMonth) || card.ExpiryMonth < "01" || card.ExpiryMonth > "12" {
		return fmt.Errorf("%w: expiryMonth must be MM", ErrInvalidCard)
	}
	if len(card.ExpiryYear) != 2 || !digits(card.ExpiryYear) {
		return fmt.Errorf("%w: expiryYear must be YY", ErrInvalidCard)
	}
	if c := holder.BillingAddress.Country; c != "" && !IsAlpha3(c) {
		return fmt.Errorf("%w: country must be an ISO 3166-1 alpha-3 code such as BRA", ErrInvalidData)
	}
	if c := holder.MobilePhone.CountryDialInCode; c != "" && (len(c) > 3 || !digits(c)) {
		return fmt.Errorf("%w: countryDialInCode must be 1 to 3 digits", ErrInvalidData)
	}
	return nil
}

// marshalJSON encodes v without HTML escaping: the consumer is MDES, not a
// browser, so a name such as "A & B" stays byte-for-byte.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// pkcs7Pad appends 1..size bytes each equal to the pad length (RFC 5652 §6.3).
func pkcs7Pad(b []byte, size int) []byte {
	n := size - len(b)%size
	out := make([]byte, len(b), len(b)+n)
	copy(out, b)
	return append(out, bytes.Repeat([]byte{byte(n)}, n)...)
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// IsAlpha3 reports whether s looks like an ISO 3166-1 alpha-3 country code.
func IsAlpha3(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// Wire shapes. Field order is the JSON order.

type opc struct {
	FundingAccountInfo struct {
		EncryptedPayload encryptedPayload `json:"encryptedPayload"`
	} `json:"fundingAccountInfo"`
	TokenizationAuthenticationValue string `json:"tokenizationAuthenticationValue"`
}

type encryptedPayload struct {
	PublicKeyFingerprint string `json:"publicKeyFingerprint"`
	EncryptedKey         string `json:"encryptedKey"`
	OAEPHashingAlgorithm string `json:"oaepHashingAlgorithm"`
	IV                   string `json:"iv"`
	EncryptedData        string `json:"encryptedData"`
}

type plaintextJSON struct {
	CardAccountData struct {
		AccountNumber string `json:"accountNumber"`
		ExpiryMonth   string `json:"expiryMonth"`
		ExpiryYear    string `json:"expiryYear"`
	} `json:"cardAccountData"`
	AccountHolderData       *holderJSON `json:"accountHolderData,omitempty"`
	Source                  string      `json:"source"`
	DataValidUntilTimestamp string      `json:"dataValidUntilTimestamp"`
}

type holderJSON struct {
	Name    string       `json:"accountHolderName,omitempty"`
	Address *addressJSON `json:"accountHolderAddress,omitempty"`
	Phone   *phoneJSON   `json:"accountHolderMobilePhoneNumber,omitempty"`
}

type addressJSON struct {
	Line1              string `json:"line1,omitempty"`
	Line2              string `json:"line2,omitempty"`
	City               string `json:"city,omitempty"`
	CountrySubdivision string `json:"countrySubdivision,omitempty"`
	PostalCode         string `json:"postalCode,omitempty"`
	Country            string `json:"country,omitempty"`
}

type phoneJSON struct {
	CountryDialInCode string `json:"countryDialInCode,omitempty"`
	PhoneNumber       string `json:"phoneNumber,omitempty"`
}

// newPlaintext maps the inputs to the wire shape, dropping empty objects so
// MDES never sees blank placeholders.
func newPlaintext(now time.Time, card CardAccountData, holder AccountHolderData) plaintextJSON {
	var p plaintextJSON
	p.CardAccountData.AccountNumber = card.AccountNumber
	p.CardAccountData.ExpiryMonth = card.ExpiryMonth
	p.CardAccountData.ExpiryYear = card.ExpiryYear
	p.Source = Source
	p.DataValidUntilTimestamp = now.Add(Validity).UTC().Format(TimestampLayout)

	h := holderJSON{Name: holder.Name}
	if a := (addressJSON(holder.BillingAddress)); a != (addressJSON{}) {
		h.Address = &a
	}
	if ph := (phoneJSON(holder.MobilePhone)); ph != (phoneJSON{}) {
		h.Phone = &ph
	}
	if h != (holderJSON{}) {
		p.AccountHolderData = &h
	}
	return p
}
