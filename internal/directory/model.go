// Package directory is Ponte's view of the Open Finance Brasil Directory:
// the software statements (SSAs) it signs for participants' software, the
// keystore where organisations publish their public keys, and the
// participants list. It verifies statements against the Directory's keys
// (dynamic client registration at the holder) and, in the sandbox, plays
// the Directory itself so an initiator can be onboarded without the real one.
package directory

import (
	"encoding/json"
	"fmt"
	"slices"
)

// SoftwareStatement is the claims of a software statement assertion (SSA)
// the Directory signs (PS256) for one piece of a participant's software
// (DCR-BR, "Attributes of the Software Statement Assertion"; see
// docs/directory.md). Only the claims Ponte uses or shows are decoded.
type SoftwareStatement struct {
	Issuer   string `json:"iss"`
	IssuedAt int64  `json:"iat"`

	OrgID     string `json:"org_id"`
	OrgName   string `json:"org_name,omitempty"`
	OrgNumber string `json:"org_number,omitempty"` // the organisation's CNPJ
	OrgStatus string `json:"org_status,omitempty"`

	SoftwareID          string  `json:"software_id"`
	SoftwareClientID    string  `json:"software_client_id,omitempty"`
	SoftwareClientName  string  `json:"software_client_name,omitempty"`
	SoftwareMode        string  `json:"software_mode,omitempty"`
	SoftwareEnvironment string  `json:"software_environment,omitempty"`
	SoftwareVersion     Version `json:"software_version,omitempty"`
	SoftwareStatus      string  `json:"software_status,omitempty"`

	SoftwareJWKSURI          string   `json:"software_jwks_uri"`
	SoftwareRedirectURIs     []string `json:"software_redirect_uris"`
	SoftwareAPIWebhookURIs   []string `json:"software_api_webhook_uris,omitempty"`
	SoftwareOriginURIs       []string `json:"software_origin_uris,omitempty"`
	SoftwareClientURI        string   `json:"software_client_uri,omitempty"`
	SoftwareLogoURI          string   `json:"software_logo_uri,omitempty"`
	SoftwarePolicyURI        string   `json:"software_policy_uri,omitempty"`
	SoftwareTOSURI           string   `json:"software_tos_uri,omitempty"`
	SoftwareJWKSTransportURI string   `json:"software_jwks_transport_uri,omitempty"`
	OrgJWKSURI               string   `json:"org_jwks_uri,omitempty"`

	// SoftwareRoles are the roles the software holds (DADOS, PAGTO, CONTA,
	// CCORR); SoftwareStatementRoles the same with their status, of which
	// only the Active ones count.
	SoftwareRoles          []string `json:"software_roles,omitempty"`
	SoftwareStatementRoles []Role   `json:"software_statement_roles,omitempty"`
}

// Role is one entry of software_statement_roles.
type Role struct {
	Role                string `json:"role"`
	AuthorisationDomain string `json:"authorisation_domain,omitempty"`
	Status              string `json:"status"`
}

// Regulatory roles of the Open Finance Brasil Directory (DCR-BR).
const (
	RoleData     = "DADOS" // data receiver / transmitter
	RolePayments = "PAGTO" // payment initiator (ITP)
	RoleAccount  = "CONTA" // account holder
	RoleCredit   = "CCORR" // credit correspondent
)

// RoleActive is the status of a role that counts.
const RoleActive = "Active"

// Version is software_version, which the Directory writes as a JSON number
// (1.10 in DCR-BR's example statement) and other issuers as a string; it
// keeps the literal text either way, so 1.10 stays "1.10".
type Version string

// UnmarshalJSON accepts a JSON string or number.
func (v *Version) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = Version(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("software_version: a string or a number: %w", err)
	}
	*v = Version(n.String())
	return nil
}

// ActiveRoles are the roles the statement grants: the Active entries of
// software_statement_roles, or, for a statement without that claim,
// software_roles. Each role appears once, in the statement's order.
func (s *SoftwareStatement) ActiveRoles() []string {
	var roles []string
	if len(s.SoftwareStatementRoles) > 0 {
		for _, r := range s.SoftwareStatementRoles {
			if r.Status == RoleActive && !slices.Contains(roles, r.Role) {
				roles = append(roles, r.Role)
			}
		}
		return roles
	}
	for _, r := range s.SoftwareRoles {
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles
}

// Scopes Ponte's authorization server grants by role (DCR-BR "Regulatory
// Roles to dynamic OAuth 2.0 scope Mappings", limited to the APIs Ponte
// serves; the later recurring-payments scope goes with PAGTO). "openid"
// goes with every role.
var roleScopes = map[string][]string{
	RolePayments: {"payments", "recurring-payments"},
	RoleData:     {"consents", "accounts", "resources"},
	RoleAccount:  nil,
	RoleCredit:   nil,
}

// ScopesForRoles returns the scopes a client holding roles may be granted:
// "openid" plus each known role's scopes, sorted and without repeats.
// Unknown roles add nothing; no roles at all gives no scopes.
func ScopesForRoles(roles []string) []string {
	var scopes []string
	for _, r := range roles {
		extra, ok := roleScopes[r]
		if !ok {
			continue
		}
		scopes = append(scopes, "openid")
		scopes = append(scopes, extra...)
	}
	slices.Sort(scopes)
	return slices.Compact(scopes)
}
