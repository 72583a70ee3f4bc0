package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-ofb/ponte/internal/clock"
)

// The real Directory's values (DCR-BR §"Open Finance Brasil SSA Key Store and
// Issuer Details"; the issuer as its example statement carries it). They are
// the defaults of --directory-jwks, --directory-keystore and
// --directory-issuer outside the sandbox.
const (
	ProductionJWKS     = "https://keystore.directory.openbankingbrasil.org.br/openbanking.jwks"
	ProductionKeystore = "https://keystore.directory.openbankingbrasil.org.br"
	ProductionIssuer   = "Open Banking Open Banking Brasil prod SSA issuer"
)

// RFC 7591 §3.2.2 error codes for a refused software statement.
const (
	CodeInvalidStatement    = "invalid_software_statement"
	CodeUnapprovedStatement = "unapproved_software_statement"
)

// ErrInvalidStatement and ErrUnapprovedStatement match (errors.Is) every
// StatementError of that code.
var (
	ErrInvalidStatement    = errors.New(CodeInvalidStatement)
	ErrUnapprovedStatement = errors.New(CodeUnapprovedStatement)
)

// ErrKeysUnavailable wraps a failure to obtain the Directory's keys (the
// JWKS URL did not answer, or answered garbage): not the client's fault, so
// it is no StatementError.
var ErrKeysUnavailable = errors.New("directory: the Directory's keys are unavailable")

// StatementError is a software statement the Verifier refused: Code is the
// RFC 7591 error (CodeInvalidStatement: not a valid statement of the
// configured Directory; CodeUnapprovedStatement: valid, but its organisation,
// software or roles are not active) and Description says why, for the
// error_description of the answer.
type StatementError struct {
	Code        string
	Description string
}

func (e *StatementError) Error() string { return e.Code + ": " + e.Description }

// Is makes errors.Is(err, ErrInvalidStatement) and ErrUnapprovedStatement work.
func (e *StatementError) Is(target error) bool {
	return (target == ErrInvalidStatement && e.Code == CodeInvalidStatement) ||
		(target == ErrUnapprovedStatement && e.Code == CodeUnapprovedStatement)
}

func invalid(format string, args ...any) error {
	return &StatementError{Code: CodeInvalidStatement, Description: fmt.Sprintf(format, args...)}
}

func unapproved(format string, args ...any) error {
	return &StatementError{Code: CodeUnapprovedStatement, Description: fmt.Sprintf(format, args...)}
}

// KeySource finds the public key that verifies a signature by its key id.
// A source that fetches its keys fetches them again on an unknown kid
// (within its rate limit) before answering ErrKeyNotFound.
type KeySource interface {
	Key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
}

// ErrKeyNotFound is a KeySource's answer for a kid it does not hold.
var ErrKeyNotFound = errors.New("directory: no key with that kid")

// Defaults of the Verifier's bounds.
const (
	// DefaultMaxAge is how old a statement may be (DCR-BR: iat at most 5
	// minutes before the registration).
	DefaultMaxAge = 5 * time.Minute
	// DefaultLeeway is how far in the future iat may be: the Directory's
	// clock and Ponte's disagree by a little.
	DefaultLeeway = 30 * time.Second
	// maxStatementBytes bounds what is parsed: real statements are ~3 KiB.
	maxStatementBytes = 64 << 10
)

// Verifier checks the software statements (SSAs) clients present at
// dynamic client registration: a compact JWS signed PS256 by one of the
// Directory's keys, issued by the configured issuer, at most MaxAge old,
// with the claims registration needs, for an active organisation and
// software holding at least one active role.
type Verifier struct {
	// Keys are the Directory's signing keys.
	Keys KeySource
	// Issuer is the iss statements must carry.
	Issuer string
	// Keystore is the base URL of the Directory's keystore; when set, a
	// statement's software_jwks_uri must be KeystoreJWKSURI(Keystore, org_id,
	// software_id), so the client's keys are the ones its organisation
	// published there.
	Keystore string
	Clock    clock.Clock
	// MaxAge and Leeway default to DefaultMaxAge and DefaultLeeway.
	MaxAge time.Duration
	Leeway time.Duration
}

// Verify checks ssa and returns its claims. A refused statement is a
// *StatementError; a failure to get the Directory's keys wraps
// ErrKeysUnavailable.
func (v *Verifier) Verify(ctx context.Context, ssa string) (*SoftwareStatement, error) {
	jws, kid, err := ParseStatement(ssa)
	if err != nil {
		return nil, err
	}
	key, err := v.Keys.Key(ctx, kid)
	switch {
	case errors.Is(err, ErrKeyNotFound):
		return nil, invalid("the statement is not signed by a key of the Directory (kid %q is not among its keys)", kid)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, invalid("the statement's signature does not verify with the Directory's key %q", kid)
	}
	st, err := DecodeClaims(payload)
	if err != nil {
		return nil, err
	}
	if st.Issuer != v.Issuer {
		return nil, invalid("the statement's iss %q is not the Directory's (%q)", st.Issuer, v.Issuer)
	}
	if err := v.checkTime(st.IssuedAt); err != nil {
		return nil, err
	}
	if v.Keystore != "" {
		if want := KeystoreJWKSURI(v.Keystore, st.OrgID, st.SoftwareID); st.SoftwareJWKSURI != want {
			return nil, invalid("software_jwks_uri %q is not the Directory keystore's for this software (%s)", st.SoftwareJWKSURI, want)
		}
	}
	if err := approved(st); err != nil {
		return nil, err
	}
	return st, nil
}

