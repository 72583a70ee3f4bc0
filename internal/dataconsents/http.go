package dataconsents

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Scope is the access-token scope of the consent routes.
const Scope = "consents"

// Version is the x-v response header: the specification implemented.
const Version = "3.3.1"

// Header names of the specification.
const (
	InteractionHeader = "x-fapi-interaction-id"
	CustomerIPHeader  = "x-fapi-customer-ip-address"
	UserAgentHeader   = "x-customer-user-agent"
)

var interactionPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Handler serves the Consents API v3 routes.
type Handler struct {
	Service  *Service
	Verifier httpx.TokenVerifier
	Logger   *slog.Logger
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	route := func(fn http.HandlerFunc) http.Handler {
		return h.interaction(httpx.RequireScope(h.Verifier, Scope, h, fn))
	}
	mux.Handle("POST "+ConsentsPath, route(h.create))
	mux.Handle("GET "+ConsentsPath+"/{consentId}", route(h.get))
	mux.Handle("DELETE "+ConsentsPath+"/{consentId}", route(h.delete))
	mux.Handle("POST "+ConsentsPath+"/{consentId}/extends", route(h.extend))
	mux.Handle("GET "+ConsentsPath+"/{consentId}/extensions", route(h.extensions))
}

type errorItem struct {
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

type meta struct {
	RequestDateTime string `json:"requestDateTime"`
}

type errorBody struct {
	Errors []errorItem `json:"errors"`
	Meta   meta        `json:"meta"`
}

// statusCodes are the codes of errors without a specific one.
var statusCodes = map[int]string{
	http.StatusBadRequest:           CodeParametroInvalido,
	http.StatusUnauthorized:         "UNAUTHORIZED",
	http.StatusForbidden:            "FORBIDDEN",
	http.StatusNotFound:             "NOT_FOUND",
	http.StatusUnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
	http.StatusInternalServerError:  "INTERNAL_SERVER_ERROR",
	http.StatusServiceUnavailable:   "SERVICE_UNAVAILABLE",
}

// WriteError implements httpx.ErrorWriter in the specification's shape.
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, e *httpx.Error) {
	code := e.Code
	if code == "" {
		if code = statusCodes[e.Status]; code == "" {
			code = strings.ToUpper(strings.ReplaceAll(http.StatusText(e.Status), " ", "_"))
		}
	}
	detail := e.Message
	for i, f := range e.Fields {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		detail += sep + f.Field + " " + f.Message
	}
	h.writeProblems(w, r, e.Status, Problem{Code: code, Detail: detail})
}

func (h *Handler) writeProblems(w http.ResponseWriter, r *http.Request, status int, problems ...Problem) {
	body := errorBody{Meta: meta{RequestDateTime: formatTime(h.Service.Clock.Now())}}
	for _, p := range problems {
		title := titles[p.Code]
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
	httpx.WriteJSON(w, r, status, body)
}

func (h *Handler) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.Logger.ErrorContext(r.Context(), what, "err", err)
	h.WriteError(w, r, httpx.Internal())
}

// interaction echoes a valid x-fapi-interaction-id; a missing or invalid one
// is replaced by a new UUID and the request refused with 400, as the
// specification says. Every response names the version implemented (x-v).
func (h *Handler) interaction(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-v", Version)
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
		h.writeProblems(w, r, http.StatusBadRequest, p)
	})
}

// decodeData reads a JSON body {"data": {...}} into dst, writing the refusal
// (400 malformed or of the wrong types, 415 another media type) when it fails.
func decodeData[T any](h *Handler, w http.ResponseWriter, r *http.Request) (*T, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			h.writeProblems(w, r, http.StatusUnsupportedMediaType, Problem{Code: "UNSUPPORTED_MEDIA_TYPE", Detail: "Content-Type deve ser application/json."})
			return nil, false
		}
	}
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		h.WriteError(w, r, herr)
		return nil, false
	}
	data, verr := DecodeData[T](body)
	if verr != nil {
		h.writeProblems(w, r, verr.Status, verr.Problems...)
		return nil, false
	}
	return data, true
}

// DecodeData decodes a body {"data": {...}}: malformed JSON, a value of the
// wrong type and a missing data are 400s (the schema's errors).
func DecodeData[T any](body []byte) (*T, *ValidationError) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, badRequest(CodeParametroInvalido, "O corpo da requisição não é um objeto JSON válido.")
	}
	var in struct {
		Data *T `json:"data"`
	}
	if err := json.Unmarshal(trimmed, &in); err != nil {
		field := "data"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			field = te.Field
		}
		return nil, badRequest(CodeParametroInvalido, fmt.Sprintf("Parâmetro %s não obedece as regras de formatação esperadas.", field))
	}
	if in.Data == nil {
		return nil, badRequest(CodeParametroNaoInformado, "Parâmetro data obrigatório não informado.")
	}
	return in.Data, nil
}

