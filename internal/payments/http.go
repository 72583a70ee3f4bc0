package payments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
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
	body := errorBody{Meta: Meta{RequestDateTime: formatTime(e.Clock.Now())}}
	for _, p := range problems {
		title := titles[p.Code]
		if title == "" {
			title = http.StatusText(status)
		}
		body.Errors = append(body.Errors, errorItem{Code: p.Code, Title: title, Detail: truncate(p.Detail, 2048)})
	}
	httpx.WriteJSON(w, r, status, body)
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
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	errs := h.errs()
	mux.Handle("POST "+ConsentsPath, h.interaction(httpx.RequireScope(h.Verifier, Scope, errs, http.HandlerFunc(h.create))))
	mux.Handle("GET "+ConsentsPath+"/{consentId}", h.interaction(httpx.RequireScope(h.Verifier, Scope, errs, http.HandlerFunc(h.get))))
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
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		if herr.Status == http.StatusUnsupportedMediaType {
			herr.Message = "Content-Type must be application/json: signed JWT bodies (application/jwt) are not supported yet"
		}
		errs.WriteError(w, r, herr)
		return
	}
	in, verr := decodeCreate(body)
	if verr != nil {
		errs.write(w, r, verr.Status, verr.Problems)
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	resp, err := h.Service.Create(r.Context(), CreateInput{ApplicationID: p.ApplicationID, Request: *in, IdempotencyKey: key})
	var ve *ValidationError
	switch {
	case err == nil:
		if resp.Replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		httpx.WriteRawJSON(w, resp.Status, resp.Body)
	case errors.As(err, &ve):
		errs.write(w, r, ve.Status, ve.Problems)
	case errors.Is(err, idempotency.ErrKeyReused):
		errs.write(w, r, http.StatusUnprocessableEntity, []Problem{{Code: CodeErroIdempotencia,
			Detail: "Conteúdo da mensagem (claim data) diverge do conteúdo associado a esta chave de idempotência (x-idempotency-key)."}})
	default:
		h.Logger.ErrorContext(r.Context(), "create payment consent", "err", err)
		errs.WriteError(w, r, httpx.Internal())
	}
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
	p := httpx.PrincipalFrom(r.Context())
	c, err := h.Service.Get(r.Context(), p.ApplicationID, id)
	switch {
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
