package recurring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
	"github.com/ponte-ofb/ponte/internal/payments"
)

// Scope is the access-token scope of the recurring-consent routes.
const Scope = "recurring-payments"

// Version is the x-v response header: the version of the specification implemented.
const Version = "2.0.0"

// maxIdempotencyKey is the specification's maxLength of x-idempotency-key.
const maxIdempotencyKey = 40

var interactionPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Handler serves the recurring-consent routes.
type Handler struct {
	Service  *Service
	Verifier httpx.TokenVerifier
	Logger   *slog.Logger
	// Callers gives the calling application's registered keys and whether it
	// may send plain JSON bodies; required.
	Callers payments.Callers
	// Signer signs the responses (Ponte's key); without it they are a 500.
	Signer payments.Signer
	// OrganisationID is Ponte's organisation id at the Open Finance
	// Directory: the iss of its signed responses. Without it they are a 500.
	OrganisationID string

	keys payments.KeyCache
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	errs := h.errs()
	route := func(fn http.HandlerFunc) http.Handler {
		return h.interaction(httpx.RequireScope(h.Verifier, Scope, errs, fn))
	}
	mux.Handle("POST "+ConsentsPath, route(h.create))
	mux.Handle("GET "+ConsentsPath+"/{recurringConsentId}", route(h.get))
	mux.Handle("PATCH "+ConsentsPath+"/{recurringConsentId}", route(h.patch))
	h.registerPayments(mux, route)
}

// errs is the Open Finance error writer of internal/payments (the same
// {"errors":[{code,title,detail}],"meta":{requestDateTime}} shape).
func (h *Handler) errs() payments.ErrorWriter { return payments.ErrorWriter{Clock: h.Service.Clock} }

type errorItem struct {
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

type errorBody struct {
	Errors []errorItem `json:"errors"`
	Meta   Meta        `json:"meta"`
}

// errorBody renders problems with the specification's titles (payments'
// ErrorWriter only takes one problem, with payments' titles).
func (h *Handler) errorBody(status int, problems []payments.Problem) errorBody {
	return problemsBody(h.Service.Clock.Now(), status, problems)
}

// problemsBody is the error body of problems at now: each with the
// specification's title for its code, details cut at 2,048 bytes.
func problemsBody(now time.Time, status int, problems []payments.Problem) errorBody {
	body := errorBody{Meta: Meta{RequestDateTime: formatTime(now)}}
	for _, p := range problems {
		title := titles[p.Code]
		if title == "" {
			title = paymentTitles[p.Code]
		}
		if title == "" {
			title = http.StatusText(status)
		}
		detail := p.Detail
		if len(detail) > 2048 {
			n := 2048
			for n > 0 && !utf8.RuneStart(detail[n]) {
				n--
			}
			detail = detail[:n]
		}
		body.Errors = append(body.Errors, errorItem{Code: p.Code, Title: title, Detail: detail})
	}
	return body
}

func (h *Handler) writeProblems(w http.ResponseWriter, r *http.Request, status int, problems ...payments.Problem) {
	httpx.WriteJSON(w, r, status, h.errorBody(status, problems))
}

// interaction echoes a valid x-fapi-interaction-id; a missing or invalid one
// is replaced by a new UUID and the request refused with 400, as the
// specification says. Every response names the version implemented (x-v).
func (h *Handler) interaction(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-v", Version)
		id := r.Header.Get(payments.InteractionHeader)
		if interactionPattern.MatchString(id) {
			w.Header().Set(payments.InteractionHeader, id)
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set(payments.InteractionHeader, uuid.NewString())
		p := payments.Problem{Code: payments.CodeParametroInvalido, Detail: "Cabeçalho " + payments.InteractionHeader + " não é um UUID (RFC 4122)."}
		if id == "" {
			p = payments.Problem{Code: payments.CodeParametroNaoInformado, Detail: "Cabeçalho " + payments.InteractionHeader + " obrigatório não informado."}
		}
		h.writeProblems(w, r, http.StatusBadRequest, p)
	})
}

// validIdempotencyKey follows ^(?!\s)(.*)(\S)$ with 1–40 characters.
func validIdempotencyKey(k string) bool {
	if k == "" || utf8.RuneCountInString(k) > maxIdempotencyKey || !utf8.ValidString(k) || strings.ContainsAny(k, "\r\n") {
		return false
	}
	first, _ := utf8.DecodeRuneInString(k)
	last, _ := utf8.DecodeLastRuneInString(k)
	return !unicode.IsSpace(first) && !unicode.IsSpace(last)
}

