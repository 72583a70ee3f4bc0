package applepay

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// IVLength is the length in bytes of the all-zero AES-GCM IV used for
// encryptedPassData.
//
// Public sources disagree and Apple's provisioning guide is confidential:
//   - 12 bytes: the public Swift issuer sample
//     (github.com/chauchinyiu/APayBackendProvisioning, AESGCMEncryption.swift);
//   - 16 bytes: Apple's Payment Token Format Reference for EC_v1, which uses
//     the same KDF family and says "an initialization vector of 16 null bytes"
//     (also quoted by Green Dot's crypto primer).
//
// 16 is chosen because it is Apple's own published wording for its sibling
// ECC scheme, whereas the 12-byte reading comes from an unofficial sample.
// The two give different ciphertexts: confirm with Apple's onboarding test
// vector before production.
const IVLength = 16

// kdfAlgorithmID is the SP 800-56A AlgorithmID: a length byte (0x0D = 13)
// followed by the algorithm name.
const kdfAlgorithmID = "\x0did-aes256-GCM"

// kdfPartyUInfo is the SP 800-56A PartyUInfo, ASCII with no length prefix.
const kdfPartyUInfo = "Apple"

// Errors for invalid PassData. The nonce errors come from the partner's
// request (answer 400 naming nonce / nonceSignature); ErrInvalidCardData means
// the stored card itself is unusable.
var (
	ErrInvalidNonce          = errors.New("applepay: nonce must be non-empty hexadecimal")
	ErrInvalidNonceSignature = errors.New("applepay: nonceSignature must be non-empty hexadecimal")
	ErrInvalidCardData       = errors.New("applepay: invalid card data")
)

// PassData is the plaintext of encryptedPassData, as documented by Apple for
// PKAddPaymentPassRequest.encryptedPassData.
type PassData struct {
	// PrimaryAccountNumber is the full card number, digits only.
	PrimaryAccountNumber string `json:"primaryAccountNumber"`
	// Expiration is the card expiry as "MM/YY".
	Expiration string `json:"expiration"`
	// Name is the card holder name.
	Name string `json:"name"`
	// Nonce is the PassKit nonce as lowercase hex.
	Nonce string `json:"nonce"`
	// NonceSignature is the PassKit nonce signature as lowercase hex.
	NonceSignature string `json:"nonceSignature"`
}

// Validate checks every field. Errors never contain the card number.
func (p PassData) Validate() error {
	if !isHex(p.Nonce) {
		return ErrInvalidNonce
	}
	if !isHex(p.NonceSignature) {
		return ErrInvalidNonceSignature
	}
	if n := len(p.PrimaryAccountNumber); n < 12 || n > 19 || !allDigits(p.PrimaryAccountNumber) {
		return fmt.Errorf("%w: primaryAccountNumber must be 12 to 19 digits", ErrInvalidCardData)
	}
	if !validExpiration(p.Expiration) {
		return fmt.Errorf("%w: expiration must be MM/YY", ErrInvalidCardData)
	}
	if strings.TrimSpace(p.Name) == "" {
		return fmt.Errorf("%w: name is empty", ErrInvalidCardData)
	}
	return nil
}

// Encrypt builds encryptedPassData for the leaf key returned by
// Verifier.Verify, using the ECC_V2 recipe:
//
//	eph = fresh P-256 key pair (never reused: the zero IV is safe only then)
//	Z   = ECDH(eph, leaf)
//	K   = SHA-256(00000001 ‖ Z ‖ 0x0D ‖ "id-aes256-GCM" ‖ "Apple" ‖ ephPub)
//	out = AES-256-GCM(K, IV = IVLength zero bytes, no AAD)(JSON(p)) = ciphertext ‖ tag
//
// ephemeralPublicKey is the 65-byte uncompressed point 0x04 ‖ X ‖ Y. Nonces
// are lowercased before embedding. random may be nil for crypto/rand; since
// Go 1.26 the standard library generates keys from its own CSPRNG anyway.
func Encrypt(random io.Reader, leaf *ecdh.PublicKey, p PassData) (ephemeralPublicKey, encryptedPassData []byte, err error) {
	if leaf == nil || leaf.Curve() != ecdh.P256() {
		return nil, nil, ErrWrongCurve
	}
	if random == nil {
		random = rand.Reader
	}
	eph, err := ecdh.P256().GenerateKey(random)
	if err != nil {
		return nil, nil, fmt.Errorf("applepay: generate ephemeral key: %w", err)
	}
	return encryptWithKey(eph, leaf, p)
}

