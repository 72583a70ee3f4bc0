package directory

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/validation"
)

// SandboxIssuer is the iss of the statements the sandbox Directory signs:
// not the real Directory's, so a statement of one is never taken for the
// other's.
const SandboxIssuer = "Ponte sandbox Directory SSA issuer"

// Paths of the sandbox Directory, under Ponte's public URL.
const (
	PathPrefix       = "/sandbox/directory"
	PathJWKS         = PathPrefix + "/openbanking.jwks"
	PathKeystore     = PathPrefix + "/keystore"
	PathParticipants = PathPrefix + "/participants"
	PathIssue        = "/admin/v1/directory/software-statements"
)

// Software is one piece of a participant's software the sandbox Directory
// knows: what its statements say and the public keys it published.
type Software struct {
	OrgID        string
	OrgName      string
	OrgNumber    string // the organisation's CNPJ, "" when not given
	SoftwareID   string
	ClientName   string
	Roles        []string
	RedirectURIs []string
	WebhookURIs  []string
	JWKS         jose.JSONWebKeySet // public keys only
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// IssueRequest asks the sandbox Directory for a statement. SoftwareID empty
// makes a new software; an existing OrgID and SoftwareID is replaced by what
// the request says. OrgName and ClientName default to names made from the ids.
type IssueRequest struct {
	OrgID        string
	OrgName      string
	OrgNumber    string
	SoftwareID   string
	ClientName   string
	Roles        []string
	RedirectURIs []string
	WebhookURIs  []string
	JWKS         json.RawMessage // the software's public JWKS
}

// Sandbox is the Directory the sandbox ships: it signs software statements
// with its own PS256 key, keeps the software it signed for with the keys
// each published (its keystore) and lists the participants.
type Sandbox struct {
	db    *store.DB
	clock clock.Clock
	key   *rsa.PrivateKey
	kid   string
	// keystore is the base URL of the keystore the statements point at.
	keystore string
	signer   jose.Signer
}

// NewSandbox returns the sandbox Directory signing with key (key id kid),
// whose statements name software_jwks_uri under keystore (a base URL,
// normally Ponte's public URL + PathKeystore).
func NewSandbox(db *store.DB, clk clock.Clock, key *rsa.PrivateKey, kid, keystore string) (*Sandbox, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return nil, fmt.Errorf("directory: sandbox signer: %w", err)
	}
	return &Sandbox{db: db, clock: clk, key: key, kid: kid, keystore: strings.TrimRight(keystore, "/"), signer: signer}, nil
}

// Issuer is the iss of the sandbox's statements.
func (s *Sandbox) Issuer() string { return SandboxIssuer }

// Keystore is the base URL of the sandbox's keystore.
func (s *Sandbox) Keystore() string { return s.keystore }

// PublicKeys is the sandbox Directory's signing key set (its openbanking.jwks).
func (s *Sandbox) PublicKeys() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: string(jose.PS256), Use: "sig",
	}}}
}

// Keys is the sandbox's signing keys as a KeySource, read in process.
func (s *Sandbox) Keys() KeySource { return StaticKeys(s.PublicKeys()) }

// ErrNotFound is a software the sandbox Directory does not know.
var ErrNotFound = errors.New("directory: no such software")

// webhookURIRE is the webhook_uris pattern of DCR-SW, with http allowed for
// a sandbox without TLS: a base URL without query, fragment or trailing slash.
var webhookURIRE = regexp.MustCompile(`^https?://[^\s/?#]+(?:/[^\s/?#]+)*$`)

// cnpjRE is an organisation number: a CNPJ's 14 digits.
var cnpjRE = regexp.MustCompile(`^\d{14}$`)

const maxURIs, maxKeys = 20, 20

