package payments

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
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/idempotency"
)

// Header names of the specification.
const (
	InteractionHeader = "x-fapi-interaction-id"
	IdempotencyHeader = "x-idempotency-key"
)

// Scope is the access-token scope of the consent routes.
const Scope = "payments"

// maxIdempotencyKey is the specification's maxLength of x-idempotency-key.
const maxIdempotencyKey = 40

var interactionPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ErrorWriter renders errors in the Open Finance Brasil shape:
//
//	{"errors":[{"code":"...","title":"...","detail":"..."}],"meta":{"requestDateTime":"2021-05-21T08:30:00Z"}}
type ErrorWriter struct {
	Clock clock.Clock
}

// Default codes per status for errors without an official code.
var statusCodes = map[int]string{
	http.StatusBadRequest:            CodeParametroInvalido,
	http.StatusUnauthorized:          "UNAUTHORIZED",
	http.StatusForbidden:             "FORBIDDEN",
	http.StatusNotFound:              "NOT_FOUND",
	http.StatusMethodNotAllowed:      "METHOD_NOT_ALLOWED",
	http.StatusNotAcceptable:         "NOT_ACCEPTABLE",
	http.StatusRequestEntityTooLarge: "PAYLOAD_TOO_LARGE",
	http.StatusUnsupportedMediaType:  "UNSUPPORTED_MEDIA_TYPE",
	http.StatusUnprocessableEntity:   CodeNaoInformado,
	http.StatusInternalServerError:   "INTERNAL_SERVER_ERROR",
	http.StatusServiceUnavailable:    "SERVICE_UNAVAILABLE",
}

// WriteError implements httpx.ErrorWriter.
func (e ErrorWriter) WriteError(w http.ResponseWriter, r *http.Request, err *httpx.Error) {
	code := err.Code
	if code == "" {
		code = statusCodes[err.Status]
		if code == "" {
			code = strings.ToUpper(strings.ReplaceAll(http.StatusText(err.Status), " ", "_"))
		}
	}
	detail := err.Message
	for i, f := range err.Fields {
		if i == 0 {
			detail += ": "
		} else {
			detail += "; "
		}
		detail += f.Field + " " + f.Message
	}
	e.write(w, r, err.Status, []Problem{{Code: code, Detail: detail}})
}

