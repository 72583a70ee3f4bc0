package consentflow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/httpx"
)

// The consent step of seed 002: the user approves the consent with the
// account(s) chosen.

// DebtorAccount is the account the user picks at consent (seed 002).
type DebtorAccount struct {
	ISPB        string `json:"ispb" required:"true"`
	Issuer      string `json:"issuer"`
	Number      string `json:"number" required:"true"`
	AccountType string `json:"accountType" required:"true"`
}

// ConsentRequest is the body of …/interactions/{interactionId}/consent.
type ConsentRequest struct {
	PartialApproval *bool          `json:"partialApproval" required:"true"`
	DebtorAccount   *DebtorAccount `json:"debtorAccount" required:"true"`
	// Accounts is Ponte's extension of seed 002's body for data-sharing
	// consents: every account whose data the user shares (an empty list
	// when the consent shares no account data). Absent, the debtorAccount
	// is the one account chosen. Other kinds of consent ignore it.
	Accounts []DebtorAccount `json:"accounts"`
	Device   *Device         `json:"device" required:"true"`
}

// Account field patterns (seed 002).
var (
	ispbPattern   = regexp.MustCompile(`^[0-9]{8}$`)
	issuerPattern = regexp.MustCompile(`^[0-9]{1,4}$`)
	numberPattern = regexp.MustCompile(`^[0-9]{1,20}$`)
)

func oneOf(s string, list []string) bool {
	for _, v := range list {
		if s == v {
			return true
		}
	}
	return false
}

// maxSharedAccounts bounds the accounts of one consent step.
const maxSharedAccounts = 100

// accountFields reports every invalid field of an account under prefix.
func accountFields(a *DebtorAccount, prefix string) []httpx.FieldError {
	var fields []httpx.FieldError
	if !ispbPattern.MatchString(a.ISPB) {
		fields = append(fields, httpx.FieldError{Field: prefix + ".ispb", Message: "must be 8 digits"})
	}
	if a.Issuer != "" && !issuerPattern.MatchString(a.Issuer) {
		fields = append(fields, httpx.FieldError{Field: prefix + ".issuer", Message: "must be 1-4 digits"})
	}
	if !numberPattern.MatchString(a.Number) {
		fields = append(fields, httpx.FieldError{Field: prefix + ".number", Message: "must be 1-20 digits"})
	}
	if !oneOf(a.AccountType, customers.AccountTypes) {
		fields = append(fields, httpx.FieldError{Field: prefix + ".accountType", Message: "must be one of " + strings.Join(customers.AccountTypes, ", ")})
	}
	return fields
}

// Validate reports every invalid field of a consent request.
func (in *ConsentRequest) Validate() []httpx.FieldError {
	var fields []httpx.FieldError
	if a := in.DebtorAccount; a != nil {
		fields = append(fields, accountFields(a, "debtorAccount")...)
	}
	if len(in.Accounts) > maxSharedAccounts {
		fields = append(fields, httpx.FieldError{Field: "accounts", Message: fmt.Sprintf("must list at most %d accounts", maxSharedAccounts)})
	}
	for i := range in.Accounts {
		fields = append(fields, accountFields(&in.Accounts[i], fmt.Sprintf("accounts[%d]", i))...)
	}
	if in.Device != nil {
		fields = append(fields, deviceFields(in.Device, "device")...)
	}
	return fields
}

// Approve records the user's approval with the chosen debtor account: the
// consent becomes AUTHORISED in the same transaction.
func (s *Interactions) Approve(ctx context.Context, actor Actor, clientName, id string, in ConsentRequest) (*Outcome, error) {
	_, p, err := s.access(ctx, s.db.Read(), actor, clientName, id)
	if err != nil {
		return nil, err
	}
	if *in.PartialApproval {
		return nil, ErrPartialApproval
	}
	now := s.clock.Now()
	out := &Outcome{ByDisplayName: !p.NamedBySlug(clientName)}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		it, err := s.open(ctx, tx, id, now)
		if err != nil {
			return err
		}
		if it.Status != InteractionAuthenticated {
			return ErrLoginRequired
		}
		accounts, err := customers.AccountsTx(ctx, tx, it.ApplicationID, it.Document)
		if err != nil {
			return ErrForeignAccount
		}
		// owned finds the chosen account among the user's: it must be
		// there and ACTIVE.
		owned := func(want *DebtorAccount) (*Account, error) {
			var acct *customers.Account
			for _, a := range accounts {
				if a.ISPB == want.ISPB && a.Issuer == customers.NormalizeIssuer(want.Issuer) && a.Number == want.Number && a.AccountType == want.AccountType {
					acct = a
				}
			}
			if acct == nil {
				return nil, ErrForeignAccount
			}
			if acct.Status != customers.StatusActive {
				return nil, ErrAccountBlocked
			}
			return &Account{ISPB: acct.ISPB, Issuer: acct.Issuer, Number: acct.Number, AccountType: acct.AccountType, ID: acct.ID}, nil
		}
		debtor, err := owned(in.DebtorAccount)
		if err != nil {
			return err
		}
		kind, _, err := s.consents.find(ctx, tx, it.ConsentID)
		if errors.Is(err, ErrConsentNotFound) {
			return ErrConsentNotAwaiting
		}
		if err != nil {
			return err
		}
		if multi, ok := kind.(MultiAccountKind); ok {
			chosen := []Account{*debtor}
			if in.Accounts != nil {
				chosen = make([]Account, 0, len(in.Accounts))
				seen := map[string]bool{}
				for i := range in.Accounts {
					a, err := owned(&in.Accounts[i])
					if err != nil {
						return err
					}
					if !seen[a.ID] {
						seen[a.ID] = true
						chosen = append(chosen, *a)
					}
				}
			}
			err = multi.ApproveAccounts(ctx, tx, it.ConsentID, chosen)
		} else {
			err = kind.Approve(ctx, tx, it.ConsentID, *debtor)
		}
		if err != nil {
			return err
		}
		it.Status, it.DebtorAccount, it.UpdatedAt = InteractionApproved, debtor, now
		if err := updateInteraction(ctx, tx, it); err != nil {
			return err
		}
		out.Interaction = it
		if err := insertStep(ctx, tx, it.ID, StepConsent, in.Device, now); err != nil {
			return err
		}
		return s.record(ctx, tx, it, PCMRedirectToClient, PCMAuthorised, it.RedirectURI, in.Device, now)
	})
	if err != nil {
		return nil, err
	}
	out.RedirectURI = s.ResumeURL(out.Interaction)
	return out, nil
}
