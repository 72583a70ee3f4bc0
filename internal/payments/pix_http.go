package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
)

// consentScopePrefix starts the scope an authorization_code token carries
// for the consent the user approved (consent:{consentId}).
const consentScopePrefix = "consent:"

// registerPix adds the Pix payment routes. POST takes the authorization_code
// token issued for the consent (scopes payments and consent:{consentId});
// GET and the two PATCHes take a client_credentials token (scope payments),
// as the specification's "Controle de acesso" says.
func (h *Handler) registerPix(mux *http.ServeMux) {
	errs := h.errs()
	route := func(pattern string, fn http.HandlerFunc) {
		mux.Handle(pattern, h.interaction(httpx.RequireScope(h.Verifier, Scope, errs, fn)))
	}
	route("POST "+PixPaymentsPath, h.createPix)
	route("GET "+PixPaymentsPath+"/{paymentId}", h.getPix)
	route("PATCH "+PixPaymentsPath+"/{paymentId}", h.cancelPix)
	route("PATCH "+PixConsentPaymentsPath+"/{consentId}", h.cancelConsentPix)
}

// tokenConsent is the consent id of the principal's consent:{id} scope, or "".
func tokenConsent(p *httpx.Principal) string {
	for _, sc := range p.Scopes {
		if id, ok := strings.CutPrefix(sc, consentScopePrefix); ok && id != "" {
			return id
		}
	}
	return ""
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, detail string) {
	h.errs().write(w, r, http.StatusForbidden, []Problem{{Code: "FORBIDDEN", Detail: detail}})
}

// idempotencyKey checks the x-idempotency-key header; ok is false when an
// error was written. required: the route's specification lists the header.
func (h *Handler) idempotencyKey(w http.ResponseWriter, r *http.Request, required bool) (string, bool) {
	key := r.Header.Get(IdempotencyHeader)
	switch {
	case key == "" && !required:
		return "", true
	case key == "":
		h.errs().write(w, r, http.StatusBadRequest, []Problem{{Code: CodeParametroNaoInformado,
			Detail: "Cabeçalho " + IdempotencyHeader + " obrigatório não informado."}})
		return "", false
	case !validIdempotencyKey(key):
		h.errs().write(w, r, http.StatusBadRequest, []Problem{{Code: CodeParametroInvalido,
			Detail: fmt.Sprintf("Cabeçalho %s deve ter de 1 a %d caracteres, sem espaços no início ou no fim.", IdempotencyHeader, maxIdempotencyKey)}})
		return "", false
	}
	return key, true
}

// body reads a request body, signed (verified against the caller's keys for
// aud) or plain JSON for a caller allowed to send it. ok is false when an
// error was written.
func (h *Handler) body(w http.ResponseWriter, r *http.Request, aud string) (payload []byte, jti string, signed bool, caller *Caller, ok bool) {
	errs := h.errs()
	signed, okType := bodyMediaType(r.Header.Get("Content-Type"))
	if !okType {
		errs.write(w, r, http.StatusUnsupportedMediaType, []Problem{{Code: statusCodes[http.StatusUnsupportedMediaType],
			Detail: "Content-Type deve ser " + MediaTypeJWT + " (corpo assinado com PS256)."}})
		return nil, "", false, nil, false
	}
	p := httpx.PrincipalFrom(r.Context())
	caller, err := h.Callers.Caller(r.Context(), p.ClientID)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "look up payments caller", "err", err)
		errs.WriteError(w, r, httpx.Internal())
		return nil, "", false, nil, false
	}
	if !signed && !caller.AcceptPlainJSON {
		errs.write(w, r, http.StatusUnsupportedMediaType, []Problem{{Code: statusCodes[http.StatusUnsupportedMediaType],
			Detail: "Content-Type deve ser " + MediaTypeJWT + ": esta aplicação não está autorizada a enviar corpos JSON sem assinatura."}})
		return nil, "", false, nil, false
	}
	raw, herr := readBody(w, r)
	if herr != nil {
		errs.WriteError(w, r, herr)
		return nil, "", false, nil, false
	}
	if !signed {
		return raw, "", false, caller, true
	}
	payload, jti, verr := h.verifyPayload(r.Context(), caller, raw, aud)
	if verr != nil {
		h.fail(w, r, true, caller, verr)
		return nil, "", true, caller, false
	}
	return payload, jti, true, caller, true
}