// encryptWithKey is Encrypt with the ephemeral key supplied, so a known-answer
// test can pin the output.
func encryptWithKey(eph *ecdh.PrivateKey, leaf *ecdh.PublicKey, p PassData) (ephemeralPublicKey, encryptedPassData []byte, err error) {
	if leaf == nil || leaf.Curve() != ecdh.P256() {
		return nil, nil, ErrWrongCurve
	}
	p.Nonce = strings.ToLower(p.Nonce)
	p.NonceSignature = strings.ToLower(p.NonceSignature)
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	plaintext, err := marshalJSON(p)
	if err != nil {
		return nil, nil, fmt.Errorf("applepay: encode pass data: %w", err)
	}
	defer clear(plaintext)

	z, err := eph.ECDH(leaf)
	if err != nil {
		return nil, nil, fmt.Errorf("applepay: key agreement: %w", err)
	}
	defer clear(z)
	ephPub := eph.PublicKey().Bytes()
	key := deriveKey(z, ephPub)
	defer clear(key)

	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, fmt.Errorf("applepay: aes: %w", err)
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, IVLength)
	if err != nil {
		return nil, nil, fmt.Errorf("applepay: gcm: %w", err)
	}
	return ephPub, gcm.Seal(nil, make([]byte, IVLength), plaintext, nil), nil
}

// deriveKey is the NIST SP 800-56A single-step KDF with SHA-256 and one round
// (a 256-bit key needs exactly one hash output).
func deriveKey(z, ephemeralPublicKey []byte) []byte {
	h := sha256.New()
	h.Write([]byte{0, 0, 0, 1})
	h.Write(z)
	h.Write([]byte(kdfAlgorithmID))
	h.Write([]byte(kdfPartyUInfo))
	h.Write(ephemeralPublicKey)
	return h.Sum(nil)
}

// Payload is the JSON inside Bankly's base64 "data" field for Apple Pay. Key
// names are exactly those of the Bankly seed.
//
// Encodings: EphemeralPublicKey and EncryptedData are raw bytes, so
// encoding/json writes them as standard base64 with padding (what the iOS app
// feeds to Data(base64Encoded:)). ActivationData is the Mastercard TAV, which
// is already a standard base64 string, and is carried unchanged, never
// base64-encoded twice.
type Payload struct {
	EphemeralPublicKey []byte `json:"EphemeralPublicKey"`
	EncryptedData      []byte `json:"EncryptedData"`
	ActivationData     string `json:"ActivationData"`
}

// Encode returns the standard base64 of the payload's JSON: Bankly's "data".
func (p Payload) Encode() (string, error) {
	b, err := marshalJSON(p)
	if err != nil {
		return "", fmt.Errorf("applepay: encode payload: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeData parses Bankly's "data" field back into a Payload. Partners and
// tests use it; the server only encodes.
func DecodeData(data string) (Payload, error) {
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return Payload{}, fmt.Errorf("applepay: data is not standard base64: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p Payload
	if err := dec.Decode(&p); err != nil {
		return Payload{}, fmt.Errorf("applepay: data is not a payload JSON object: %w", err)
	}
	if dec.More() {
		return Payload{}, errors.New("applepay: data has trailing content after the JSON object")
	}
	if len(p.EphemeralPublicKey) != 65 || p.EphemeralPublicKey[0] != 4 {
		return Payload{}, errors.New("applepay: EphemeralPublicKey is not an uncompressed P-256 point")
	}
	if len(p.EncryptedData) < 16 {
		return Payload{}, errors.New("applepay: EncryptedData is shorter than a GCM tag")
	}
	return p, nil
}

// BuildData encrypts p for leaf and returns Bankly's "data" string carrying
// the ephemeral key, the encrypted pass data and activationData (the TAV).
func BuildData(random io.Reader, leaf *ecdh.PublicKey, p PassData, activationData string) (string, error) {
	if activationData == "" {
		return "", errors.New("applepay: activation data is empty")
	}
	ephPub, encrypted, err := Encrypt(random, leaf, p)
	if err != nil {
		return "", err
	}
	return Payload{EphemeralPublicKey: ephPub, EncryptedData: encrypted, ActivationData: activationData}.Encode()
}

// marshalJSON encodes v without HTML escaping: the consumer is Apple or an
// app, not a browser, and a name such as "A & B" should stay byte-for-byte.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func isHex(s string) bool {
	if s == "" || len(s)%2 != 0 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validExpiration(s string) bool {
	if len(s) != 5 || s[2] != '/' || !allDigits(s[:2]) || !allDigits(s[3:]) {
		return false
	}
	month := int(s[0]-'0')*10 + int(s[1]-'0')
	return month >= 1 && month <= 12
}
