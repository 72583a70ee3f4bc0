package consentflow

import (
	"encoding/base64"
	"html/template"
	"net/http"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// routeHandoffStatus is polled by the desktop hand-off page.
const routeHandoffStatus = "GET /openfinance/consent-flow/handoff/{callbackId}"

type handoffPage struct {
	PartnerName, DeepLink, CallbackID, Initiator string
	// Kind is the consent's kind (payment, sweeping, data): the page names
	// what the phone will authorise.
	Kind string
	QR   template.URL // a data: URL Ponte drew, safe to embed
}

// renderHandoff shows the partner's deep link as a QR code for the phone and
// follows the journey until the phone finishes it.
func (h *Handler) renderHandoff(w http.ResponseWriter, r *http.Request, it *Interaction, p *Partner) {
	link := deepLink(p.DeepLinkURL, it)
	png, err := qrcode.Encode(link, qrcode.Medium, 320)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "hand-off QR code", "err", err)
		http.Error(w, "Falha temporária", http.StatusInternalServerError)
		return
	}
	kind := "payment"
	if c, err := h.Interactions.Consent(r.Context(), it); err == nil {
		kind = c.Kind
	} else {
		h.Logger.WarnContext(r.Context(), "hand-off: read consent", "err", err) // the page still works, worded for a payment
	}
	data := handoffPage{PartnerName: p.Name, DeepLink: link, CallbackID: it.CallbackID, Initiator: h.initiatorName(r.Context(), it.ClientID),
		Kind: kind, QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := h.Pages.ExecuteTemplate(w, "handoff", data); err != nil {
		h.Logger.ErrorContext(r.Context(), "render hand-off", "err", err)
	}
}

// handoffStatus tells the desktop hand-off page how the phone is doing. The
// callback id in the path is the capability: only the browser that started
// the authorization request has it.
func (h *Handler) handoffStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	it, err := h.Interactions.ByCallback(r.Context(), r.PathValue("callbackId"))
	if err != nil {
		httpx.WriteJSON(w, r, http.StatusNotFound, map[string]string{"status": "NOT_FOUND"})
		return
	}
	status := it.Status
	if !it.Finished() && !h.Interactions.clock.Now().Before(it.ExpiresAt) {
		status = "EXPIRED"
	}
	out := map[string]string{"status": status}
	if it.Finished() || status == "EXPIRED" {
		out["redirectUri"] = h.Interactions.ResumeURL(it)
	}
	httpx.WriteJSON(w, r, http.StatusOK, out)
}