type errorItem struct {
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

type errorBody struct {
	Errors []errorItem `json:"errors"`
	Meta   Meta        `json:"meta"`
}

func (e ErrorWriter) write(w http.ResponseWriter, r *http.Request, status int, problems []Problem) {
	httpx.WriteJSON(w, r, status, e.body(status, problems))
}

func (e ErrorWriter) body(status int, problems []Problem) errorBody {
	body := errorBody{Meta: Meta{RequestDateTime: formatTime(e.Clock.Now())}}
	for _, p := range problems {
		title := titles[p.Code]
		if title == "" {
			title = http.StatusText(status)
		}
		body.Errors = append(body.Errors, errorItem{Code: p.Code, Title: title, Detail: truncate(p.Detail, 2048)})
	}
	return body
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Handler serves the payment-consent routes.
type Handler struct {
	Service  *Service
	Verifier httpx.TokenVerifier
	Logger   *slog.Logger
	// Callers gives the calling application's registered keys and whether it
	// may send plain JSON bodies; required.
	Callers Callers
	// Signer signs the responses (Ponte's key); without it they are a 500.
	Signer Signer
	// OrganisationID is Ponte's organisation id at the Open Finance
	// Directory: the iss of its signed responses. Without it they are a 500.
	OrganisationID string

	keys KeyCache
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	errs := h.errs()
	mux.Handle("POST "+ConsentsPath, h.interaction(httpx.RequireScope(h.Verifier, Scope, errs, http.HandlerFunc(h.create))))
	mux.Handle("GET "+ConsentsPath+"/{consentId}", h.interaction(httpx.RequireScope(h.Verifier, Scope, errs, http.HandlerFunc(h.get))))
	h.registerPix(mux)
}

func (h *Handler) errs() ErrorWriter { return ErrorWriter{Clock: h.Service.Clock} }

// interaction echoes a valid x-fapi-interaction-id; a missing or invalid one
// is replaced by a new UUID and the request refused with 400, as the
// specification says.
func (h *Handler) interaction(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(InteractionHeader)
		if interactionPattern.MatchString(id) {
			w.Header().Set(InteractionHeader, id)
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set(InteractionHeader, uuid.NewString())
		p := Problem{Code: CodeParametroInvalido, Detail: "Cabeçalho " + InteractionHeader + " não é um UUID (RFC 4122)."}
		if id == "" {
			p = Problem{Code: CodeParametroNaoInformado, Detail: "Cabeçalho " + InteractionHeader + " obrigatório não informado."}
		}
		h.errs().write(w, r, http.StatusBadRequest, []Problem{p})
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

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	errs := h.errs()
	key := r.Header.Get(IdempotencyHeader)
	switch {
	case key == "":
		errs.write(w, r, http.StatusBadRequest, []Problem{{Code: CodeParametroNaoInformado,
			Detail: "Cabeçalho " + IdempotencyHeader + " obrigatório não informado."}})
		return
	case !validIdempotencyKey(key):
		errs.write(w, r, http.StatusBadRequest, []Problem{{Code: CodeParametroInvalido,
			Detail: fmt.Sprintf("Cabeçalho %s deve ter de 1 a %d caracteres, sem espaços no início ou no fim.", IdempotencyHeader, maxIdempotencyKey)}})
		return
	}
	signed, ok := bodyMediaType(r.Header.Get("Content-Type"))
	if !ok {
		errs.write(w, r, http.StatusUnsupportedMediaType, []Problem{{Code: statusCodes[http.StatusUnsupportedMediaType],
			Detail: "Content-Type deve ser " + MediaTypeJWT + " (corpo assinado com PS256)."}})
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	caller, unchanged, err := WriteCaller(r.Context(), h.Callers, h.Service.DB.Pool() != nil, p.ClientID)
	var (
		body []byte
		read bool
	)
	// A cached caller (unchanged != nil) is checked again in the create's
	// statement; every other outcome decided on it is decided again, once,
	// on a fresh read, so the answer is always the one a fresh read gives.
	for ; ; caller, unchanged, err = WriteCaller(r.Context(), h.Callers, false, p.ClientID) {
		if err != nil {
			h.Logger.ErrorContext(r.Context(), "look up payments caller", "err", err)
			errs.WriteError(w, r, httpx.Internal())
			return
		}
		if caller.Disabled {
			WriteDisabled(w, r, errs)
			return
		}
		if !signed && !caller.AcceptPlainJSON {
			if unchanged != nil {
				continue
			}
			errs.write(w, r, http.StatusUnsupportedMediaType, []Problem{{Code: statusCodes[http.StatusUnsupportedMediaType],
				Detail: "Content-Type deve ser " + MediaTypeJWT + ": esta aplicação não está autorizada a enviar corpos JSON sem assinatura."}})
			return
		}
		if !read {
			var herr *httpx.Error
			if body, herr = readBody(w, r); herr != nil {
				errs.WriteError(w, r, herr)
				return
			}
			read = true
		}
		in := CreateInput{ApplicationID: p.ApplicationID, IdempotencyKey: key, Unchanged: unchanged}
		var verr *ValidationError
		if signed {
			var sr *signedRequest
			if sr, verr = h.verify(r.Context(), caller, body); verr == nil {
				in.Request, in.JTI = *sr.Request, sr.JTI
			}
		} else {
			var req *ConsentRequest
			if req, verr = decodeCreate(body); verr == nil {
				in.Request = *req
			}
		}
		if verr != nil {
			if unchanged != nil {
				continue
			}
			h.fail(w, r, signed, caller, verr)
			return
		}
		resp, err := h.Service.Create(r.Context(), in)
		if err != nil && unchanged != nil && (errors.Is(err, idempotency.ErrGuardFailed) || Refusal(err)) {
			continue
		}
		h.created(w, r, signed, caller, resp, err)
		return
	}
}

// created writes the answer of a consent create.
func (h *Handler) created(w http.ResponseWriter, r *http.Request, signed bool, caller *Caller, resp idempotency.Response, err error) {
	var ve *ValidationError
	switch {
	case err == nil:
		if resp.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		h.respond(w, r, signed, caller, resp.Status, resp.Body)
	case errors.As(err, &ve):
		h.fail(w, r, signed, caller, ve)
	case errors.Is(err, idempotency.ErrKeyReused):
		h.fail(w, r, signed, caller, &ValidationError{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Code: CodeErroIdempotencia,
			Detail: "Conteúdo da mensagem (claim data) diverge do conteúdo associado a esta chave de idempotência (x-idempotency-key)."}}})
	case errors.Is(err, ErrJTIReused):
		h.fail(w, r, signed, caller, InvalidClient(fmt.Sprintf("Claim jti já utilizada por esta aplicação nas últimas %d horas.", int(JTIWindow.Hours()))))
	default:
		h.Logger.ErrorContext(r.Context(), "create payment consent", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
	}
}

// WriteCaller is the caller a consent create decides on. On PostgreSQL
// (postgres) with CachedCallers that hold one, it is the cached caller and
// unchanged is the condition the create's statement must check
// (CreateInput.Unchanged); otherwise a fresh read, and unchanged is nil.
func WriteCaller(ctx context.Context, callers Callers, postgres bool, clientID string) (caller *Caller, unchanged func(*idempotency.Query) string, err error) {
	if cc, ok := callers.(CachedCallers); ok && postgres {
		if c, ok := cc.Cached(clientID); ok {
			return c, func(q *idempotency.Query) string { return cc.Unchanged(q, c) }, nil
		}
	}
	c, err := callers.Caller(ctx, clientID)
	return c, nil, err
}

// Refusal reports whether err is a create's answer to the request (a
// validation error, a reused key or jti) rather than a failure: decided on
// a cached caller, it is decided again on a fresh one.
func Refusal(err error) bool {
	var ve *ValidationError
	return errors.As(err, &ve) || errors.Is(err, idempotency.ErrKeyReused) || errors.Is(err, ErrJTIReused)
}

// WriteDisabled refuses a disabled application's write as the token
// verifier refuses its tokens.
func WriteDisabled(w http.ResponseWriter, r *http.Request, errs ErrorWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	errs.WriteError(w, r, &httpx.Error{Status: http.StatusUnauthorized, Message: "invalid or expired access token"})
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
	case mt == MediaTypeJWT:
		return true, true
	case mt == MediaTypeJSON || strings.HasSuffix(mt, "+json"):
		return false, true
	}
	return false, false
}

// readBody reads a request body of at most httpx.MaxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *httpx.Error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &httpx.Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", httpx.MaxBody)}
		}
		return nil, &httpx.Error{Status: http.StatusBadRequest, Message: "could not read request body"}
	}
	return body, nil
}