// consentID reads and checks the path's consentId.
func (h *Handler) consentID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("consentId")
	if len(id) < 6 || len(id) > 256 || !ConsentIDPattern.MatchString(id) {
		h.writeProblems(w, r, http.StatusBadRequest, Problem{Code: CodeParametroInvalido, Detail: "Parâmetro consentId não obedece as regras de formatação esperadas."})
		return "", false
	}
	return id, true
}

// ConsentData is the response's data object (ResponseConsentRead.data).
type ConsentData struct {
	ConsentID            string     `json:"consentId"`
	CreationDateTime     string     `json:"creationDateTime"`
	Status               Status     `json:"status"`
	StatusUpdateDateTime string     `json:"statusUpdateDateTime"`
	Permissions          []string   `json:"permissions"`
	ExpirationDateTime   string     `json:"expirationDateTime,omitempty"`
	Rejection            *Rejection `json:"rejection,omitempty"`
	Journey              *Journey   `json:"journey,omitempty"`
}

// Journey is the response's journey object (Jornada Otimizada).
type Journey struct {
	IsLinked bool `json:"isLinked"`
}

// Links is the response's links.
type Links struct {
	Self  string `json:"self"`
	First string `json:"first,omitempty"`
	Prev  string `json:"prev,omitempty"`
	Next  string `json:"next,omitempty"`
	Last  string `json:"last,omitempty"`
}

// ConsentResponse is the body of the 201 and 200 consent responses.
type ConsentResponse struct {
	Data  ConsentData `json:"data"`
	Links Links       `json:"links"`
	Meta  meta        `json:"meta"`
}

func (h *Handler) response(c *Consent, read bool) ConsentResponse {
	d := ConsentData{
		ConsentID: c.ID, CreationDateTime: formatTime(c.CreatedAt), Status: c.Status,
		StatusUpdateDateTime: formatTime(c.StatusUpdatedAt), Permissions: c.Permissions,
	}
	if !c.ExpiresAt.IsZero() {
		d.ExpirationDateTime = formatTime(c.ExpiresAt)
	}
	if read {
		d.Rejection = c.Rejection
		if c.IsLinked {
			d.Journey = &Journey{IsLinked: true}
		}
	}
	return ConsentResponse{Data: d, Links: Links{Self: h.Service.SelfURL(c.ID)}, Meta: meta{RequestDateTime: formatTime(h.Service.Clock.Now())}}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, what string) {
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		h.writeProblems(w, r, verr.Status, verr.Problems...)
	case errors.Is(err, ErrNotFound):
		h.writeProblems(w, r, http.StatusNotFound, Problem{Code: "NOT_FOUND", Detail: "Consentimento não encontrado."})
	default:
		h.internal(w, r, what, err)
	}
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	data, ok := decodeData[CreateRequest](h, w, r)
	if !ok {
		return
	}
	c, err := h.Service.Create(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, *data)
	if err != nil {
		h.fail(w, r, err, "create data consent")
		return
	}
	httpx.WriteJSON(w, r, http.StatusCreated, h.response(c, false))
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id, ok := h.consentID(w, r)
	if !ok {
		return
	}
	c, err := h.Service.Get(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, id)
	if err != nil {
		h.fail(w, r, err, "get data consent")
		return
	}
	httpx.WriteJSON(w, r, http.StatusOK, h.response(c, true))
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := h.consentID(w, r)
	if !ok {
		return
	}
	err := h.Service.Delete(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, id)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrAlreadyRejected):
		h.writeProblems(w, r, http.StatusUnprocessableEntity, Problem{Code: CodeConsentimentoRejeitado,
			Detail: "O consentimento já se encontra no status REJECTED."})
	default:
		h.fail(w, r, err, "delete data consent")
	}
}

