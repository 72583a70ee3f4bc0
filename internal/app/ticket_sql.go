package app

import (
	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/oidc"
)

// pageNames lets a WebView redemption on PostgreSQL read, in its own
// statement, the names the page shows: the initiator's registered name
// (the authorization server's clients) and the holder partner's (Ponte's
// applications), where the page read each itself (issue 17 §2: the whole
// request in one round trip).
type pageNames struct{}

// InitiatorNameSQL implements consentflow.PageNames.
func (pageNames) InitiatorNameSQL(clientID string) string { return oidc.ClientNameSQL(clientID) }

// PartnerNameSQL implements consentflow.PageNames.
func (pageNames) PartnerNameSQL(applicationID string) string {
	return auth.EnabledNameSQL(applicationID)
}
