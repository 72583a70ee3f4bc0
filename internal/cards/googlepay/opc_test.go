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
	"hash"
	"strings"
	"sync"
	"testing"
	"time"
)

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var (
	testNow  = time.Date(2026, 3, 10, 9, 15, 30, 987_654_321, time.FixedZone("BRT", -3*3600))
	testCard = CardAccountData{AccountNumber: "5204247750001471", ExpiryMonth: "11", ExpiryYear: "28"}
	testTAV  = base64.StdEncoding.EncodeToString([]byte(`{"version":"3"}`))
	testHold = AccountHolderData{
		Name: "José & Maria <Silva>",
		BillingAddress: BillingAddress{
			Line1: "Rua 6 de Março, 2500", Line2: "Alter do Chão", City: "Santarém",
			CountrySubdivision: "PA", PostalCode: "05402100", Country: "BRA",
		},
		MobilePhone: MobilePhone{CountryDialInCode: "55", PhoneNumber: "23415162342"},
	}
)

// Independent decoding: its own wire structs (unknown fields refused), its
// own PKCS#7 unpadding, CBC straight from crypto/cipher.

type wireOPC struct {
	FundingAccountInfo struct {
		EncryptedPayload struct {
			PublicKeyFingerprint string `json:"publicKeyFingerprint"`
			EncryptedKey         string `json:"encryptedKey"`
			OAEPHashingAlgorithm string `json:"oaepHashingAlgorithm"`
			IV                   string `json:"iv"`
			EncryptedData        string `json:"encryptedData"`
		} `json:"encryptedPayload"`
	} `json:"fundingAccountInfo"`
	TokenizationAuthenticationValue string `json:"tokenizationAuthenticationValue"`
}

type wirePlain struct {
	CardAccountData struct {
		AccountNumber string `json:"accountNumber"`
		ExpiryMonth   string `json:"expiryMonth"`
		ExpiryYear    string `json:"expiryYear"`
	} `json:"cardAccountData"`
	AccountHolderData *struct {
		AccountHolderName    string `json:"accountHolderName"`
		AccountHolderAddress struct {
			Line1              string `json:"line1"`
			Line2              string `json:"line2"`
			City               string `json:"city"`
			CountrySubdivision string `json:"countrySubdivision"`
			PostalCode         string `json:"postalCode"`
			Country            string `json:"country"`
		} `json:"accountHolderAddress"`
		AccountHolderMobilePhoneNumber struct {
			CountryDialInCode string `json:"countryDialInCode"`
			PhoneNumber       string `json:"phoneNumber"`
		} `json:"accountHolderMobilePhoneNumber"`
	} `json:"accountHolderData"`
	Source                  string `json:"source"`
	DataValidUntilTimestamp string `json:"dataValidUntilTimestamp"`
}

func strictJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, b)
	}
}

func unpad(t *testing.T, b []byte) []byte {
	t.Helper()
	if len(b) == 0 || len(b)%16 != 0 {
		t.Fatalf("ciphertext length %d is not whole blocks", len(b))
	}
	n := int(b[len(b)-1])
	if n < 1 || n > 16 {
		t.Fatalf("bad pad byte %d", n)
	}
	for _, c := range b[len(b)-n:] {
		if int(c) != n {
			t.Fatal("inconsistent PKCS#7 padding")
		}
	}
	return b[:len(b)-n]
}

func unhex(t *testing.T, name, s string) []byte {
	t.Helper()
	if s != strings.ToLower(s) {
		t.Errorf("%s is not lowercase hex", name)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%s is not hex: %v", name, err)
	}
	return b
}

// openOPC decodes and decrypts an OPC with the private key.
func openOPC(t *testing.T, key *rsa.PrivateKey, opc string, wantHash string) (wireOPC, wirePlain, []byte) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(opc)
	if err != nil {
		t.Fatalf("OPC is not standard base64: %v", err)
	}
	var o wireOPC
	strictJSON(t, raw, &o)
	p := o.FundingAccountInfo.EncryptedPayload

	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	fp := sha256.Sum256(der)
	if p.PublicKeyFingerprint != hex.EncodeToString(fp[:]) {
		t.Errorf("publicKeyFingerprint = %s", p.PublicKeyFingerprint)
	}
	if p.OAEPHashingAlgorithm != wantHash {
		t.Errorf("oaepHashingAlgorithm = %s, want %s", p.OAEPHashingAlgorithm, wantHash)
	}
	var h hash.Hash = sha512.New()
	if wantHash == "SHA256" {
		h = sha256.New()
	}
	aesKey, err := rsa.DecryptOAEP(h, nil, key, unhex(t, "encryptedKey", p.EncryptedKey), nil)
	if err != nil {
		t.Fatalf("unwrap AES key: %v", err)
	}
	if len(aesKey) != 32 {
		t.Fatalf("AES key is %d bytes, want 32", len(aesKey))
	}
	iv := unhex(t, "iv", p.IV)
	if len(iv) != 16 {
		t.Fatalf("iv is %d bytes, want 16", len(iv))
	}
	ct := unhex(t, "encryptedData", p.EncryptedData)
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(ct)%16 != 0 {
		t.Fatalf("encryptedData is %d bytes", len(ct))
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	plain = unpad(t, plain)
	var w wirePlain
	strictJSON(t, plain, &w)
	return o, w, plain
}

