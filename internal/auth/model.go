// Package auth manages partner applications, issues OAuth 2.0 client-credentials
// access tokens (JWTs signed with Ponte's key) and verifies them on every route.
package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
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
)

// Application is a partner's registered client.
type Application struct {
	ID           string   `json:"id"`
	ClientID     string   `json:"client_id"`
	Name         string   `json:"name"`
	Slug         string   `json:"slug"` // names it in seed 002's interaction path (see Slug); unique, kept when Name changes
	CompanyKey   string   `json:"companyKey"`
	Scopes       []string `json:"scopes"`
	RedirectURLs []string `json:"redirect_urls"`
	DeepLinkURL  string   `json:"deep_link_url,omitempty"`
	Disabled     bool     `json:"disabled"`
	SandboxDemo  bool     `json:"sandbox_demo,omitempty"`
	// JWKS is the application's public JSON Web Key Set (compact JSON), or
	// nil when none is registered. Ponte verifies the JWTs the application
	// signs against it: Payments API request bodies, end-user login tokens.
	// Every key is public, has a kid, and is RSA ≥ 2048 bits or EC P-256.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// AcceptPlainJSON lets the application send plain JSON bodies
	// (application/json) where the Payments API requires signed JWTs. Off by
	// default; on for the sandbox demo application.
	AcceptPlainJSON bool `json:"accept_plain_json"`
	// OrganisationID is the Open Finance Directory organisation the
	// application belongs to (a UUID): from its software statement when it
	// registered dynamically (POST /register), set by the operator for a
	// hand-registered initiator; "" for a partner application that is not
	// an Open Finance client. Its signed messages carry it as iss, and
	// Ponte's signed responses to it as aud.
	OrganisationID string    `json:"organisation_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// KeyCount is the number of keys in the application's JWKS (0 without one).
func (a *Application) KeyCount() int {
	if len(a.JWKS) == 0 {
		return 0
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(a.JWKS, &set) != nil {
		return 0
	}
	return len(set.Keys)
}

// ErrInvalidJWKS wraps every reason a JSON Web Key Set is refused.
var ErrInvalidJWKS = fmt.Errorf("%w: JWKS", ErrInvalid)

// minRSABits is the smallest RSA modulus accepted in an application's JWKS.
const minRSABits = 2048

// maxJWKS bounds the size of a registered key set.
const maxJWKS = 64 << 10

// ParseJWKS checks that raw is a public JSON Web Key Set fit for verifying an
// application's signatures — valid JSON, at least one key, every key public,
// with a unique kid, RSA of at least 2048 bits or EC on P-256, use "sig" if
// set — and returns it with its compact JSON. A private key is refused, so
// a partner never hands Ponte a secret by mistake.
func ParseJWKS(raw []byte) (*jose.JSONWebKeySet, json.RawMessage, error) {
	if len(raw) > maxJWKS {
		return nil, nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidJWKS, maxJWKS)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, nil, fmt.Errorf("%w: not JSON: %v", ErrInvalidJWKS, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(compact.Bytes(), &set); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidJWKS, err)
	}
	if len(set.Keys) == 0 {
		return nil, nil, fmt.Errorf("%w: no keys", ErrInvalidJWKS)
	}
	seen := map[string]bool{}
	for i, k := range set.Keys {
		name := fmt.Sprintf("key %d", i)
		if k.KeyID != "" {
			name = fmt.Sprintf("key %q", k.KeyID)
		}
		switch {
		case k.KeyID == "":
			return nil, nil, fmt.Errorf("%w: %s has no kid", ErrInvalidJWKS, name)
		case seen[k.KeyID]:
			return nil, nil, fmt.Errorf("%w: kid %q appears twice", ErrInvalidJWKS, k.KeyID)
		case !k.IsPublic():
			return nil, nil, fmt.Errorf("%w: %s is a private or symmetric key: register only public keys", ErrInvalidJWKS, name)
		case k.Use != "" && k.Use != "sig":
			return nil, nil, fmt.Errorf("%w: %s has use %q, want \"sig\"", ErrInvalidJWKS, name, k.Use)
		}
		seen[k.KeyID] = true
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits {
				return nil, nil, fmt.Errorf("%w: %s is RSA-%d, want at least %d bits", ErrInvalidJWKS, name, pub.N.BitLen(), minRSABits)
			}
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P256() {
				return nil, nil, fmt.Errorf("%w: %s is EC on %s, want P-256", ErrInvalidJWKS, name, pub.Curve.Params().Name)
			}
		default:
			return nil, nil, fmt.Errorf("%w: %s has type %T, want RSA or EC P-256", ErrInvalidJWKS, name, k.Key)
		}
	}
	return &set, json.RawMessage(compact.Bytes()), nil
}

// Scopes Ponte grants today, with what each allows.
var KnownScopes = map[string]string{
	"openfinance.ticket.write":       "create consent-flow tickets (seed 000)",
	"openfinance.ticket.read":        "read the consent-flow tickets the application created",
	"openfinance.interactions.write": "drive its customers' consent interactions (login, consent, cancel; seed 002) from native screens",
	"card.pci.token.create":          "generate Apple Pay / Google Pay wallet payloads for the application's cards (seed 001)",
	"card.pci.wallet.read":           "list the wallet tokens of the application's cards",
	"card.admin.read":                "read the application's cards in the vault (never card numbers)",
	"card.admin.write":               "register cards in the vault and change their status",
	"webhooks.write":                 "create, delete and rotate the secret of webhook subscriptions; retry deliveries",
	"webhooks.read":                  "list the application's webhook subscriptions (never secrets) and delivery log",
	"payments":                       "create and read Payments API v4 payment consents (Open Finance Brasil, holder side)",
	"recurring-payments":             "create, read and revoke Automatic Payments v2 recurring consents for sweeping (Open Finance Brasil, holder side)",
	"consents":                       "create, read, revoke and extend Consents API v3 data-sharing consents (Open Finance Brasil, holder side)",
	"app":                            "create and read Open Keys journey sessions (seed 003)",
	"payments.admin":                 "initiate payments at account holders through Ponte: Brick payment-initiation consents and callback (seed 002); report the outcome of the Pix settlements Ponte asks of it as holder",
	"pcm.report":                     "report journey steps of its consents for the PCM (seed 002) and read its conversion funnel",
	"accounts.admin.write":           "import account data (balances, overdraft limits, transactions) for its customers' accounts",
}

// Errors returned by the application service.
var (
	ErrNotFound = errors.New("application not found")
	ErrInvalid  = errors.New("invalid application")
)

// NewApplication is what an operator provides to register a partner.
type NewApplication struct {
	Name         string
	CompanyKey   string
	Scopes       []string
	RedirectURLs []string
	DeepLinkURL  string
	// JWKS is the application's public JSON Web Key Set; optional (see ParseJWKS).
	JWKS json.RawMessage
	// AcceptPlainJSON allows plain JSON bodies where signed JWTs are required.
	AcceptPlainJSON bool
	// OrganisationID is the application's Open Finance organisation id
	// (a UUID); optional.
	OrganisationID string
}

var companyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,36}$`)

