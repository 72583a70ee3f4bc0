// Package auth manages partner applications, issues OAuth 2.0 client-credentials
// access tokens (JWTs signed with Ponte's key) and verifies them on every route.
package auth

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Application is a partner's registered client.
type Application struct {
	ID           string    `json:"id"`
	ClientID     string    `json:"client_id"`
	Name         string    `json:"name"`
	CompanyKey   string    `json:"companyKey"`
	Scopes       []string  `json:"scopes"`
	RedirectURLs []string  `json:"redirect_urls"`
	DeepLinkURL  string    `json:"deep_link_url,omitempty"`
	Disabled     bool      `json:"disabled"`
	SandboxDemo  bool      `json:"sandbox_demo,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Scopes Ponte grants today, with what each allows.
var KnownScopes = map[string]string{
	"openfinance.ticket.write": "create consent-flow tickets (seed 000)",
	"openfinance.ticket.read":  "read the consent-flow tickets the application created",
	"card.pci.token.create":    "generate Apple Pay / Google Pay wallet payloads for the application's cards (seed 001)",
	"card.pci.wallet.read":     "list the wallet tokens of the application's cards",
	"card.admin.read":          "read the application's cards in the vault (never card numbers)",
	"card.admin.write":         "register cards in the vault and change their status",
	"webhooks.write":           "create, delete and rotate the secret of webhook subscriptions; retry deliveries",
	"webhooks.read":            "list the application's webhook subscriptions (never secrets) and delivery log",
	"payments":                 "create and read Payments API v4 payment consents (Open Finance Brasil, holder side)",
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