func (h *Handler) extend(w http.ResponseWriter, r *http.Request) {
	id, ok := h.consentID(w, r)
	if !ok {
		return
	}
	p := httpx.PrincipalFrom(r.Context())
	if !p.HasScope("consent:" + id) {
		h.writeProblems(w, r, http.StatusForbidden, Problem{Code: "FORBIDDEN",
			Detail: "A renovação exige um token authorization_code com o escopo consent:" + id + "."})
		return
	}
	ip, ua := strings.TrimSpace(r.Header.Get(CustomerIPHeader)), strings.TrimSpace(r.Header.Get(UserAgentHeader))
	for _, hd := range []struct{ name, v string }{{CustomerIPHeader, ip}, {UserAgentHeader, ua}} {
		if hd.v == "" {
			h.writeProblems(w, r, http.StatusBadRequest, Problem{Code: CodeParametroNaoInformado, Detail: "Cabeçalho " + hd.name + " obrigatório não informado."})
			return
		}
	}
	if len(ip) > 100 || len(ua) > 255 {
		h.writeProblems(w, r, http.StatusBadRequest, Problem{Code: CodeParametroInvalido, Detail: "Cabeçalhos x-fapi-customer-ip-address (até 100) ou x-customer-user-agent (até 255) longos demais."})
		return
	}
	data, ok := decodeData[ExtendRequest](h, w, r)
	if !ok {
		return
	}
	c, err := h.Service.Extend(r.Context(), ExtendInput{ApplicationID: p.ApplicationID, ConsentID: id, Request: *data, CustomerIP: ip, UserAgent: ua})
	if err != nil {
		h.fail(w, r, err, "extend data consent")
		return
	}
	httpx.WriteJSON(w, r, http.StatusCreated, h.response(c, false))
}

// ExtensionJSON is one item of GET /extensions.
type ExtensionJSON struct {
	ExpirationDateTime         string `json:"expirationDateTime,omitempty"`
	LoggedUser                 Party  `json:"loggedUser"`
	RequestDateTime            string `json:"requestDateTime"`
	PreviousExpirationDateTime string `json:"previousExpirationDateTime,omitempty"`
	XFapiCustomerIPAddress     string `json:"xFapiCustomerIpAddress"`
	XCustomerUserAgent         string `json:"xCustomerUserAgent"`
}

type extensionsMeta struct {
	TotalRecords    int    `json:"totalRecords"`
	TotalPages      int    `json:"totalPages"`
	RequestDateTime string `json:"requestDateTime"`
}

type extensionsResponse struct {
	Data  []ExtensionJSON `json:"data"`
	Links Links           `json:"links"`
	Meta  extensionsMeta  `json:"meta"`
}

// pageParam reads a positive integer query parameter with its bounds.
func pageParam(q url.Values, name string, def, lo, hi int) (int, bool) {
	v := q.Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > hi {
		return 0, false
	}
	return max(n, lo), true
}

func (h *Handler) extensions(w http.ResponseWriter, r *http.Request) {
	id, ok := h.consentID(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	page, ok1 := pageParam(q, "page", 1, 1, math.MaxInt32)
	size, ok2 := pageParam(q, "page-size", 25, 25, 1000)
	if !ok1 || !ok2 {
		h.writeProblems(w, r, http.StatusBadRequest, Problem{Code: CodeParametroInvalido, Detail: "Parâmetros page (≥ 1) e page-size (até 1000) devem ser inteiros."})
		return
	}
	list, total, err := h.Service.Extensions(r.Context(), httpx.PrincipalFrom(r.Context()).ApplicationID, id, page, size)
	if err != nil {
		h.fail(w, r, err, "list data consent extensions")
		return
	}
	pages := (total + size - 1) / size
	out := extensionsResponse{Data: []ExtensionJSON{}, Meta: extensionsMeta{TotalRecords: total, TotalPages: pages, RequestDateTime: formatTime(h.Service.Clock.Now())}}
	for _, e := range list {
		j := ExtensionJSON{LoggedUser: e.LoggedUser, RequestDateTime: formatTime(e.RequestedAt), XFapiCustomerIPAddress: e.CustomerIP, XCustomerUserAgent: e.UserAgent}
		if !e.ExpiresAt.IsZero() {
			j.ExpirationDateTime = formatTime(e.ExpiresAt)
		}
		if !e.PreviousExpiresAt.IsZero() {
			j.PreviousExpirationDateTime = formatTime(e.PreviousExpiresAt)
		}
		out.Data = append(out.Data, j)
	}
	link := func(p int) string {
		return fmt.Sprintf("%s/extensions?page=%d&page-size=%d", h.Service.SelfURL(id), p, size)
	}
	out.Links.Self = link(page)
	if page > 1 {
		out.Links.First, out.Links.Prev = link(1), link(min(page-1, max(pages, 1)))
	}
	if page < pages {
		out.Links.Next, out.Links.Last = link(page+1), link(pages)
	}
	httpx.WriteJSON(w, r, http.StatusOK, out)
}
