// Package applepay builds the issuer side of Apple Pay In-App Provisioning
// with the ECC_V2 encryption scheme: it checks the encipherment certificate
// chain PassKit hands to the partner app, encrypts the card data for that
// certificate's key, and wraps the result in the Bankly-style base64 "data"
// field. It also issues sandbox trust material so a partner can decrypt its
// own sandbox payloads.
//
// Apple's normative description (the confidential "Getting Started with Apple
// Pay: In-App Provisioning, Verification & Security" guide and its test
// vectors) is not public. Everything here follows public reconstructions and
// is marked where unconfirmed; lock it with Apple's vectors before go-live.
package applepay

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"
)

// MarkerOID is the critical custom extension Apple puts on the in-app
// provisioning encipherment leaf (seen on a public sandbox leaf; confirm
// against Apple's guide). Go's x509 rejects unknown critical extensions, so
// Verifier handles it explicitly.
const MarkerOID = "1.2.840.113635.100.6.39"

// markerOID returns MarkerOID parsed; a function, not a variable, so no
// package state can be mutated.
func markerOID() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 39} }

// maxCertificates bounds the chain a caller may send; PassKit sends a leaf and
// one sub-CA, so anything much longer is malformed or hostile.
const maxCertificates = 8

// Errors returned by ParseCertificates and Verifier.Verify. They all describe
// a bad appleCertificate field; IsCertificateError reports membership.
var (
	// ErrNoCertificate means the input held no PEM CERTIFICATE block.
	ErrNoCertificate = errors.New("applepay: no PEM certificate found")
	// ErrMalformed means a block was not a certificate, did not parse, or
	// non-PEM data surrounded the blocks.
	ErrMalformed = errors.New("applepay: malformed certificate data")
	// ErrWrongCurve means the leaf key is not ECDSA on P-256.
	ErrWrongCurve = errors.New("applepay: leaf key is not ECDSA P-256")
	// ErrKeyUsage means the leaf lacks the KeyAgreement key usage.
	ErrKeyUsage = errors.New("applepay: leaf certificate lacks key agreement usage")
	// ErrExpired means a certificate is outside its validity period (expired
	// or not yet valid) at the verifier's current time.
	ErrExpired = errors.New("applepay: certificate outside its validity period")
	// ErrUntrusted means the chain does not lead to a configured root, or the
	// leaf is not an Apple provisioning encipherment certificate.
	ErrUntrusted = errors.New("applepay: certificate chain not trusted")
)

// IsCertificateError reports whether err was caused by the caller's
// certificate input (as opposed to an internal failure), so the HTTP layer can
// answer 400 naming appleCertificate.
func IsCertificateError(err error) bool {
	for _, target := range []error{ErrNoCertificate, ErrMalformed, ErrWrongCurve, ErrKeyUsage, ErrExpired, ErrUntrusted} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// ParseCertificates decodes one or more PEM CERTIFICATE blocks, leaf first
// and then intermediates, as sent in Bankly's appleCertificate field. Only
// whitespace may appear between and around the blocks: a truncated second
// block must not silently shorten the chain.
func ParseCertificates(pemText string) ([]*x509.Certificate, error) {
	rest := []byte(pemText)
	var certs []*x509.Certificate
	for {
		rest = bytes.TrimSpace(rest)
		if len(rest) == 0 {
			break
		}
		n := len(certs) + 1
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			if n == 1 && !bytes.Contains(rest, []byte("-----BEGIN ")) {
				return nil, ErrNoCertificate
			}
			if n == 1 {
				return nil, fmt.Errorf("%w: unexpected data before the first certificate", ErrMalformed)
			}
			return nil, fmt.Errorf("%w: unexpected data after certificate %d", ErrMalformed, n-1)
		}
		block, next := pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: block %d is not valid PEM", ErrMalformed, n)
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: block %d is %q, want CERTIFICATE", ErrMalformed, n, block.Type)
		}
		if len(certs) == maxCertificates {
			return nil, fmt.Errorf("%w: more than %d certificates", ErrMalformed, maxCertificates)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrMalformed, n, err)
		}
		certs = append(certs, cert)
		rest = next
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	return certs, nil
}

// Verifier checks the encipherment certificate chain from PassKit.
type Verifier struct {
	// Roots are the trust anchors: Apple Root CA - G3 in production, the
	// sandbox root in the sandbox. Required; system roots are never used.
	Roots *x509.CertPool
	// Now is the verification time; nil means time.Now.
	Now func() time.Time
	// RequireMarker makes a leaf without MarkerOID untrusted. Set it in
	// production, where every genuine leaf carries the marker.
	RequireMarker bool
}

// Verify checks chain (leaf first, then intermediates) and returns the leaf's
// key for ECDH. The leaf must be ECDSA P-256 with KeyAgreement usage, valid at
// Now, and chain through the intermediates to Roots.
func (v Verifier) Verify(chain []*x509.Certificate) (*ecdh.PublicKey, error) {
	if len(chain) == 0 || chain[0] == nil {
		return nil, ErrNoCertificate
	}
	if v.Roots == nil {
		return nil, fmt.Errorf("%w: no trust roots configured", ErrUntrusted)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	leaf := chain[0]

	ecKey, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || ecKey.Curve != elliptic.P256() {
		return nil, ErrWrongCurve
	}
	pub, err := ecKey.ECDH()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWrongCurve, err)
	}
	if leaf.KeyUsage&x509.KeyUsageKeyAgreement == 0 {
		return nil, ErrKeyUsage
	}
	// Checked here as well as by x509.Verify so the error is specific even
	// when the chain would also fail for another reason.
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w: leaf valid %s to %s", ErrExpired,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}

	hasMarker := slices.ContainsFunc(leaf.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(markerOID()) })
	if v.RequireMarker && !hasMarker {
		return nil, fmt.Errorf("%w: leaf lacks the Apple provisioning marker extension", ErrUntrusted)
	}
	// Verify a copy so the caller's certificate keeps its parsed state.
	checked := *leaf
	checked.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(leaf.UnhandledCriticalExtensions),
		func(oid asn1.ObjectIdentifier) bool { return oid.Equal(markerOID()) })

	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != nil {
			intermediates.AddCert(c)
		}
	}
	_, err = checked.Verify(x509.VerifyOptions{
		Roots:         v.Roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		// Apple's leaf carries no server-auth EKU; the default would demand it.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
			return nil, fmt.Errorf("%w: %v", ErrExpired, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	return pub, nil
}