// verify checks a signed POST /consents body against the caller's registered keys.
func (h *Handler) verify(ctx context.Context, caller *Caller, body []byte) (*signedRequest, *ValidationError) {
	payload, jti, verr := h.verifyPayload(ctx, caller, body, h.Service.ConsentsURL())
	if verr != nil {
		return nil, verr
	}
	req, verr := decodeCreate(payload)
	if verr != nil {
		return nil, verr
	}
	return &signedRequest{JTI: jti, Request: req}, nil
}

// verifyPayload checks a signed body sent to aud (the URL called) against
// the caller's registered keys and returns its claims and jti.
func (h *Handler) verifyPayload(ctx context.Context, caller *Caller, body []byte, aud string) ([]byte, string, *ValidationError) {
	if len(caller.JWKS) == 0 {
		return nil, "", BadSignature("A aplicação não tem JWKS registrado: registre suas chaves públicas para enviar corpos assinados.")
	}
	keys, err := h.keys.Get(caller.JWKS)
	if err != nil {
		h.Logger.ErrorContext(ctx, "payments caller's registered JWKS does not parse", "client_id", caller.ClientID, "err", err)
		return nil, "", BadSignature("O JWKS registrado da aplicação não pôde ser lido.")
	}
	return VerifySigned(body, keys, Expectations{Audience: aud, Issuer: caller.Organisation(), Now: h.Service.Clock.Now()})
}

// respond writes a success body: as is (JSON), or signed for a signed request.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, signed bool, caller *Caller, status int, body []byte) {
	if !signed {
		httpx.WriteRawJSON(w, status, body)
		return
	}
	h.writeSigned(w, r, caller.Organisation(), status, body)
}

// fail writes a refused request. For a signed request the 422s are signed
// too (the specification's UnprocessableEntityConsents is application/jwt);
// the security and format errors (400, 403, 415) are JSON, as its
// BadRequestPayments, Forbidden and UnsupportedMediaType responses are.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, signed bool, caller *Caller, e *ValidationError) {
	errs := h.errs()
	if !signed || e.Status != http.StatusUnprocessableEntity {
		errs.write(w, r, e.Status, e.Problems)
		return
	}
	body, err := httpx.Marshal(errs.body(e.Status, e.Problems))
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "encode payments error", "err", err)
		errs.WriteError(w, r, httpx.Internal())
		return
	}
	h.writeSigned(w, r, caller.Organisation(), e.Status, body)
}

