package applepay

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// This file checks the production encryption against an implementation of its
// own: ECDH by affine double-and-add on math/big (not crypto/ecdh), the KDF
// input concatenated from hex literals, and GCM decryption straight from
// crypto/cipher with a literal 16-byte IV.

// p256Mul returns the affine x and y of d·(x, y) on P-256.
func p256Mul(d []byte, x, y *big.Int) (*big.Int, *big.Int) {
	params := elliptic.P256().Params()
	p := params.P
	mod := func(v *big.Int) *big.Int { return v.Mod(v, p) }
	type point struct{ x, y *big.Int } // nil x means the point at infinity
	add := func(a, b point) point {
		if a.x == nil {
			return b
		}
		if b.x == nil {
			return a
		}
		var lambda *big.Int
		if a.x.Cmp(b.x) == 0 {
			if new(big.Int).Add(a.y, b.y).Cmp(p) == 0 || a.y.Sign() == 0 {
				return point{}
			}
			// Tangent slope (3x² - 3) / 2y, since a = -3 on P-256.
			num := mod(new(big.Int).Sub(new(big.Int).Mul(big.NewInt(3), new(big.Int).Mul(a.x, a.x)), big.NewInt(3)))
			den := new(big.Int).ModInverse(mod(new(big.Int).Mul(big.NewInt(2), a.y)), p)
			lambda = mod(num.Mul(num, den))
		} else {
			num := mod(new(big.Int).Sub(b.y, a.y))
			den := new(big.Int).ModInverse(mod(new(big.Int).Sub(b.x, a.x)), p)
			lambda = mod(num.Mul(num, den))
		}
		x3 := mod(new(big.Int).Sub(new(big.Int).Sub(new(big.Int).Mul(lambda, lambda), a.x), b.x))
		y3 := mod(new(big.Int).Sub(new(big.Int).Mul(lambda, new(big.Int).Sub(a.x, x3)), a.y))
		return point{x3, y3}
	}
	acc, base := point{}, point{x, y}
	k := new(big.Int).SetBytes(d)
	for i := k.BitLen() - 1; i >= 0; i-- {
		acc = add(acc, acc)
		if k.Bit(i) == 1 {
			acc = add(acc, base)
		}
	}
	return acc.x, acc.y
}

// p256OnCurve reports whether (x, y) satisfies y² = x³ - 3x + b mod p.
func p256OnCurve(x, y *big.Int) bool {
	params := elliptic.P256().Params()
	p := params.P
	if x.Sign() < 0 || x.Cmp(p) >= 0 || y.Sign() < 0 || y.Cmp(p) >= 0 {
		return false
	}
	rhs := new(big.Int).Mul(x, x)
	rhs.Mul(rhs, x)
	rhs.Sub(rhs, new(big.Int).Mul(big.NewInt(3), x))
	rhs.Add(rhs, params.B)
	rhs.Mod(rhs, p)
	lhs := new(big.Int).Mul(y, y)
	return lhs.Mod(lhs, p).Cmp(rhs) == 0
}

// independentKey derives the AES key from the receiver's private scalar and
// the 65-byte ephemeral point.
func independentKey(t *testing.T, leafScalar, ephPub []byte) []byte {
	t.Helper()
	if len(ephPub) != 65 || ephPub[0] != 0x04 {
		t.Fatalf("ephemeral public key is not an uncompressed point: % x", ephPub[:1])
	}
	x := new(big.Int).SetBytes(ephPub[1:33])
	y := new(big.Int).SetBytes(ephPub[33:])
	if !p256OnCurve(x, y) {
		t.Fatal("ephemeral public key is not on P-256")
	}
	zx, _ := p256Mul(leafScalar, x, y)
	z := zx.FillBytes(make([]byte, 32))
	var buf []byte
	for _, part := range []string{
		"00000001",                   // counter
		hex.EncodeToString(z),        // shared secret
		"0d",                         // algorithm id length
		"69642d6165733235362d47434d", // "id-aes256-GCM"
		"4170706c65",                 // "Apple"
		hex.EncodeToString(ephPub),   // party V info
	} {
		b, err := hex.DecodeString(part)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, b...)
	}
	sum := sha256.Sum256(buf)
	return sum[:]
}