// request is a write request's common part, read and checked: key, caller,
// whether the body is signed, and the body's payload (the JWT's claims or the
// plain JSON) with its jti.
type request struct {
	key     string
	caller  *payments.Caller
	signed  bool
	payload []byte
	jti     string
}

// readWrite checks the headers, the caller and the body of a POST or PATCH
// whose signed body's aud must be audience. It writes the refusal and
// returns nil when the request goes no further.
func (h *Handler) readWrite(w http.ResponseWriter, r *http.Request, audience string) *request {
	key, signed, ok := h.writeHeaders(w, r)
	if !ok {
		return nil
	}
	caller, err := h.Callers.Caller(r.Context(), httpx.PrincipalFrom(r.Context()).ClientID)
	req, _ := h.checkWrite(w, r, audience, key, signed, caller, err, false, &writeBody{})
	return req
}

// writeHeaders checks a write's x-idempotency-key and Content-Type (signed
// or not). ok is false when a refusal was written.
func (h *Handler) writeHeaders(w http.ResponseWriter, r *http.Request) (key string, signed, ok bool) {
	key = r.Header.Get(payments.IdempotencyHeader)
	switch {
	case key == "":
		h.writeProblems(w, r, http.StatusBadRequest, payments.Problem{Code: payments.CodeParametroNaoInformado,
			Detail: "Cabeçalho " + payments.IdempotencyHeader + " obrigatório não informado."})
		return "", false, false
	case !validIdempotencyKey(key):
		h.writeProblems(w, r, http.StatusBadRequest, payments.Problem{Code: payments.CodeParametroInvalido,
			Detail: fmt.Sprintf("Cabeçalho %s deve ter de 1 a %d caracteres, sem espaços no início ou no fim.", payments.IdempotencyHeader, maxIdempotencyKey)})
		return "", false, false
	}
	signed, ok = bodyMediaType(r.Header.Get("Content-Type"))
	if !ok {
		h.writeProblems(w, r, http.StatusUnsupportedMediaType, payments.Problem{Code: "UNSUPPORTED_MEDIA_TYPE",
			Detail: "Content-Type deve ser " + payments.MediaTypeJWT + " (corpo assinado com PS256)."})
		return "", false, false
	}
	return key, signed, true
}

// writeBody is a write's body, read once however often it is checked.
type writeBody struct {
	raw  []byte
	read bool
}

// checkWrite checks a write's caller (read with err) and body. It writes
// the refusal and returns nil when the request goes no further, except a
// refusal decided on a cached caller: then it writes nothing and retry
// says to decide again on a fresh read.
func (h *Handler) checkWrite(w http.ResponseWriter, r *http.Request, audience, key string, signed bool, caller *payments.Caller, err error,
	cached bool, body *writeBody) (req *request, retry bool) {
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "look up recurring-consents caller", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return nil, false
	}
	if !signed && !caller.AcceptPlainJSON {
		if cached {
			return nil, true
		}
		h.writeProblems(w, r, http.StatusUnsupportedMediaType, payments.Problem{Code: "UNSUPPORTED_MEDIA_TYPE",
			Detail: "Content-Type deve ser " + payments.MediaTypeJWT + ": esta aplicação não está autorizada a enviar corpos JSON sem assinatura."})
		return nil, false
	}
	if !body.read {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", httpx.MaxBody)})
			} else {
				h.errs().WriteError(w, r, &httpx.Error{Status: http.StatusBadRequest, Message: "could not read request body"})
			}
			return nil, false
		}
		body.raw, body.read = raw, true
	}
	req = &request{key: key, caller: caller, signed: signed, payload: body.raw}
	if signed {
		var verr *payments.ValidationError
		if req.payload, req.jti, verr = h.verify(r.Context(), caller, body.raw, audience); verr != nil {
			if cached {
				return nil, true
			}
			h.fail(w, r, req, verr)
			return nil, false
		}
	}
	return req, false
}

