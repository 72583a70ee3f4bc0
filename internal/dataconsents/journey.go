package dataconsents

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/consentflow"
	"github.com/ponte-ofb/ponte/internal/customers"
)

// JourneyKind puts data-sharing consents in the holder's consent journey
// (authorize → ticket → WebView → approve or cancel), as Kind "data": it
// implements consentflow.ConsentKind and consentflow.MultiAccountKind. Find knows
// only ids with IDPrefix.
type JourneyKind struct{ Service *Service }

var _ consentflow.MultiAccountKind = JourneyKind{}

// Find implements consentflow.ConsentKind.
func (k JourneyKind) Find(ctx context.Context, q consentflow.Querier, id string) (*consentflow.ConsentView, error) {
	if !strings.HasPrefix(id, IDPrefix) {
		return nil, consentflow.ErrConsentNotFound
	}
	c, err := getConsent(ctx, q, id)
	if errors.Is(err, ErrNotFound) {
		return nil, consentflow.ErrConsentNotFound
	}
	if err != nil {
		return nil, err
	}
	awaiting := c.Status == StatusAwaitingAuthorisation
	v := &consentflow.ConsentView{ID: c.ID, Kind: "data", ApplicationID: c.ApplicationID, Document: c.Document,
		Awaiting: awaiting, ExpiresAt: c.DueAt, Data: View(c)}
	if !awaiting {
		v.ExpiresAt = c.StatusUpdatedAt
	}
	return v, nil
}

// View describes c for the WebView and "Meus compartilhamentos": its
// groups by category, in Portuguese, and its sharing period.
func View(c *Consent) *consentflow.DataView {
	v := &consentflow.DataView{Period: "Prazo indeterminado", NeedsAccounts: NeedsAccounts(c.Permissions)}
	if !c.ExpiresAt.IsZero() {
		v.Period = "Até " + brDateTime(c.ExpiresAt)
	}
	for _, g := range GroupsOf(c.Permissions) {
		if n := len(v.Categories); n == 0 || v.Categories[n-1].Name != g.Category {
			v.Categories = append(v.Categories, consentflow.DataCategory{Name: g.Category})
		}
		cat := &v.Categories[len(v.Categories)-1]
		cat.Groups = append(cat.Groups, consentflow.DataGroup{Name: g.Name, Description: g.Description})
	}
	return v
}

// Approve implements consentflow.ConsentKind: one account (the journey calls
// ApproveAccounts for this kind; Approve serves callers that pass one).
func (k JourneyKind) Approve(ctx context.Context, tx *sql.Tx, id string, a consentflow.Account) error {
	return k.ApproveAccounts(ctx, tx, id, []consentflow.Account{a})
}

// ApproveAccounts implements consentflow.MultiAccountKind: the consent becomes
// AUTHORISED with the chosen accounts' ids. A consent that shares account
// data needs at least one; one that does not takes none (accounts sent
// anyway are ignored).
func (k JourneyKind) ApproveAccounts(ctx context.Context, tx *sql.Tx, id string, accounts []consentflow.Account) error {
	c, err := k.Service.ConsentTx(ctx, tx, id)
	if errors.Is(err, ErrNotFound) {
		return consentflow.ErrConsentNotAwaiting
	}
	if err != nil {
		return err
	}
	var ids []string
	if NeedsAccounts(c.Permissions) {
		for _, a := range accounts {
			if a.ID == "" {
				return consentflow.ErrAccountNotAllowed
			}
			ids = append(ids, a.ID)
		}
	}
	holderApp, err := holderOf(ctx, tx, c, accounts)
	if err != nil {
		return err
	}
	switch _, err := k.Service.AuthoriseTx(ctx, tx, id, holderApp, ids); {
	case errors.Is(err, ErrAccounts):
		return consentflow.ErrAccountNotAllowed
	case errors.Is(err, ErrExpired):
		return consentflow.ErrInteractionExpired
	case errors.Is(err, ErrInvalidTransition), errors.Is(err, ErrNotFound):
		return consentflow.ErrConsentNotAwaiting
	default:
		return err
	}
}

// holderOf finds the holder partner whose customer approves: the owner of
// the accounts chosen, or else the only partner serving the logged user
// (with several, the consent's creator if it is one of them).
func holderOf(ctx context.Context, tx *sql.Tx, c *Consent, accounts []consentflow.Account) (string, error) {
	for _, a := range accounts {
		appID, owner, ok, err := customers.AccountHolder(ctx, tx, a.ISPB, a.Issuer, a.Number)
		if err != nil {
			return "", err
		}
		if ok && owner == c.Document {
			return appID, nil
		}
	}
	apps, err := customers.HolderApplications(ctx, tx, c.Document)
	if err != nil {
		return "", err
	}
	for _, id := range apps {
		if id == c.ApplicationID {
			return id, nil
		}
	}
	if len(apps) > 0 {
		return apps[0], nil
	}
	return "", consentflow.ErrNoHolder
}

// Reject implements consentflow.ConsentKind: the user's refusal,
// CUSTOMER_MANUALLY_REJECTED; a consent no longer awaiting is left as it is.
func (k JourneyKind) Reject(ctx context.Context, tx *sql.Tx, id string) error {
	switch _, err := k.Service.RejectTx(ctx, tx, id); {
	case err == nil, errors.Is(err, ErrInvalidTransition), errors.Is(err, ErrNotFound), errors.Is(err, ErrAlreadyRejected):
		return nil
	default:
		return err
	}
}

var brasilia = time.FixedZone("BRT", -3*60*60)

// brDateTime renders an instant in Brasília time: "15/10/2024 às 15:55".
func brDateTime(t time.Time) string { return t.In(brasilia).Format("02/01/2006 às 15:04") }