func TestOPCDecryptsIndependently(t *testing.T) {
	key := testKey()
	for _, tc := range []struct{ config, want string }{{"", "SHA512"}, {"SHA512", "SHA512"}, {"SHA256", "SHA256"}} {
		t.Run("hash "+tc.want+" configured "+tc.config, func(t *testing.T) {
			opc, err := Encryptor{PublicKey: &key.PublicKey, OAEPHash: tc.config}.OPC(rand.Reader, testNow, testCard, testHold, testTAV)
			if err != nil {
				t.Fatal(err)
			}
			o, p, plain := openOPC(t, key, opc, tc.want)
			if o.TokenizationAuthenticationValue != testTAV {
				t.Errorf("tokenizationAuthenticationValue = %q", o.TokenizationAuthenticationValue)
			}
			if strings.Contains(opc, "5204247750001471") {
				t.Error("card number visible outside the ciphertext")
			}
			c := p.CardAccountData
			if c.AccountNumber != "5204247750001471" || c.ExpiryMonth != "11" || c.ExpiryYear != "28" {
				t.Errorf("cardAccountData = %+v", c)
			}
			if p.AccountHolderData == nil {
				t.Fatal("accountHolderData missing")
			}
			h := *p.AccountHolderData
			if h.AccountHolderName != testHold.Name {
				t.Errorf("accountHolderName = %q", h.AccountHolderName)
			}
			a := h.AccountHolderAddress
			if a.Line1 != "Rua 6 de Março, 2500" || a.Line2 != "Alter do Chão" || a.City != "Santarém" ||
				a.CountrySubdivision != "PA" || a.PostalCode != "05402100" || a.Country != "BRA" {
				t.Errorf("accountHolderAddress = %+v", a)
			}
			if ph := h.AccountHolderMobilePhoneNumber; ph.CountryDialInCode != "55" || ph.PhoneNumber != "23415162342" {
				t.Errorf("accountHolderMobilePhoneNumber = %+v", ph)
			}
			if p.Source != "ACCOUNT_ADDED_VIA_APPLICATION" {
				t.Errorf("source = %q", p.Source)
			}
			if p.DataValidUntilTimestamp != "2026-03-10T12:45:30.987Z" {
				t.Errorf("dataValidUntilTimestamp = %q, want now+30m in UTC with milliseconds", p.DataValidUntilTimestamp)
			}
			until, err := time.Parse(time.RFC3339Nano, p.DataValidUntilTimestamp)
			if err != nil {
				t.Fatal(err)
			}
			if d := until.Sub(testNow); d < 30*time.Minute-time.Millisecond || d > 30*time.Minute {
				t.Errorf("valid for %s, want 30m", d)
			}
			if !bytes.Contains(plain, []byte(`"José & Maria <Silva>"`)) {
				t.Errorf("name was escaped: %s", plain)
			}
		})
	}
}

func TestOPCOmitsEmptyHolderData(t *testing.T) {
	key := testKey()
	opc, err := Encryptor{PublicKey: &key.PublicKey}.OPC(nil, testNow, testCard, AccountHolderData{}, testTAV)
	if err != nil {
		t.Fatal(err)
	}
	_, p, plain := openOPC(t, key, opc, "SHA512")
	if p.AccountHolderData != nil || bytes.Contains(plain, []byte("accountHolder")) {
		t.Errorf("empty holder data was sent: %s", plain)
	}

	opc, err = Encryptor{PublicKey: &key.PublicKey}.OPC(nil, testNow, testCard, AccountHolderData{Name: "ANA"}, testTAV)
	if err != nil {
		t.Fatal(err)
	}
	_, _, plain = openOPC(t, key, opc, "SHA512")
	if bytes.Contains(plain, []byte("accountHolderAddress")) || bytes.Contains(plain, []byte("MobilePhone")) {
		t.Errorf("blank address or phone was sent: %s", plain)
	}
}