func (v *Verifier) checkTime(iat int64) error {
	if iat <= 0 {
		return invalid("the statement has no iat")
	}
	maxAge, leeway := v.MaxAge, v.Leeway
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if leeway <= 0 {
		leeway = DefaultLeeway
	}
	now := v.Clock.Now()
	issued := time.Unix(iat, 0)
	if issued.After(now.Add(leeway)) {
		return invalid("the statement's iat %s is in the future", issued.UTC().Format(time.RFC3339))
	}
	if now.Sub(issued) > maxAge {
		return invalid("the statement was issued at %s, more than %s ago: ask the Directory for a new one",
			issued.UTC().Format(time.RFC3339), maxAge)
	}
	return nil
}

// approved refuses, as unapproved, a statement of an inactive organisation
// or software, or one without an active role.
func approved(st *SoftwareStatement) error {
	if st.OrgStatus != "" && st.OrgStatus != RoleActive {
		return unapproved("the organisation's status at the Directory is %q, not %q", st.OrgStatus, RoleActive)
	}
	if st.SoftwareStatus != "" && st.SoftwareStatus != RoleActive {
		return unapproved("the software's status at the Directory is %q, not %q", st.SoftwareStatus, RoleActive)
	}
	if len(ScopesForRoles(st.ActiveRoles())) == 0 {
		return unapproved("the statement grants no active role Ponte knows (%s, %s, %s or %s)", RoleData, RolePayments, RoleAccount, RoleCredit)
	}
	return nil
}

// ParseStatement parses ssa as a compact JWS signed with PS256 (the only
// algorithm of the FAPI-BR profile) and returns it with the key id of its
// header, unverified. Errors are *StatementError.
func ParseStatement(ssa string) (*jose.JSONWebSignature, string, error) {
	if ssa == "" {
		return nil, "", invalid("software_statement is empty")
	}
	if len(ssa) > maxStatementBytes {
		return nil, "", invalid("the statement is longer than %d bytes", maxStatementBytes)
	}
	if strings.Count(ssa, ".") != 2 {
		return nil, "", invalid("the statement is not a compact JWS (three dot-separated parts)")
	}
	// Every signature algorithm parses, so that one other than PS256 is
	// named in the answer rather than refused as unparseable.
	jws, err := jose.ParseSignedCompact(ssa, signatureAlgorithms)
	if err != nil {
		return nil, "", invalid("the statement is not a valid JWS: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, "", invalid("the statement must carry exactly one signature")
	}
	h := jws.Signatures[0].Header
	if h.Algorithm != string(jose.PS256) {
		return nil, "", invalid("the statement is signed with %q; the Directory signs with PS256", h.Algorithm)
	}
	if h.KeyID == "" {
		return nil, "", invalid("the statement's header names no kid")
	}
	return jws, h.KeyID, nil
}

var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.EdDSA, jose.HS256, jose.HS384, jose.HS512, jose.RS256, jose.RS384, jose.RS512,
	jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512,
}

// DecodeClaims decodes a statement's payload and checks the claims
// registration needs are present and well formed. Errors are
// *StatementError.
func DecodeClaims(payload []byte) (*SoftwareStatement, error) {
	var st SoftwareStatement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, invalid("the statement's claims are not a JSON object of the expected claims: %v", err)
	}
	var missing []string
	for _, c := range []struct {
		name    string
		present bool
	}{
		{"iss", st.Issuer != ""},
		{"iat", st.IssuedAt != 0},
		{"org_id", st.OrgID != ""},
		{"software_id", st.SoftwareID != ""},
		{"software_jwks_uri", st.SoftwareJWKSURI != ""},
		{"software_redirect_uris", len(st.SoftwareRedirectURIs) > 0},
	} {
		if !c.present {
			missing = append(missing, c.name)
		}
	}
	if len(st.SoftwareStatementRoles) == 0 && len(st.SoftwareRoles) == 0 {
		missing = append(missing, "software_statement_roles")
	}
	if len(missing) > 0 {
		return nil, invalid("the statement lacks %s", strings.Join(missing, ", "))
	}
	if !absoluteHTTP(st.SoftwareJWKSURI) {
		return nil, invalid("software_jwks_uri %q is not an absolute http(s) URL", st.SoftwareJWKSURI)
	}
	for _, u := range st.SoftwareRedirectURIs {
		if !absoluteHTTP(u) {
			return nil, invalid("software_redirect_uris holds %q, not an absolute http(s) URL", u)
		}
	}
	for _, u := range st.SoftwareAPIWebhookURIs {
		if !absoluteHTTP(u) {
			return nil, invalid("software_api_webhook_uris holds %q, not an absolute http(s) URL", u)
		}
	}
	return &st, nil
}

func absoluteHTTP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.Fragment == ""
}

// KeystoreJWKSURI is where the keystore at base publishes the public keys of
// one organisation's software, as the real Directory lays it out:
// {base}/{org_id}/{software_id}/application.jwks. A client registering with
// that software's statement must name exactly this jwks_uri.
func KeystoreJWKSURI(base, orgID, softwareID string) string {
	return strings.TrimRight(base, "/") + "/" + url.PathEscape(orgID) + "/" + url.PathEscape(softwareID) + "/application.jwks"
}
