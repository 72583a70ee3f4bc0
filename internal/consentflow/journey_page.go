package consentflow

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/ofb"
)

// journeyPage is the WebView of an interaction: the consent to review, the
// login, the debtor account choice, approve and cancel.
type journeyPage struct {
	InteractionID string
	// PartnerName is the holder partner application's name: the brand the
	// user sees.
	PartnerName string
	// PartnerSlug is its {client_name} in the interaction API's path.
	PartnerSlug    string
	CompanyKey     string
	Initiator      string
	MaskedDocument string
	CreditorName   string
	CreditorDoc    string
	Amount         string
	When           string
	Method         string
	Status         string
	// Kind is the consent's kind ("payment"), choosing what the page shows.
	Kind string
	// Sweeping is a sweeping consent's creditors, limits and validity.
	Sweeping *SweepingView
	// Data is a data-sharing consent's permissions, period and account choice.
	Data      *DataView
	Finished  bool
	Approved  bool
	ResumeURL string
	// Platform is the device platform the page reports: APP inside the
	// partner's app (it has a deep link), BROWSER when Ponte opened the
	// WebView in the user's browser.
	Platform     string
	SandboxLogin bool
	Handoff      bool
	// Accounts are shown when the user already logged in (a reload).
	Accounts       []accountOption
	SessionExpires string
}

func (h *Handler) renderJourney(w http.ResponseWriter, r *http.Request, t *Ticket, sess *Session, initiator string) {
	ctx := r.Context()
	it, err := sess.Interaction, error(nil)
	if it == nil || it.ID != sess.InteractionID {
		it, err = h.Interactions.Get(ctx, sess.InteractionID)
	}
	if err != nil {
		h.Logger.ErrorContext(ctx, "webview: read interaction", "err", err)
		h.page(w, r, http.StatusInternalServerError, "ticket_error", errorPage{"Falha temporária", "Não foi possível abrir a autorização agora. Tente novamente em instantes."})
		return
	}
	p, err := h.Interactions.partners.Partner(ctx, it.ApplicationID)
	if err != nil {
		h.Logger.ErrorContext(ctx, "webview: read partner", "err", err)
		h.page(w, r, http.StatusInternalServerError, "ticket_error", errorPage{"Falha temporária", "Não foi possível abrir a autorização agora. Tente novamente em instantes."})
		return
	}
	c, err := h.Interactions.Consent(ctx, it)
	if err != nil {
		h.Logger.ErrorContext(ctx, "webview: read consent", "err", err)
		h.page(w, r, http.StatusInternalServerError, "ticket_error", errorPage{"Falha temporária", "Não foi possível abrir a autorização agora. Tente novamente em instantes."})
		return
	}
	data := journeyPage{
		InteractionID: it.ID, PartnerName: p.Name, PartnerSlug: p.Slug, CompanyKey: p.CompanyKey, Initiator: initiator,
		MaskedDocument: ofb.MaskDocument(it.Document), Status: it.Status, Finished: it.Finished(),
		Approved: it.Status == InteractionApproved, Handoff: it.Handoff, Platform: "APP",
		SessionExpires: sess.ExpiresAt.In(brasilia).Format("15:04"),
	}
	if p.DeepLinkURL == "" {
		data.Platform = "BROWSER" // no app: Ponte opened the WebView in the browser
	}
	if it.Finished() {
		data.ResumeURL = h.Interactions.ResumeURL(it)
	}
	if it.Status == InteractionAuthenticated {
		accounts, err := customers.AccountsTx(ctx, h.Interactions.db.Read(), it.ApplicationID, it.Document)
		if err != nil {
			h.Logger.ErrorContext(ctx, "webview: read accounts", "err", err)
		}
		for _, a := range accounts {
			b, _ := json.Marshal(DebtorAccount{ISPB: a.ISPB, Issuer: a.Issuer, Number: a.Number, AccountType: a.AccountType})
			data.Accounts = append(data.Accounts, accountOption{JSON: string(b), Active: a.Status == customers.StatusActive,
				Label: customers.AccountLabel(a.AccountType, a.Issuer, a.Number)})
		}
	}
	if h.SandboxLogin != nil {
		data.SandboxLogin = h.SandboxLogin(it.ApplicationID)
	}
	data.Kind = c.Kind
	if pv := c.Payment; pv != nil {
		data.CreditorName, data.CreditorDoc, data.Amount, data.When, data.Method = pv.CreditorName, pv.CreditorDoc, pv.Amount, pv.When, pv.Method
	}
	data.Sweeping = c.Sweeping
	data.Data = c.Data
	h.page(w, r, http.StatusOK, "journey", data)
}

type accountOption struct {
	JSON   string
	Label  string
	Active bool
}

// FormatBRL renders an amount "1234.50" as Brazilians read it: "R$ 1.234,50".
func FormatBRL(amount string) string {
	whole, cents, ok := strings.Cut(amount, ".")
	if !ok {
		cents = "00"
	}
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(d)
	}
	return "R$ " + b.String() + "," + cents
}