func (h *Handler) createPix(w http.ResponseWriter, r *http.Request) {
	p := httpx.PrincipalFrom(r.Context())
	consentID := tokenConsent(p)
	if consentID == "" {
		// A client_credentials token: the AS never puts a consent in one.
		h.forbidden(w, r, "O token de acesso não foi emitido para um consentimento (escopo consent:{consentId}, grant authorization_code).")
		return
	}
	key, ok := h.idempotencyKey(w, r, true)
	if !ok {
		return
	}
	payload, jti, signed, caller, ok := h.body(w, r, h.Service.PixPaymentsURL())
	if !ok {
		return
	}
	items, verr := decodePixPayments(payload)
	if verr != nil && verr.Status != http.StatusUnprocessableEntity {
		h.fail(w, r, signed, caller, verr)
		return
	}
	in := CreatePixPaymentsInput{ApplicationID: p.ApplicationID, ConsentID: consentID, Items: items, IdempotencyKey: key, JTI: jti,
		Undecodable: verr}
	if verr != nil {
		var raw struct {
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(payload, &raw) // a valid JSON object: decodePixPayments checked it
		in.RawData = raw.Data
	}
	resp, err := h.Service.CreatePixPayments(r.Context(), in)
	h.answer(w, r, signed, caller, resp, err, "create pix payments")
}

// answer writes a service's answer or maps its error.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, signed bool, caller *Caller, resp idempotency.Response, err error, what string) {
	switch {
	case err == nil:
		if resp.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		h.respond(w, r, signed, caller, resp.Status, resp.Body)
	case errors.Is(err, idempotency.ErrKeyReused):
		h.fail(w, r, signed, caller, unprocessable(CodeErroIdempotencia,
			"Conteúdo da mensagem (claim data) diverge do conteúdo associado a esta chave de idempotência (x-idempotency-key)."))
	case errors.Is(err, ErrJTIReused):
		h.fail(w, r, signed, caller, InvalidClient(fmt.Sprintf("Claim jti já utilizada por esta aplicação nas últimas %d horas.", int(JTIWindow.Hours()))))
	case errors.Is(err, ErrConsentNotOwned):
		h.forbidden(w, r, "O consentimento do token de acesso não pertence a esta aplicação.")
	case errors.Is(err, ErrPaymentNotFound):
		h.errs().write(w, r, http.StatusNotFound, []Problem{{Code: "NOT_FOUND", Detail: "Pagamento não encontrado."}})
	case errors.Is(err, ErrNotFound):
		h.errs().write(w, r, http.StatusNotFound, []Problem{{Code: "NOT_FOUND", Detail: "Consentimento não encontrado."}})
	case errors.Is(err, ErrNotCancellable):
		h.fail(w, r, signed, caller, unprocessable(CodePagamentoNaoPermiteCancel, "Pagamento não permite cancelamento"))
	default:
		h.Logger.ErrorContext(r.Context(), what, "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
	}
}

// clientCredentials refuses a token issued for a consent on the routes the
// specification reserves to client_credentials tokens.
func (h *Handler) clientCredentials(w http.ResponseWriter, r *http.Request) bool {
	if tokenConsent(httpx.PrincipalFrom(r.Context())) != "" {
		h.forbidden(w, r, "Esta operação aceita somente token de acesso emitido com grant_type client_credentials.")
		return false
	}
	return true
}

func (h *Handler) paymentID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("paymentId")
	if !validPaymentID(id) {
		h.errs().write(w, r, http.StatusBadRequest, []Problem{{Code: CodeParametroInvalido,
			Detail: "Parâmetro paymentId não obedece as regras de formatação esperadas."}})
		return "", false
	}
	return id, true
}

func (h *Handler) getPix(w http.ResponseWriter, r *http.Request) {
	if !h.clientCredentials(w, r) {
		return
	}
	id, ok := h.paymentID(w, r)
	if !ok {
		return
	}
	caller, signed, ok := h.reader(w, r)
	if !ok {
		return
	}
	pay, err := h.Service.GetPixPayment(r.Context(), caller.ApplicationID, id)
	if err != nil {
		h.answer(w, r, false, nil, idempotency.Response{}, err, "get pix payment")
		return
	}
	body, err := httpx.Marshal(h.Service.PixPaymentResponse(pay))
	if err != nil {
		h.answer(w, r, false, nil, idempotency.Response{}, err, "encode pix payment")
		return
	}
	if signed {
		h.writeSigned(w, r, caller.Organisation(), http.StatusOK, body)
		return
	}
	httpx.WriteRawJSON(w, http.StatusOK, body)
}

func (h *Handler) cancelPix(w http.ResponseWriter, r *http.Request) {
	if !h.clientCredentials(w, r) {
		return
	}
	id, ok := h.paymentID(w, r)
	if !ok {
		return
	}
	// The specification lists no x-idempotency-key for this route: one sent
	// is honoured, none is required.
	key, ok := h.idempotencyKey(w, r, false)
	if !ok {
		return
	}
	h.cancelRoute(w, r, key, h.Service.PixPaymentURL(id), id, h.Service.CancelPixPayment)
}

func (h *Handler) cancelConsentPix(w http.ResponseWriter, r *http.Request) {
	if !h.clientCredentials(w, r) {
		return
	}
	id := r.PathValue("consentId")
	if len(id) > 256 || !ConsentIDPattern.MatchString(id) {
		h.errs().write(w, r, http.StatusBadRequest, []Problem{{Code: CodeParametroInvalido,
			Detail: "Parâmetro consentId não obedece as regras de formatação esperadas."}})
		return
	}
	key, ok := h.idempotencyKey(w, r, true)
	if !ok {
		return
	}
	h.cancelRoute(w, r, key, h.Service.PixConsentPaymentsURL(id), id, h.Service.CancelConsentPayments)
}

func (h *Handler) cancelRoute(w http.ResponseWriter, r *http.Request, key, aud, id string,
	cancel func(ctx context.Context, in CancelInput) (idempotency.Response, error)) {
	payload, jti, signed, caller, ok := h.body(w, r, aud)
	if !ok {
		return
	}
	doc, verr := decodeCancel(payload)
	if verr != nil {
		h.fail(w, r, signed, caller, verr)
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	resp, err := cancel(r.Context(), CancelInput{ApplicationID: p.ApplicationID, ID: id, Document: *doc, IdempotencyKey: key, JTI: jti})
	h.answer(w, r, signed, caller, resp, err, "cancel pix payment")
}