// bodyMediaType tells a signed body (application/jwt) from a plain JSON one
// (application/json, +json, or no Content-Type); ok is false for anything else.
func bodyMediaType(contentType string) (signed, ok bool) {
	if contentType == "" {
		return false, true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	switch {
	case err != nil:
		return false, false
	case mt == payments.MediaTypeJWT:
		return true, true
	case mt == payments.MediaTypeJSON || strings.HasSuffix(mt, "+json"):
		return false, true
	}
	return false, false
}

func (h *Handler) verify(ctx context.Context, caller *payments.Caller, body []byte, audience string) ([]byte, string, *payments.ValidationError) {
	if len(caller.JWKS) == 0 {
		return nil, "", payments.BadSignature("A aplicação não tem JWKS registrado: registre suas chaves públicas para enviar corpos assinados.")
	}
	keys, err := h.keys.Get(caller.JWKS)
	if err != nil {
		h.Logger.ErrorContext(ctx, "recurring-consents caller's registered JWKS does not parse", "client_id", caller.ClientID, "err", err)
		return nil, "", payments.BadSignature("O JWKS registrado da aplicação não pôde ser lido.")
	}
	return payments.VerifySigned(body, keys, payments.Expectations{Audience: audience, Issuer: caller.Organisation(), Now: h.Service.Clock.Now()})
}

// decodeData decodes a body {"data": ...} into dst: malformed JSON is a 400;
// a value of the wrong JSON type is a 422 PARAMETRO_INVALIDO and a missing
// data a 422 PARAMETRO_NAO_INFORMADO (the specification's syntactic errors).
func decodeData[T any](body []byte) (*T, *payments.ValidationError) {
	trimmed := bytes.TrimSpace(body)
	if !json.Valid(trimmed) || len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &payments.ValidationError{Status: http.StatusBadRequest, Problems: []payments.Problem{{Code: payments.CodeParametroInvalido,
			Detail: "O corpo da requisição não é um objeto JSON válido."}}}
	}
	var in struct {
		Data *T `json:"data"`
	}
	if err := json.Unmarshal(trimmed, &in); err != nil {
		var te *json.UnmarshalTypeError
		field := "data"
		if errors.As(err, &te) && te.Field != "" {
			field = te.Field
		}
		return nil, &payments.ValidationError{Status: http.StatusUnprocessableEntity, Problems: []payments.Problem{{Code: payments.CodeParametroInvalido,
			Detail: fmt.Sprintf("Parâmetro %s não obedece as regras de formatação esperadas.", field)}}}
	}
	if in.Data == nil {
		return nil, &payments.ValidationError{Status: http.StatusUnprocessableEntity, Problems: []payments.Problem{{Code: payments.CodeParametroNaoInformado,
			Detail: "Parâmetro data obrigatório não informado."}}}
	}
	return in.Data, nil
}

// DecodeCreate decodes a POST /recurring-consents body (plain JSON, or the
// claims of a verified JWT).
func DecodeCreate(body []byte) (*ConsentRequest, *payments.ValidationError) {
	return decodeData[ConsentRequest](body)
}

// DecodePatch decodes a PATCH /recurring-consents/{id} body.
func DecodePatch(body []byte) (*PatchRequest, *payments.ValidationError) {
	return decodeData[PatchRequest](body)
}

// create decides on a cached caller on PostgreSQL (see
// payments.CachedCallers), checked again in the create's statement; every
// other outcome decided on it is decided again, once, on a fresh read, so
// the answer is always the one a fresh read gives.
func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	key, signed, ok := h.writeHeaders(w, r)
	if !ok {
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	caller, unchanged, err := payments.WriteCaller(r.Context(), h.Callers, h.Service.DB.Pool() != nil, p.ClientID)
	body := &writeBody{}
	for ; ; caller, unchanged, err = payments.WriteCaller(r.Context(), h.Callers, false, p.ClientID) {
		if err == nil && caller.Disabled {
			payments.WriteDisabled(w, r, h.errs())
			return
		}
		req, retry := h.checkWrite(w, r, h.Service.ConsentsURL(), key, signed, caller, err, unchanged != nil, body)
		if retry {
			continue
		}
		if req == nil {
			return
		}
		data, verr := DecodeCreate(req.payload)
		if verr != nil {
			if unchanged != nil {
				continue
			}
			h.fail(w, r, req, verr)
			return
		}
		resp, err := h.Service.Create(r.Context(), CreateInput{ApplicationID: p.ApplicationID, Request: *data, IdempotencyKey: req.key,
			JTI: req.jti, Unchanged: unchanged})
		if err != nil && unchanged != nil && (errors.Is(err, idempotency.ErrGuardFailed) || refusal(err)) {
			continue
		}
		h.answer(w, r, req, resp, err, "create recurring consent")
		return
	}
}

// refusal reports whether err is a create's answer to the request rather
// than a failure (see payments.Refusal), here with recurring's ErrJTIReused.
func refusal(err error) bool {
	return payments.Refusal(err) || errors.Is(err, ErrJTIReused)
}

