package oidc

import "github.com/luikyv/go-oidc/pkg/goidc"

// Ponte's own attributes of an Open Finance client, kept in go-oidc's
// ClientMeta.CustomAttributes so they are stored with the client.
const (
	// AttrOrganisationID is the client's Open Finance organisation id (the
	// software statement's org_id; the operator's for a hand-registered
	// initiator).
	AttrOrganisationID = "org_id"
	// AttrSoftwareID is the software statement's software_id.
	AttrSoftwareID = "software_id"
	// AttrWebhookURIs are the base URLs the holder notifies the client at
	// (Open Finance webhooks: POST {uri}/open-banking/webhook/v1/...).
	AttrWebhookURIs = "webhook_uris"
)

// OrganisationID is c's organisation id ("" when none is recorded).
func OrganisationID(c *goidc.Client) string { return stringAttr(c, AttrOrganisationID) }

// SoftwareID is c's software_id ("" for a hand-registered initiator).
func SoftwareID(c *goidc.Client) string { return stringAttr(c, AttrSoftwareID) }

// WebhookURIs are the base URLs c registered for Open Finance webhooks.
func WebhookURIs(c *goidc.Client) []string {
	switch v := c.CustomAttribute(AttrWebhookURIs).(type) {
	case []string:
		return v
	case []any: // as decoded from the stored JSON
		out := make([]string, 0, len(v))
		for _, u := range v {
			if s, ok := u.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func stringAttr(c *goidc.Client, key string) string {
	s, _ := c.CustomAttribute(key).(string)
	return s
}