func TestOPCFreshKeyAndIV(t *testing.T) {
	key := testKey()
	e := Encryptor{PublicKey: &key.PublicKey}
	seen := map[string]bool{}
	for range 2 {
		opc, err := e.OPC(rand.Reader, testNow, testCard, testHold, testTAV)
		if err != nil {
			t.Fatal(err)
		}
		o, _, _ := openOPC(t, key, opc, "SHA512")
		p := o.FundingAccountInfo.EncryptedPayload
		aesKey, err := rsa.DecryptOAEP(sha512.New(), nil, key, unhex(t, "encryptedKey", p.EncryptedKey), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"key:" + hex.EncodeToString(aesKey), "iv:" + p.IV, "data:" + p.EncryptedData, "wrapped:" + p.EncryptedKey} {
			if seen[v] {
				t.Errorf("repeated across calls: %s", v[:strings.IndexByte(v, ':')])
			}
			seen[v] = true
		}
	}
}

// TestOPCUsesRandom pins that the AES key and IV come from the supplied
// reader, in that order, so a deterministic reader gives a known IV.
func TestOPCUsesRandom(t *testing.T) {
	key := testKey()
	stream := make([]byte, 1024)
	for i := range stream {
		stream[i] = byte(i)
	}
	opc, err := Encryptor{PublicKey: &key.PublicKey}.OPC(bytes.NewReader(stream), testNow, testCard, testHold, testTAV)
	if err != nil {
		t.Fatal(err)
	}
	o, _, _ := openOPC(t, key, opc, "SHA512")
	p := o.FundingAccountInfo.EncryptedPayload
	if want := hex.EncodeToString(stream[32:48]); p.IV != want {
		t.Errorf("iv = %s, want %s", p.IV, want)
	}
	aesKey, err := rsa.DecryptOAEP(sha512.New(), nil, key, unhex(t, "encryptedKey", p.EncryptedKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(aesKey, stream[:32]) {
		t.Error("AES key did not come from the reader")
	}
	if _, err := (Encryptor{PublicKey: &key.PublicKey}).OPC(bytes.NewReader(stream[:20]), testNow, testCard, testHold, testTAV); err == nil {
		t.Error("short random reader accepted")
	}
}

func TestOPCRejects(t *testing.T) {
	key := testKey()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ok := Encryptor{PublicKey: &key.PublicKey}
	card := func(f func(*CardAccountData)) CardAccountData { c := testCard; f(&c); return c }
	holder := func(f func(*AccountHolderData)) AccountHolderData { h := testHold; f(&h); return h }
	tests := []struct {
		name    string
		e       Encryptor
		card    CardAccountData
		holder  AccountHolderData
		tav     string
		wantErr error
	}{
		{"no key", Encryptor{}, testCard, testHold, testTAV, ErrNoKey},
		{"small key", Encryptor{PublicKey: &small.PublicKey}, testCard, testHold, testTAV, nil},
		{"SHA1", Encryptor{PublicKey: &key.PublicKey, OAEPHash: "SHA1"}, testCard, testHold, testTAV, nil},
		{"bad check digit", ok, card(func(c *CardAccountData) { c.AccountNumber = "5204247750001472" }), testHold, testTAV, ErrInvalidCard},
		{"month 13", ok, card(func(c *CardAccountData) { c.ExpiryMonth = "13" }), testHold, testTAV, ErrInvalidCard},
		{"month 1", ok, card(func(c *CardAccountData) { c.ExpiryMonth = "1" }), testHold, testTAV, ErrInvalidCard},
		{"four-digit year", ok, card(func(c *CardAccountData) { c.ExpiryYear = "2028" }), testHold, testTAV, ErrInvalidCard},
		{"country name", ok, testCard, holder(func(h *AccountHolderData) { h.BillingAddress.Country = "Brasil" }), testTAV, ErrInvalidData},
		{"alpha-2 country", ok, testCard, holder(func(h *AccountHolderData) { h.BillingAddress.Country = "BR" }), testTAV, ErrInvalidData},
		{"dial code with plus", ok, testCard, holder(func(h *AccountHolderData) { h.MobilePhone.CountryDialInCode = "+55" }), testTAV, ErrInvalidData},
		{"empty TAV", ok, testCard, testHold, "", nil},
		{"TAV not base64", ok, testCard, testHold, "not base64!", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.e.OPC(rand.Reader, testNow, tt.card, tt.holder, tt.tav)
			if err == nil {
				t.Fatal("OPC succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), tt.card.AccountNumber) {
				t.Errorf("error reveals the card number: %v", err)
			}
		})
	}
}

func TestPublicKeyFingerprint(t *testing.T) {
	key := testKey()
	got, err := Encryptor{PublicKey: &key.PublicKey}.PublicKeyFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(der)
	if got != hex.EncodeToString(want[:]) || len(got) != 64 {
		t.Errorf("fingerprint = %s", got)
	}
	if _, err := (Encryptor{}).PublicKeyFingerprint(); !errors.Is(err, ErrNoKey) {
		t.Errorf("nil key: err = %v", err)
	}
}