// independentDecrypt opens encryptedPassData with the receiver's scalar.
func independentDecrypt(t *testing.T, leafScalar, ephPub, sealed []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(independentKey(t, leafScalar, ephPub))
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, 16)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := gcm.Open(nil, make([]byte, 16), sealed, nil)
	if err != nil {
		t.Fatalf("independent decryption failed: %v", err)
	}
	return plain
}

// checkPlaintext asserts the exact key set and every value.
func checkPlaintext(t *testing.T, plain []byte, want map[string]string) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(plain, &got); err != nil {
		t.Fatalf("plaintext is not a JSON object: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("plaintext has %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("plaintext %s = %v, want %q", k, got[k], v)
		}
	}
}

// deviceKeys issues a sandbox device and returns its verified public key and
// its private scalar as the partner would load them.
func deviceKeys(t *testing.T) (*ecdh.PublicKey, []byte) {
	t.Helper()
	root, rootKey, err := NewTestRoot(rand.Reader, testNow)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM, keyPEM, err := IssueTestDevice(rand.Reader, root, rootKey, testNow)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ParseCertificates(string(leafPEM))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := Verifier{Roots: pool(root), Now: func() time.Time { return testNow }, RequireMarker: true}.Verify(chain)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	scalar, err := k.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return pub, scalar
}

var samplePass = PassData{
	PrimaryAccountNumber: "5204247750001471",
	Expiration:           "11/28",
	Name:                 "José & Maria <Silva>",
	Nonce:                "A1B2C3D4",
	NonceSignature:       "0102030405060708090a0b0c0d0e0f10ff",
}

func TestEncryptDecryptsIndependently(t *testing.T) {
	pub, scalar := deviceKeys(t)
	ephPub, sealed, err := Encrypt(rand.Reader, pub, samplePass)
	if err != nil {
		t.Fatal(err)
	}
	plain := independentDecrypt(t, scalar, ephPub, sealed)
	checkPlaintext(t, plain, map[string]string{
		"primaryAccountNumber": "5204247750001471",
		"expiration":           "11/28",
		"name":                 "José & Maria <Silva>",
		"nonce":                "a1b2c3d4", // lowercased
		"nonceSignature":       "0102030405060708090a0b0c0d0e0f10ff",
	})
	if !bytes.Contains(plain, []byte(`"José & Maria <Silva>"`)) {
		t.Errorf("name was escaped: %s", plain)
	}
	if len(sealed) != len(plain)+16 {
		t.Errorf("encryptedPassData is %d bytes, want plaintext %d + 16-byte tag", len(sealed), len(plain))
	}
}

func TestBuildDataDecodesIndependently(t *testing.T) {
	pub, scalar := deviceKeys(t)
	const tav = "eyJ2ZXJzaW9uIjoiMyJ9"
	data, err := BuildData(nil, pub, samplePass, tav)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatalf("data is not standard base64: %v", err)
	}
	var fields map[string]string
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("decoded data is not a JSON object of strings: %v", err)
	}
	if len(fields) != 3 || fields["ActivationData"] != tav {
		t.Fatalf("data fields = %v", fields)
	}
	ephPub, err := base64.StdEncoding.DecodeString(fields["EphemeralPublicKey"])
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := base64.StdEncoding.DecodeString(fields["EncryptedData"])
	if err != nil {
		t.Fatal(err)
	}
	checkPlaintext(t, independentDecrypt(t, scalar, ephPub, sealed), map[string]string{
		"primaryAccountNumber": samplePass.PrimaryAccountNumber,
		"expiration":           samplePass.Expiration,
		"name":                 samplePass.Name,
		"nonce":                "a1b2c3d4",
		"nonceSignature":       samplePass.NonceSignature,
	})

	p, err := DecodeData(data)
	if err != nil {
		t.Fatalf("DecodeData: %v", err)
	}
	if !bytes.Equal(p.EphemeralPublicKey, ephPub) || !bytes.Equal(p.EncryptedData, sealed) || p.ActivationData != tav {
		t.Error("DecodeData disagrees with the independent decoding")
	}
}