// writeSigned signs a JSON object body for audience and writes it as application/jwt.
func (h *Handler) writeSigned(w http.ResponseWriter, r *http.Request, audience string, status int, body []byte) {
	if h.Signer == nil || h.OrganisationID == "" {
		h.Logger.ErrorContext(r.Context(), "payments: no response signer or organisation id configured")
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	jwt, err := SignedBody(h.Signer, body, audience, h.OrganisationID, h.Service.Clock.Now())
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "sign payments response", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return
	}
	w.Header().Set("Content-Type", MediaTypeJWT)
	w.Header().Set("Content-Length", strconv.Itoa(len(jwt)))
	w.WriteHeader(status)
	_, _ = w.Write(jwt)
}

// reader is the caller of a GET, and whether its answer is signed: always,
// as the official files declare the 200 application/jwt whatever the Accept
// header says, except for an application that opted into plain JSON (a
// Ponte extension) and did not ask for application/jwt. ok is false when an
// error was written.
func (h *Handler) reader(w http.ResponseWriter, r *http.Request) (caller *Caller, signed, ok bool) {
	caller, err := h.Callers.Caller(r.Context(), httpx.PrincipalFrom(r.Context()).ClientID)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "look up payments caller", "err", err)
		h.errs().WriteError(w, r, httpx.Internal())
		return nil, false, false
	}
	return caller, SignsReads(caller, r.Header.Get("Accept")), true
}

// SignsReads reports whether a read (GET) answer to caller, who sent
// accept, is signed: always, unless the caller opted into plain JSON and
// did not list application/jwt.
func SignsReads(caller *Caller, accept string) bool {
	return !caller.AcceptPlainJSON || acceptsJWT(accept)
}

// acceptsJWT reports whether the Accept header lists application/jwt.
func acceptsJWT(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == MediaTypeJWT {
			return true
		}
	}
	return false
}

// decodeCreate decodes the body: malformed JSON is a 400; a value of the
// wrong JSON type is a 422 PARAMETRO_INVALIDO and a missing data a 422
// PARAMETRO_NAO_INFORMADO (the specification's syntactic errors).
func decodeCreate(body []byte) (*ConsentRequest, *ValidationError) {
	trimmed := bytes.TrimSpace(body)
	if !json.Valid(trimmed) || len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &ValidationError{Status: http.StatusBadRequest, Problems: []Problem{{Code: CodeParametroInvalido,
			Detail: "O corpo da requisição não é um objeto JSON válido."}}}
	}
	var in CreateConsentBody
	if err := json.Unmarshal(trimmed, &in); err != nil {
		var te *json.UnmarshalTypeError
		field := "data"
		if errors.As(err, &te) && te.Field != "" {
			field = te.Field
		}
		return nil, &ValidationError{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Code: CodeParametroInvalido,
			Detail: fmt.Sprintf("Parâmetro %s não obedece as regras de formatação esperadas.", field)}}}
	}
	if in.Data == nil {
		return nil, &ValidationError{Status: http.StatusUnprocessableEntity, Problems: []Problem{{Code: CodeParametroNaoInformado,
			Detail: "Parâmetro data obrigatório não informado."}}}
	}
	return in.Data, nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	errs := h.errs()
	id := r.PathValue("consentId")
	if len(id) > 256 || !ConsentIDPattern.MatchString(id) {
		errs.write(w, r, http.StatusBadRequest, []Problem{{Code: CodeParametroInvalido,
			Detail: "Parâmetro consentId não obedece as regras de formatação esperadas."}})
		return
	}
	caller, signed, ok := h.reader(w, r)
	if !ok {
		return
	}
	c, err := h.Service.Get(r.Context(), caller.ApplicationID, id)
	switch {
	case err == nil && signed:
		body, err := httpx.Marshal(c.Response(h.Service.SelfURL(c.ID), h.Service.Clock.Now()))
		if err != nil {
			h.Logger.ErrorContext(r.Context(), "encode payment consent", "err", err)
			errs.WriteError(w, r, httpx.Internal())
			return
		}
		h.writeSigned(w, r, caller.Organisation(), http.StatusOK, body)
	case err == nil:
		httpx.WriteJSON(w, r, http.StatusOK, c.Response(h.Service.SelfURL(c.ID), h.Service.Clock.Now()))
	case errors.Is(err, ErrNotFound):
		errs.write(w, r, http.StatusNotFound, []Problem{{Code: "NOT_FOUND", Detail: "Consentimento não encontrado."}})
	default:
		h.Logger.ErrorContext(r.Context(), "get payment consent", "err", err)
		errs.WriteError(w, r, httpx.Internal())
	}
}

var _ httpx.ErrorWriter = ErrorWriter{}