// validate checks req, filling the defaults, and returns the software it
// describes; a bad request is a *validation.Error naming every field.
func (req IssueRequest) validate() (*Software, error) {
	var fields []validation.FieldError
	bad := func(field, msg string) { fields = append(fields, validation.FieldError{Field: field, Message: msg}) }
	sw := &Software{OrgID: req.OrgID, OrgName: strings.TrimSpace(req.OrgName), OrgNumber: req.OrgNumber,
		SoftwareID: req.SoftwareID, ClientName: strings.TrimSpace(req.ClientName)}
	if uuid.Validate(req.OrgID) != nil || len(req.OrgID) != 36 {
		bad("org_id", "must be the organisation's id, a UUID")
	}
	if sw.SoftwareID == "" {
		sw.SoftwareID = uuid.NewString()
	} else if uuid.Validate(sw.SoftwareID) != nil || len(sw.SoftwareID) != 36 {
		bad("software_id", "must be a UUID (or absent, for a new software)")
	}
	if req.OrgNumber != "" && !cnpjRE.MatchString(req.OrgNumber) {
		bad("org_number", "must be the organisation's CNPJ, 14 digits")
	}
	if len(sw.OrgName) > 200 {
		bad("org_name", "must be at most 200 characters")
	}
	if len(sw.ClientName) > 200 {
		bad("client_name", "must be at most 200 characters")
	}
	if len(req.Roles) == 0 {
		bad("roles", "must name at least one role ("+strings.Join(knownRoles, ", ")+")")
	}
	for _, r := range req.Roles {
		r = strings.ToUpper(strings.TrimSpace(r))
		if !slices.Contains(knownRoles, r) {
			bad("roles", fmt.Sprintf("%q is not a role of the Directory (%s)", r, strings.Join(knownRoles, ", ")))
			continue
		}
		if !slices.Contains(sw.Roles, r) {
			sw.Roles = append(sw.Roles, r)
		}
	}
	if len(req.RedirectURIs) == 0 {
		bad("redirect_uris", "must hold at least one redirect URL")
	}
	if len(req.RedirectURIs) > maxURIs {
		bad("redirect_uris", fmt.Sprintf("must hold at most %d URLs", maxURIs))
	}
	for _, u := range req.RedirectURIs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.Fragment != "" || strings.ContainsAny(u, " \t\r\n") {
			bad("redirect_uris", fmt.Sprintf("%q is not an absolute http(s) URL without fragment", u))
		}
	}
	if len(req.WebhookURIs) > maxURIs {
		bad("webhook_uris", fmt.Sprintf("must hold at most %d URLs", maxURIs))
	}
	for _, u := range req.WebhookURIs {
		if !webhookURIRE.MatchString(u) {
			bad("webhook_uris", fmt.Sprintf("%q is not a base URL (http(s), no query, no fragment, no trailing slash)", u))
		}
	}
	sw.RedirectURIs, sw.WebhookURIs = dedupe(req.RedirectURIs), dedupe(req.WebhookURIs)
	if len(req.JWKS) == 0 {
		bad("jwks", "is required: the software's public JWKS")
	} else if err := json.Unmarshal(req.JWKS, &sw.JWKS); err != nil {
		bad("jwks", "is not a JSON Web Key Set: "+err.Error())
	} else {
		switch {
		case len(sw.JWKS.Keys) == 0:
			bad("jwks", "holds no key")
		case len(sw.JWKS.Keys) > maxKeys:
			bad("jwks", fmt.Sprintf("holds more than %d keys", maxKeys))
		}
		kids := map[string]bool{}
		for _, k := range sw.JWKS.Keys {
			switch {
			case !k.IsPublic():
				bad("jwks", fmt.Sprintf("key %q is a private key: publish only public keys", k.KeyID))
			case k.KeyID == "":
				bad("jwks", "every key needs a kid")
			case kids[k.KeyID]:
				bad("jwks", fmt.Sprintf("kid %q appears twice", k.KeyID))
			}
			kids[k.KeyID] = true
		}
	}
	if len(fields) > 0 {
		return nil, &validation.Error{What: "software statement request", Fields: fields}
	}
	if sw.OrgName == "" {
		sw.OrgName = "Organisation " + sw.OrgID[:8]
	}
	if sw.ClientName == "" {
		sw.ClientName = "Software " + sw.SoftwareID[:8]
	}
	return sw, nil
}

var knownRoles = []string{RoleData, RolePayments, RoleAccount, RoleCredit}

func dedupe(list []string) []string {
	out := []string{}
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Issue records the software req describes (replacing an earlier record of
// the same organisation and software, whose creation time it keeps) and
// returns it with a statement signed now. A bad request is a
// *validation.Error and changes nothing.
func (s *Sandbox) Issue(ctx context.Context, req IssueRequest) (*Software, string, error) {
	sw, err := req.validate()
	if err != nil {
		return nil, "", err
	}
	now := s.clock.Now().Truncate(time.Millisecond)
	sw.CreatedAt, sw.UpdatedAt = now, now
	if err := s.save(ctx, sw); err != nil {
		return nil, "", err
	}
	saved, err := s.Software(ctx, sw.OrgID, sw.SoftwareID)
	if err != nil {
		return nil, "", err
	}
	ssa, err := s.Sign(saved)
	if err != nil {
		return nil, "", err
	}
	return saved, ssa, nil
}

// Statement is the claims the sandbox signs for sw, issued now.
func (s *Sandbox) Statement(sw *Software) SoftwareStatement {
	st := SoftwareStatement{
		Issuer: SandboxIssuer, IssuedAt: s.clock.Now().Unix(),
		OrgID: sw.OrgID, OrgName: sw.OrgName, OrgNumber: sw.OrgNumber, OrgStatus: RoleActive,
		SoftwareID: sw.SoftwareID, SoftwareClientID: sw.SoftwareID, SoftwareClientName: sw.ClientName,
		SoftwareMode: "Test", SoftwareEnvironment: "sandbox", SoftwareVersion: "1", SoftwareStatus: RoleActive,
		SoftwareJWKSURI:        KeystoreJWKSURI(s.keystore, sw.OrgID, sw.SoftwareID),
		SoftwareRedirectURIs:   sw.RedirectURIs,
		SoftwareAPIWebhookURIs: sw.WebhookURIs,
		SoftwareRoles:          sw.Roles,
	}
	for _, r := range sw.Roles {
		st.SoftwareStatementRoles = append(st.SoftwareStatementRoles, Role{Role: r, AuthorisationDomain: "Open Banking", Status: RoleActive})
	}
	return st
}

// Sign returns a statement for sw signed now by the sandbox Directory.
func (s *Sandbox) Sign(sw *Software) (string, error) {
	payload, err := json.Marshal(s.Statement(sw))
	if err != nil {
		return "", fmt.Errorf("directory: encode statement: %w", err)
	}
	obj, err := s.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("directory: sign statement: %w", err)
	}
	return obj.CompactSerialize()
}

// ApplicationJWKS is the public JWKS the software published, as its
// keystore URL serves it.
func (s *Sandbox) ApplicationJWKS(ctx context.Context, orgID, softwareID string) (jose.JSONWebKeySet, error) {
	sw, err := s.Software(ctx, orgID, softwareID)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return sw.JWKS, nil
}