// Validate checks every field and reports all problems at once.
func (n *NewApplication) Validate() error {
	var problems []string
	if strings.TrimSpace(n.Name) == "" || len(n.Name) > 200 {
		problems = append(problems, "name is required (at most 200 characters)")
	}
	if !companyKeyPattern.MatchString(n.CompanyKey) {
		problems = append(problems, "companyKey must be 1–36 characters of letters, digits, '.', '_' or '-'")
	}
	if len(n.Scopes) == 0 {
		problems = append(problems, "at least one scope is required")
	}
	for _, s := range n.Scopes {
		if _, ok := KnownScopes[s]; !ok {
			problems = append(problems, fmt.Sprintf("unknown scope %q", s))
		}
	}
	for _, u := range n.RedirectURLs {
		if err := checkAbsoluteURL(u); err != nil {
			problems = append(problems, fmt.Sprintf("redirect URL %q: %v", u, err))
		}
	}
	if n.DeepLinkURL != "" {
		if err := checkAbsoluteURL(n.DeepLinkURL); err != nil {
			problems = append(problems, fmt.Sprintf("deep-link URL %q: %v", n.DeepLinkURL, err))
		}
	}
	if n.OrganisationID != "" && uuid.Validate(n.OrganisationID) != nil {
		problems = append(problems, fmt.Sprintf("organisation id %q must be a UUID", n.OrganisationID))
	}
	if len(n.JWKS) > 0 {
		if _, _, err := ParseJWKS(n.JWKS); err != nil {
			problems = append(problems, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// checkAbsoluteURL accepts absolute URLs without userinfo or fragment. Custom
// schemes are allowed: partner apps register app links such as myapp://consent.
func checkAbsoluteURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme == "":
		return errors.New("must be absolute")
	case u.User != nil:
		return errors.New("must not contain userinfo")
	case u.Fragment != "":
		return errors.New("must not contain a fragment")
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
		return errors.New("must have a host")
	}
	return nil
}

func normalizeScopes(scopes []string) []string {
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out)
}