func (h *Handler) patch(w http.ResponseWriter, r *http.Request) {
	id, ok := h.consentID(w, r)
	if !ok {
		return
	}
	req := h.readWrite(w, r, h.Service.SelfURL(id))
	if req == nil {
		return
	}
	data, verr := DecodePatch(req.payload)
	if verr != nil {
		h.fail(w, r, req, verr)
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	resp, err := h.Service.Patch(r.Context(), PatchInput{ApplicationID: p.ApplicationID, ConsentID: id, Request: *data, IdempotencyKey: req.key, JTI: req.jti})
	if errors.Is(err, idempotency.ErrKeyReused) {
		// The file's 422 for this PATCH (422ResponseErrorRecurringConsents)
		// has no ERRO_IDEMPOTENCIA: the reused key is an invalid parameter.
		h.fail(w, r, req, &payments.ValidationError{Status: http.StatusUnprocessableEntity, Problems: []payments.Problem{{Code: payments.CodeParametroInvalido,
			Detail: "Cabeçalho x-idempotency-key já usado com outro conteúdo: o conteúdo da mensagem (claim data) diverge do associado a esta chave."}}})
		return
	}
	h.answer(w, r, req, resp, err, "patch recurring consent")
}

// answer writes the outcome of a Create or Patch.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, req *request, resp idempotency.Response, err error, what string) {
	var ve *payments.ValidationError
	switch {
	case err == nil:
		if resp.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		h.respond(w, r, req, resp.Status, resp.Body)
	case errors.As(err, &ve):
		h.fail(w, r, req, ve)
	case errors.Is(err, ErrNotFound):
		h.writeProblems(w, r, http.StatusNotFound, payments.Problem{Code: "NOT_FOUND", Detail: "Consentimento não encontrado."})
	case errors.Is(err, idempotency.ErrKeyReused):
		h.fail(w, r, req, &payments.ValidationError{Status: http.StatusUnprocessableEntity, Problems: []payments.Problem{{Code: payments.CodeErroIdempotencia,
			Detail: "Conteúdo da mensagem (claim data) diverge do conteúdo associado a esta chave de idempotência (x-idempotency-key)."}}})
	case errors.Is(err, ErrJTIReused):
		h.fail(w, r, req, payments.InvalidClient(fmt.Sprintf("Claim jti já utilizada por esta aplicação nas últimas %d horas.", int(payments.JTIWindow.Hours()))))
	default:
		h.Logger.ErrorContext(r.Context(), what, "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
	}
}

// respond writes a success body: as is (JSON), or signed for a signed request.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, req *request, status int, body []byte) {
	if !req.signed {
		httpx.WriteRawJSON(w, status, body)
		return
	}
	h.writeSigned(w, r, req.caller.Organisation(), status, body)
}

// fail writes a refused request. For a signed request the 422s are signed
// too (the specification's 422 responses are application/jwt); the security
// and format errors (400, 403, 415) are JSON.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, req *request, e *payments.ValidationError) {
	if !req.signed || e.Status != http.StatusUnprocessableEntity {
		h.writeProblems(w, r, e.Status, e.Problems...)
		return
	}
	body, err := httpx.Marshal(h.errorBody(e.Status, e.Problems))
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "encode recurring-consents error", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	h.writeSigned(w, r, req.caller.Organisation(), e.Status, body)
}

// writeSigned signs a JSON object body for audience and writes it as application/jwt.
func (h *Handler) writeSigned(w http.ResponseWriter, r *http.Request, audience string, status int, body []byte) {
	if h.Signer == nil || h.OrganisationID == "" {
		h.Logger.ErrorContext(r.Context(), "recurring: no response signer or organisation id configured")
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	jwt, err := payments.SignedBody(h.Signer, body, audience, h.OrganisationID, h.Service.Clock.Now())
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "sign recurring-consents response", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	w.Header().Set("Content-Type", payments.MediaTypeJWT)
	w.Header().Set("Content-Length", strconv.Itoa(len(jwt)))
	w.WriteHeader(status)
	_, _ = w.Write(jwt)
}

// consentID reads and checks the path's recurringConsentId.
func (h *Handler) consentID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("recurringConsentId")
	if len(id) > 256 || !ConsentIDPattern.MatchString(id) {
		h.writeProblems(w, r, http.StatusBadRequest, payments.Problem{Code: payments.CodeParametroInvalido,
			Detail: "Parâmetro recurringConsentId não obedece as regras de formatação esperadas."})
		return "", false
	}
	return id, true
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id, ok := h.consentID(w, r)
	if !ok {
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	c, err := h.Service.Get(r.Context(), p.ApplicationID, id)
	switch {
	case errors.Is(err, ErrNotFound):
		h.writeProblems(w, r, http.StatusNotFound, payments.Problem{Code: "NOT_FOUND", Detail: "Consentimento não encontrado."})
		return
	case err != nil:
		h.Logger.ErrorContext(r.Context(), "get recurring consent", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	h.read(w, r, c.Response(h.Service.SelfURL(c.ID), h.Service.Clock.Now()))
}
