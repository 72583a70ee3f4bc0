package consentflow

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/luikyv/go-oidc/pkg/goidc"

	"github.com/ponte-ofb/ponte/internal/ofb"
	"github.com/ponte-ofb/ponte/internal/oidc"
)

// Authorize is the authorization server's step for the holder
// (oidc.Config.Journey): it opens the request's interaction and sends the
// user where they decide — the partner's app by deep link, the desktop
// hand-off page (QR code), or the WebView in this browser when the partner
// has no app — until the interaction is approved or cancelled.
func (h *Handler) Authorize(w http.ResponseWriter, r *http.Request, as *goidc.AuthnSession) (goidc.AuthnStatus, error) {
	ctx := r.Context()
	it, err := h.Interactions.ByCallback(ctx, as.CallbackID)
	var partner *Partner
	if errors.Is(err, ErrInteractionNotFound) {
		it, partner, err = h.Interactions.Begin(ctx, BeginRequest{
			CallbackID: as.CallbackID, RequestURI: as.PushedAuthReqID, ClientID: as.ClientID,
			ConsentID: oidc.ConsentID(as), Desktop: desktop(r.UserAgent()),
			RedirectURI: as.RedirectURI, Device: ofb.DeviceFromUserAgent(r.UserAgent()),
		})
		switch {
		case errors.Is(err, ErrConsentNotAwaiting):
			return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the payment consent is not awaiting authorisation")
		case errors.Is(err, ErrForeignConsent):
			return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the payment consent belongs to another client")
		case errors.Is(err, ErrNoHolder):
			return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the consent's logged user is not a customer of this holder")
		}
	}
	if err != nil {
		h.Logger.ErrorContext(ctx, "authorization journey", "err", err)
		return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeInternalError, "the holder could not start the journey")
	}
	switch it.Status {
	case InteractionApproved:
		// The id_token's subject is the customer's id at the holder, never the CPF.
		as.SetUserID(it.CustomerID)
		as.GrantScopes(as.Scopes)
		return goidc.StatusSuccess, nil
	case InteractionCancelled:
		return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the user rejected the payment consent")
	}
	if !h.Interactions.clock.Now().Before(it.ExpiresAt) {
		return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the payment consent expired before the user authorised it")
	}
	if partner == nil {
		if partner, err = h.Interactions.partners.Partner(ctx, it.ApplicationID); err != nil {
			h.Logger.ErrorContext(ctx, "authorization journey: partner", "err", err)
			return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeAccessDenied, "the holder partner is unavailable")
		}
	}
	switch {
	case partner.DeepLinkURL != "" && it.Handoff:
		h.renderHandoff(w, r, it, partner)
	case partner.DeepLinkURL != "":
		http.Redirect(w, r, deepLink(partner.DeepLinkURL, it), http.StatusSeeOther)
	default:
		ticket, err := h.Tickets.IssueForJourney(ctx, it, partner.CompanyKey)
		if err != nil {
			h.Logger.ErrorContext(ctx, "authorization journey: ticket", "err", err)
			return goidc.StatusFailure, goidc.NewError(goidc.ErrorCodeInternalError, "the holder could not open the WebView")
		}
		http.Redirect(w, r, h.Interactions.issuer+PathWebView+"?"+url.Values{"ticket": {ticket}}.Encode(), http.StatusSeeOther)
	}
	return goidc.StatusInProgress, nil
}

// deepLink is the partner's deep link with the two values seed 000 says the
// partner's app collects: request_uri and client_id.
func deepLink(base string, it *Interaction) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	q.Set("request_uri", it.RequestURI)
	q.Set("client_id", it.ClientID)
	u.RawQuery = q.Encode()
	return u.String()
}

// desktop reports whether a User-Agent is a desktop browser (not a phone or
// tablet): there a partner that only has an app is reached by QR code.
func desktop(ua string) bool {
	for _, mobile := range []string{"Mobi", "Android", "iPhone", "iPad", "iPod"} {
		if strings.Contains(ua, mobile) {
			return false
		}
	}
	return ua != ""
}