func TestEncryptFreshKeyPerCall(t *testing.T) {
	pub, _ := deviceKeys(t)
	eph1, ct1, err := Encrypt(rand.Reader, pub, samplePass)
	if err != nil {
		t.Fatal(err)
	}
	eph2, ct2, err := Encrypt(rand.Reader, pub, samplePass)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(eph1, eph2) || bytes.Equal(ct1, ct2) {
		t.Fatal("two calls reused an ephemeral key: the zero IV would then repeat")
	}
}

// Known-answer vector computed outside Go, with Python's cryptography 48.0
// (ec.derive_private_key, ECDH exchange, hashlib.sha256, AESGCM with a 16-byte
// zero nonce). The scalars are SHA-256("ponte applepay kat ephemeral") and
// SHA-256("ponte applepay kat leaf"). A change here is a format change.
const (
	katEphScalar  = "a5d2899f1c336079abe8894968868c8026d8ff98d84f364f2b6df74eb3363662"
	katLeafScalar = "3f8af0ce15078f9d54fda3748d58690c9a78fca5d527e8c16122b338dade39f0"
	katEphPub     = "0433dd7b898b45fc5b8cae7d34d4ee99148a8cacfe61942da07a438d637792f06e2c17a6ec774e9c5ca291fb3d68e442f2a5e2cf25df8cab339b0c825e075d3da3"
	katLeafPub    = "04cd785bfb21f69d8e482a08bff91a514bfbf6f0ee51a7ffd8f9d551f58631b2d5f91ffce002b9d09cec03495e6f25937b5abecb89cd9c1e2500685042fac1478c"
	katZ          = "10ac12509eefc3eb2e12568b98890db109e7516a55d8dff04413a223877f081b"
	katKey        = "d21bc663fae5d90b3ca3f48509441a77dfde65e86273e79e336083b10e7ab31a"
	katPlaintext  = `{"primaryAccountNumber":"5204247750001471","expiration":"11/28","name":"MARIA DA SILVA","nonce":"a1b2c3d4","nonceSignature":"0102030405060708090a0b0c0d0e0f10"}`
	katCiphertext = "e73100bd48c87f672b0787726f1e25752f3bf1905a4142e2c0aeb101cdcb93b543a937fbeef0c08156e6f5b44e90c2b69e714e8b3e26639a4b34cd44af097eaa1406d5acc507041f3f13528d5b947fa3f8b916c6224425ad19356ac173b6d959f7652b63224786a8fca3a7a2e3f57cf61c94565ac18978de5230b7df8658a0c8e5096df26135384c2ff03157336457dff42422b235c4ce076b7d1100a28e4e75d8045bf70455aaf16808c4cb9aaffb"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKnownAnswer(t *testing.T) {
	if IVLength != 16 {
		t.Fatalf("IVLength = %d; the vector below is for 16 and must be recomputed on purpose", IVLength)
	}
	eph, err := ecdh.P256().NewPrivateKey(unhex(t, katEphScalar))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ecdh.P256().NewPublicKey(unhex(t, katLeafPub))
	if err != nil {
		t.Fatal(err)
	}
	ephPub, sealed, err := encryptWithKey(eph, leaf, PassData{
		PrimaryAccountNumber: "5204247750001471",
		Expiration:           "11/28",
		Name:                 "MARIA DA SILVA",
		Nonce:                "a1b2c3d4",
		NonceSignature:       "0102030405060708090a0b0c0d0e0f10",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(ephPub); got != katEphPub {
		t.Errorf("ephemeral public key = %s, want %s", got, katEphPub)
	}
	if got := hex.EncodeToString(deriveKey(unhex(t, katZ), ephPub)); got != katKey {
		t.Errorf("KDF output = %s, want %s", got, katKey)
	}
	if got := hex.EncodeToString(sealed); got != katCiphertext {
		t.Errorf("ciphertext = %s, want %s", got, katCiphertext)
	}

	// The independent code agrees with the frozen values too.
	if got := hex.EncodeToString(independentKey(t, unhex(t, katLeafScalar), unhex(t, katEphPub))); got != katKey {
		t.Errorf("independent KDF = %s, want %s", got, katKey)
	}
	if got := independentDecrypt(t, unhex(t, katLeafScalar), unhex(t, katEphPub), unhex(t, katCiphertext)); string(got) != katPlaintext {
		t.Errorf("independent decryption = %s", got)
	}
}

func TestEncryptRejects(t *testing.T) {
	pub, _ := deviceKeys(t)
	p384, err := ecdh.P384().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(*PassData)) PassData { p := samplePass; f(&p); return p }
	tests := []struct {
		name    string
		leaf    *ecdh.PublicKey
		p       PassData
		wantErr error
	}{
		{"nil leaf", nil, samplePass, ErrWrongCurve},
		{"P-384 leaf", p384.PublicKey(), samplePass, ErrWrongCurve},
		{"empty nonce", pub, with(func(p *PassData) { p.Nonce = "" }), ErrInvalidNonce},
		{"odd nonce", pub, with(func(p *PassData) { p.Nonce = "abc" }), ErrInvalidNonce},
		{"non-hex nonce", pub, with(func(p *PassData) { p.Nonce = "zz" }), ErrInvalidNonce},
		{"base64 nonce signature", pub, with(func(p *PassData) { p.NonceSignature = "AQID+A==" }), ErrInvalidNonceSignature},
		{"short PAN", pub, with(func(p *PassData) { p.PrimaryAccountNumber = "52042477500" }), ErrInvalidCardData},
		{"PAN with spaces", pub, with(func(p *PassData) { p.PrimaryAccountNumber = "5204 2477 5000 1471" }), ErrInvalidCardData},
		{"expiry MMYY", pub, with(func(p *PassData) { p.Expiration = "1128" }), ErrInvalidCardData},
		{"expiry month 13", pub, with(func(p *PassData) { p.Expiration = "13/28" }), ErrInvalidCardData},
		{"blank name", pub, with(func(p *PassData) { p.Name = " " }), ErrInvalidCardData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Encrypt(rand.Reader, tt.leaf, tt.p)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.p.PrimaryAccountNumber != "" && strings.Contains(err.Error(), tt.p.PrimaryAccountNumber) {
				t.Errorf("error reveals the card number: %v", err)
			}
		})
	}
	if _, err := BuildData(rand.Reader, pub, samplePass, ""); err == nil {
		t.Error("BuildData accepted empty activation data")
	}
}

func FuzzDecodeData(f *testing.F) {
	good, err := Payload{EphemeralPublicKey: append([]byte{4}, make([]byte, 64)...), EncryptedData: make([]byte, 40), ActivationData: "QUJD"}.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("e30=") // {}
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"EphemeralPublicKey":"BA==","EncryptedData":"","ActivationData":1}`)))
	f.Fuzz(func(t *testing.T, data string) {
		p, err := DecodeData(data)
		if err != nil {
			return
		}
		again, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		q, err := DecodeData(again)
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
		if !bytes.Equal(p.EphemeralPublicKey, q.EphemeralPublicKey) || !bytes.Equal(p.EncryptedData, q.EncryptedData) || p.ActivationData != q.ActivationData {
			t.Fatal("payload changed on re-encoding")
		}
	})
}
