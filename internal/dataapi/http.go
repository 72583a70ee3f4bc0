package dataapi

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Paths of the two APIs.
const (
	ResourcesPath = "/open-banking/resources/v3/resources"
	AccountsPath  = "/open-banking/accounts/v2/accounts"
	// ImportPath is the admin import (partner token, scope accounts.admin.write).
	ImportPath = "/admin/v1/customers/{document}/accounts/{number}/data"
)

// InteractionHeader is the FAPI interaction id header.
const InteractionHeader = "x-fapi-interaction-id"

// Page sizes of the specifications.
const (
	defaultPageSize       = 25
	maxPageSize           = 1000
	resourcesMinPageSize  = 25 // Resources 3.1.0: smaller values count as 25
	maxImportBody         = 32 << 20
	dateLayout            = "2006-01-02"
	transactionTimeLayout = "2006-01-02T15:04:05.000Z"
	secondsLayout         = "2006-01-02T15:04:05Z"
)

var interactionPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Handler serves the Resources v3 and Accounts 2.4.2 routes and the admin import.
type Handler struct {
	Service *Service
	// Tokens introspects the authorization server's access tokens.
	Tokens TokenVerifier
	// Admin verifies partner tokens for the import route.
	Admin httpx.TokenVerifier
	// Institution identifies accounts without an imported profile.
	Institution Institution
	// BaseURL is Ponte's public URL, the prefix of every link.
	BaseURL string
	Logger  *slog.Logger
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	type route struct {
		path, scope, perm string
		meta              metaKind
		fn                func(http.ResponseWriter, *http.Request, *Grant)
	}
	for _, r := range []route{
		{ResourcesPath, ScopeResources, PermResourcesRead, metaPlain, h.resources},
		{AccountsPath, ScopeAccounts, PermAccountsRead, metaPaged, h.accounts},
		{AccountsPath + "/{accountId}", ScopeAccounts, PermAccountsRead, metaPaged, h.account},
		{AccountsPath + "/{accountId}/balances", ScopeAccounts, PermBalancesRead, metaPaged, h.balances},
		{AccountsPath + "/{accountId}/overdraft-limits", ScopeAccounts, PermOverdraftLimitsRead, metaPaged, h.limits},
		{AccountsPath + "/{accountId}/transactions", ScopeAccounts, PermTransactionsRead, metaPlain, h.transactions(false)},
		{AccountsPath + "/{accountId}/transactions-current", ScopeAccounts, PermTransactionsRead, metaPlain, h.transactions(true)},
	} {
		mux.Handle("GET "+r.path, h.guard(r.scope, r.perm, r.meta, r.fn))
	}
	errs := httpx.OpenFinance{Now: h.Service.clock.Now}
	mux.Handle("POST "+ImportPath, httpx.Recover(errs, h.Logger, httpx.RequireScope(h.Admin, ScopeAdminWrite, errs, http.HandlerFunc(h.importData))))
}

// metaKind says which meta an endpoint's error responses carry: the Accounts
// API's single-resource routes answer errors with ResponseError, whose meta
// needs totalRecords and totalPages; the others with requestDateTime only.
type metaKind int

const (
	metaPlain metaKind = iota
	metaPaged
)

type errorItem struct {
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

type meta struct {
	TotalRecords    *int   `json:"totalRecords,omitempty"`
	TotalPages      *int   `json:"totalPages,omitempty"`
	RequestDateTime string `json:"requestDateTime"`
}

func (h *Handler) stamp() string { return h.Service.clock.Now().UTC().Format(secondsLayout) }

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, kind metaKind, e *httpx.Error) {
	code := e.Code
	if code == "" {
		code = map[int]string{400: "PARAMETRO_INVALIDO", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
			422: "PARAMETRO_INVALIDO", 500: "INTERNAL_SERVER_ERROR", 503: "SERVICE_UNAVAILABLE"}[e.Status]
	}
	body := struct {
		Errors []errorItem `json:"errors"`
		Meta   meta        `json:"meta"`
	}{Errors: []errorItem{{Code: code, Title: http.StatusText(e.Status), Detail: e.Message}}, Meta: meta{RequestDateTime: h.stamp()}}
	if kind == metaPaged {
		zero := 0
		body.Meta.TotalRecords, body.Meta.TotalPages = &zero, &zero
	}
	httpx.WriteJSON(w, r, e.Status, body)
}

// refusals are the service's refusals of access as the Open Finance data
// APIs answer them.
var refusals = []struct {
	err error
	out httpx.Error
}{
	{ErrNoConsent, httpx.Error{Status: http.StatusForbidden, Code: "FORBIDDEN",
		Message: "O token não está vinculado a um consentimento de compartilhamento de dados com o escopo desta API."}},
	{ErrConsentUnusable, httpx.Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED",
		Message: "O consentimento vinculado ao token não está com status AUTHORISED."}},
	{ErrMissingPermission, httpx.Error{Status: http.StatusForbidden, Code: "FORBIDDEN",
		Message: "O consentimento não possui a permissão necessária para este recurso."}},
	{ErrResourceNotGranted, httpx.Error{Status: http.StatusForbidden, Code: "FORBIDDEN",
		Message: "A conta solicitada não faz parte do consentimento."}},
	{ErrResourceTemporarilyUnavailable, httpx.Error{Status: http.StatusForbidden, Code: "STATUS_RESOURCE_TEMPORARILY_UNAVAILABLE",
		Message: "A conta está temporariamente indisponível na instituição transmissora."}},
	{ErrResourceUnavailable, httpx.Error{Status: http.StatusForbidden, Code: "STATUS_RESOURCE_UNAVAILABLE",
		Message: "A conta não está mais disponível na instituição transmissora."}},
}

// refusal is the answer to err when it is one of refusals, nil otherwise.
func refusal(err error) *httpx.Error {
	for _, m := range refusals {
		if errors.Is(err, m.err) {
			out := m.out
			return &out
		}
	}
	return nil
}

// importError is the answer to an import refused for what was sent, nil for
// any other error (a server fault).
func importError(err error) *httpx.Error {
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		fields := make([]httpx.FieldError, len(verr.Fields))
		for i, f := range verr.Fields {
			fields[i] = httpx.FieldError{Field: f.Field, Message: f.Message}
		}
		return &httpx.Error{Status: http.StatusBadRequest, Message: "invalid account data", Fields: fields}
	case errors.Is(err, ErrAccountNotFound):
		return &httpx.Error{Status: http.StatusNotFound, Code: "ACCOUNT_NOT_FOUND", Message: "the customer has no account with this number"}
	case errors.Is(err, ErrAccountAmbiguous):
		return &httpx.Error{Status: http.StatusConflict, Code: "ACCOUNT_AMBIGUOUS",
			Message: "the customer has several accounts with this number (at different institutions or agencies)"}
	case errors.Is(err, ErrUnsupportedFormat):
		return &httpx.Error{Status: http.StatusUnsupportedMediaType, Message: "send application/json or text/csv"}
	}
	return nil
}

func (h *Handler) internal(w http.ResponseWriter, r *http.Request, kind metaKind, what string, err error) {
	h.Logger.ErrorContext(r.Context(), what, "err", err)
	h.fail(w, r, kind, &httpx.Error{Status: http.StatusInternalServerError, Message: "Erro interno, tente novamente."})
}

// guard runs the checks every data route shares, in the specification's
// order: the interaction id (400 with a fresh one when missing or invalid),
// the bearer token (401), its certificate binding (401), the consent (401
// when not AUTHORISED or expired) and the route's permission (403).
func (h *Handler) guard(scope, perm string, kind metaKind, fn func(http.ResponseWriter, *http.Request, *Grant)) http.Handler {
	return httpx.Recover(httpx.OpenFinance{Now: h.Service.clock.Now}, h.Logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(InteractionHeader)
		if !interactionPattern.MatchString(id) {
			w.Header().Set(InteractionHeader, uuid.NewString())
			msg := "Cabeçalho " + InteractionHeader + " não é um UUID (RFC 4122)."
			code := "PARAMETRO_INVALIDO"
			if id == "" {
				msg, code = "Cabeçalho "+InteractionHeader+" obrigatório não informado.", "PARAMETRO_NAO_INFORMADO"
			}
			h.fail(w, r, kind, &httpx.Error{Status: http.StatusBadRequest, Code: code, Message: msg})
			return
		}
		w.Header().Set(InteractionHeader, id)
		raw, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			h.fail(w, r, kind, &httpx.Error{Status: http.StatusUnauthorized, Message: "Token de acesso não informado."})
			return
		}
		tok, err := h.Tokens.VerifyToken(r.Context(), raw)
		switch {
		case errors.Is(err, ErrInvalidToken):
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			h.fail(w, r, kind, &httpx.Error{Status: http.StatusUnauthorized, Message: "Token de acesso inválido ou expirado."})
			return
		case err != nil:
			h.internal(w, r, kind, "verify data access token", err)
			return
		}
		if tok.CertThumbprint != "" && !certMatches(r, tok.CertThumbprint) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			h.fail(w, r, kind, &httpx.Error{Status: http.StatusUnauthorized,
				Message: "O token está vinculado a um certificado de cliente que esta requisição não apresentou."})
			return
		}
		g, err := h.Service.Authorize(r.Context(), tok, scope, perm)
		he := refusal(err)
		switch {
		case he != nil:
			if he.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
			h.fail(w, r, kind, he)
			return
		case err != nil:
			h.internal(w, r, kind, "authorize data access", err)
			return
		}
		fn(w, r, g)
	}))
}

func bearer(v string) (string, bool) {
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func certMatches(r *http.Request, want string) bool {
	cert := httpx.ClientCertificate(r)
	return cert != nil && subtle.ConstantTimeCompare([]byte(httpx.CertThumbprint(cert)), []byte(want)) == 1
}

// paging is a request's page and page size.
type paging struct{ page, size int }

// parsePaging reads page and page-size. minSize > 1 raises smaller sizes to
// it (Resources 3.1.0); a size above 1000 is refused with 422.
func parsePaging(q url.Values, minSize int) (paging, *httpx.Error) {
	p := paging{page: 1, size: defaultPageSize}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 2147483647 {
			return p, &httpx.Error{Status: http.StatusBadRequest, Message: "Parâmetro page deve ser um inteiro de 1 a 2147483647."}
		}
		p.page = n
	}
	if v := q.Get("page-size"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 1:
			return p, &httpx.Error{Status: http.StatusBadRequest, Message: "Parâmetro page-size deve ser um inteiro positivo."}
		case n > maxPageSize:
			return p, &httpx.Error{Status: http.StatusUnprocessableEntity, Message: "Parâmetro page-size deve ser no máximo 1000."}
		}
		p.size = max(n, minSize)
	}
	if len(q.Get("pagination-key")) > 2048 {
		return p, &httpx.Error{Status: http.StatusBadRequest, Message: "Parâmetro pagination-key excede 2048 caracteres."}
	}
	return p, nil
}

// links builds the pagination links of a list at path with the request's
// other query parameters kept.
type links struct {
	base  string
	query url.Values
	size  int
}

func (h *Handler) linker(r *http.Request, size int) links {
	q := url.Values{}
	for k, v := range r.URL.Query() {
		if k != "page" && k != "page-size" {
			q[k] = v
		}
	}
	return links{base: h.BaseURL + r.URL.Path, query: q, size: size}
}

func (l links) page(n int) string {
	q := url.Values{}
	for k, v := range l.query {
		q[k] = v
	}
	q.Set("page", strconv.Itoa(n))
	q.Set("page-size", strconv.Itoa(l.size))
	return l.base + "?" + q.Encode()
}

type linkSet struct {
	Self  string `json:"self"`
	First string `json:"first,omitempty"`
	Prev  string `json:"prev,omitempty"`
	Next  string `json:"next,omitempty"`
	Last  string `json:"last,omitempty"`
}

// pagedLinks: first and prev on every page but the first, next and (when
// withLast) last on every page but the last.
func (l links) pagedLinks(page int, hasNext bool, lastPage int, withLast bool) linkSet {
	ls := linkSet{Self: l.page(page)}
	if page > 1 {
		ls.First, ls.Prev = l.page(1), l.page(min(page-1, max(lastPage, 1)))
	}
	if hasNext {
		ls.Next = l.page(page + 1)
		if withLast {
			ls.Last = l.page(lastPage)
		}
	}
	return ls
}

func totalPages(records, size int) int {
	if records == 0 {
		return 0
	}
	return (records + size - 1) / size
}

func pageSlice[T any](all []T, p paging) []T {
	start := (p.page - 1) * p.size
	if start >= len(all) || start < 0 {
		return []T{}
	}
	return all[start:min(start+p.size, len(all))]
}

type resourceData struct {
	ResourceID string `json:"resourceId"`
	Type       string `json:"type"`
	Status     string `json:"status"`
}

func (h *Handler) resources(w http.ResponseWriter, r *http.Request, g *Grant) {
	p, perr := parsePaging(r.URL.Query(), resourcesMinPageSize)
	if perr != nil {
		h.fail(w, r, metaPlain, perr)
		return
	}
	accts, err := h.Service.GrantedAccounts(r.Context(), g)
	if err != nil {
		h.internal(w, r, metaPlain, "list granted accounts", err)
		return
	}
	all := make([]resourceData, 0, len(accts))
	if g.Has(PermAccountsRead) {
		for _, a := range accts {
			all = append(all, resourceData{ResourceID: a.ID, Type: "ACCOUNT", Status: ResourceStatus(a)})
		}
	}
	h.writeList(w, r, "3.1.0", p, all)
}

func writeVersion(w http.ResponseWriter, v string) { w.Header().Set("x-v", v) }

// writeList writes one page of an in-memory list with totals.
func (h *Handler) writeList(w http.ResponseWriter, r *http.Request, version string, p paging, all any) {
	var n int
	var data any
	switch v := all.(type) {
	case []resourceData:
		n, data = len(v), pageSlice(v, p)
	case []accountData:
		n, data = len(v), pageSlice(v, p)
	}
	pages := totalPages(n, p.size)
	body := struct {
		Data  any     `json:"data"`
		Links linkSet `json:"links"`
		Meta  meta    `json:"meta"`
	}{Data: data, Links: h.linker(r, p.size).pagedLinks(p.page, p.page < pages, pages, true),
		Meta: meta{TotalRecords: &n, TotalPages: &pages, RequestDateTime: h.stamp()}}
	writeVersion(w, version)
	httpx.WriteJSON(w, r, http.StatusOK, body)
}

type accountData struct {
	BrandName   string `json:"brandName"`
	CompanyCnpj string `json:"companyCnpj"`
	Type        string `json:"type"`
	CompeCode   string `json:"compeCode"`
	BranchCode  string `json:"branchCode,omitempty"`
	Number      string `json:"number"`
	CheckDigit  string `json:"checkDigit"`
	AccountID   string `json:"accountId"`
}

// splitNumber turns a customers account number (check digit included) into
// the API's number (8-20 digits, zero-padded) and check digit.
func splitNumber(n string) (number, check string) {
	if n == "" {
		return "00000000", "0"
	}
	number, check = n[:len(n)-1], n[len(n)-1:]
	if len(number) < 8 {
		number = strings.Repeat("0", 8-len(number)) + number
	}
	return number, check
}

func (h *Handler) profile(a *Account) Profile {
	if a.Profile != nil {
		return *a.Profile
	}
	return Profile{CompeCode: h.Institution.CompeCode, BrandName: h.Institution.BrandName, CompanyCNPJ: h.Institution.CompanyCNPJ, Subtype: subtypes[0]}
}

func (h *Handler) accounts(w http.ResponseWriter, r *http.Request, g *Grant) {
	q := r.URL.Query()
	p, perr := parsePaging(q, 1)
	if perr != nil {
		h.fail(w, r, metaPaged, perr)
		return
	}
	want := q.Get("accountType")
	if want != "" && !slices.Contains([]string{"CONTA_DEPOSITO_A_VISTA", "CONTA_POUPANCA", "CONTA_PAGAMENTO_PRE_PAGA"}, want) {
		h.fail(w, r, metaPaged, &httpx.Error{Status: http.StatusBadRequest, Message: "Parâmetro accountType inválido."})
		return
	}
	accts, err := h.Service.GrantedAccounts(r.Context(), g)
	if err != nil {
		h.internal(w, r, metaPaged, "list granted accounts", err)
		return
	}
	all := make([]accountData, 0, len(accts))
	for _, a := range accts {
		typ := accountTypes[a.AccountType]
		if (want != "" && typ != want) || ResourceStatus(a) != "AVAILABLE" {
			continue
		}
		pr := h.profile(a)
		number, check := splitNumber(a.Number)
		all = append(all, accountData{BrandName: pr.BrandName, CompanyCnpj: pr.CompanyCNPJ, Type: typ, CompeCode: pr.CompeCode,
			BranchCode: a.Issuer, Number: number, CheckDigit: check, AccountID: a.ID})
	}
	h.writeList(w, r, "2.4.2", p, all)
}

// grantedAccount resolves the path's accountId within the grant.
func (h *Handler) grantedAccount(w http.ResponseWriter, r *http.Request, kind metaKind, g *Grant) (*Account, bool) {
	id := r.PathValue("accountId")
	if !idPattern.MatchString(id) {
		h.fail(w, r, kind, &httpx.Error{Status: http.StatusBadRequest, Message: "Parâmetro accountId não obedece as regras de formatação esperadas."})
		return nil, false
	}
	a, err := h.Service.GrantedAccount(r.Context(), g, id)
	he := refusal(err)
	switch {
	case he != nil:
		h.fail(w, r, kind, he)
		return nil, false
	case err != nil:
		h.internal(w, r, kind, "get granted account", err)
		return nil, false
	}
	return a, true
}

// single writes a one-resource response: its data, links.self and meta 1/1.
func (h *Handler) single(w http.ResponseWriter, r *http.Request, data any) {
	one := 1
	writeVersion(w, "2.4.2")
	httpx.WriteJSON(w, r, http.StatusOK, struct {
		Data  any     `json:"data"`
		Links linkSet `json:"links"`
		Meta  meta    `json:"meta"`
	}{Data: data, Links: linkSet{Self: h.BaseURL + r.URL.Path}, Meta: meta{TotalRecords: &one, TotalPages: &one, RequestDateTime: h.stamp()}})
}

type amount struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

func (h *Handler) account(w http.ResponseWriter, r *http.Request, g *Grant) {
	a, ok := h.grantedAccount(w, r, metaPaged, g)
	if !ok {
		return
	}
	number, check := splitNumber(a.Number)
	h.single(w, r, struct {
		CompeCode  string `json:"compeCode"`
		BranchCode string `json:"branchCode,omitempty"`
		Number     string `json:"number"`
		CheckDigit string `json:"checkDigit"`
		Type       string `json:"type"`
		Subtype    string `json:"subtype"`
		Currency   string `json:"currency"`
	}{h.profile(a).CompeCode, a.Issuer, number, check, accountTypes[a.AccountType], h.profile(a).Subtype, a.Currency})
}

func (h *Handler) balances(w http.ResponseWriter, r *http.Request, g *Grant) {
	a, ok := h.grantedAccount(w, r, metaPaged, g)
	if !ok {
		return
	}
	b, err := h.Service.Balances(r.Context(), a)
	if err != nil {
		h.internal(w, r, metaPaged, "get balances", err)
		return
	}
	h.single(w, r, struct {
		AvailableAmount             amount `json:"availableAmount"`
		BlockedAmount               amount `json:"blockedAmount"`
		AutomaticallyInvestedAmount amount `json:"automaticallyInvestedAmount"`
		UpdateDateTime              string `json:"updateDateTime"`
	}{amount{b.AvailableAmount, b.Currency}, amount{b.BlockedAmount, b.Currency}, amount{b.AutomaticallyInvestedAmount, b.Currency},
		b.UpdatedAt.UTC().Format(secondsLayout)})
}

func (h *Handler) limits(w http.ResponseWriter, r *http.Request, g *Grant) {
	a, ok := h.grantedAccount(w, r, metaPaged, g)
	if !ok {
		return
	}
	l, err := h.Service.OverdraftLimits(r.Context(), a)
	if err != nil {
		h.internal(w, r, metaPaged, "get overdraft limits", err)
		return
	}
	opt := func(v string) *amount {
		if v == "" {
			return nil
		}
		return &amount{v, l.Currency}
	}
	h.single(w, r, struct {
		Contracted *amount `json:"overdraftContractedLimit,omitempty"`
		Used       *amount `json:"overdraftUsedLimit,omitempty"`
		Unarranged *amount `json:"unarrangedOverdraftAmount,omitempty"`
	}{opt(l.ContractedAmount), opt(l.UsedAmount), opt(l.UnarrangedAmount)})
}

// transactionFilter reads fromBookingDate/toBookingDate (both or neither;
// neither means today) and creditDebitIndicator. /transactions allows 12
// months back and 12 ahead; /transactions-current 7 days back (D-6) and 12
// months ahead.
func (h *Handler) transactionFilter(q url.Values, current bool) (TransactionFilter, *httpx.Error) {
	today := h.Service.clock.Now().In(brazil)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, brazil)
	f := TransactionFilter{From: today, To: today, CreditDebit: q.Get("creditDebitIndicator")}
	if f.CreditDebit != "" && !slices.Contains(creditDebitTypes, f.CreditDebit) {
		return f, &httpx.Error{Status: http.StatusBadRequest, Message: "Parâmetro creditDebitIndicator deve ser CREDITO ou DEBITO."}
	}
	from, to := q.Get("fromBookingDate"), q.Get("toBookingDate")
	if from == "" && to == "" {
		return f, nil
	}
	if from == "" || to == "" {
		return f, &httpx.Error{Status: http.StatusBadRequest, Code: "PARAMETRO_NAO_INFORMADO",
			Message: "Os parâmetros fromBookingDate e toBookingDate devem ser informados juntos."}
	}
	var err1, err2 error
	f.From, err1 = time.ParseInLocation(dateLayout, from, brazil)
	f.To, err2 = time.ParseInLocation(dateLayout, to, brazil)
	if err1 != nil || err2 != nil {
		return f, &httpx.Error{Status: http.StatusBadRequest, Message: "Datas de filtragem devem estar no formato AAAA-MM-DD."}
	}
	earliest := today.AddDate(-1, 0, 0)
	if current {
		earliest = today.AddDate(0, 0, -6)
	}
	switch {
	case f.From.After(f.To):
		return f, &httpx.Error{Status: http.StatusUnprocessableEntity, Message: "fromBookingDate deve ser anterior ou igual a toBookingDate."}
	case f.From.Before(earliest) && current:
		return f, &httpx.Error{Status: http.StatusUnprocessableEntity, Message: "fromBookingDate deve estar nos últimos 7 dias (D-6)."}
	case f.From.Before(earliest):
		return f, &httpx.Error{Status: http.StatusUnprocessableEntity, Message: "O período de consulta se estende no máximo 12 meses no passado."}
	case f.To.After(today.AddDate(1, 0, 0)):
		return f, &httpx.Error{Status: http.StatusUnprocessableEntity, Message: "O período de consulta se estende no máximo 12 meses no futuro."}
	}
	return f, nil
}

type transactionData struct {
	TransactionID                  string `json:"transactionId"`
	CompletedAuthorisedPaymentType string `json:"completedAuthorisedPaymentType"`
	CreditDebitType                string `json:"creditDebitType"`
	TransactionName                string `json:"transactionName"`
	Type                           string `json:"type"`
	TransactionAmount              amount `json:"transactionAmount"`
	TransactionDateTime            string `json:"transactionDateTime"`
	PartieCnpjCpf                  string `json:"partieCnpjCpf,omitempty"`
	PartiePersonType               string `json:"partiePersonType,omitempty"`
	PartieCompeCode                string `json:"partieCompeCode,omitempty"`
	PartieBranchCode               string `json:"partieBranchCode,omitempty"`
	PartieNumber                   string `json:"partieNumber,omitempty"`
	PartieCheckDigit               string `json:"partieCheckDigit,omitempty"`
}

// transactions serves /transactions and /transactions-current: one page,
// newest first. The specification's transaction responses carry no totals
// (meta is requestDateTime only, links have no last), so a page reads one
// row more than it shows to know whether a next page exists.
func (h *Handler) transactions(current bool) func(http.ResponseWriter, *http.Request, *Grant) {
	return func(w http.ResponseWriter, r *http.Request, g *Grant) {
		q := r.URL.Query()
		p, perr := parsePaging(q, 1)
		if perr != nil {
			h.fail(w, r, metaPlain, perr)
			return
		}
		f, ferr := h.transactionFilter(q, current)
		if ferr != nil {
			h.fail(w, r, metaPlain, ferr)
			return
		}
		a, ok := h.grantedAccount(w, r, metaPlain, g)
		if !ok {
			return
		}
		offset := int64(p.page-1) * int64(p.size)
		if offset > 1<<40 {
			offset = 1 << 40
		}
		// The page is written as the encoding/json form of
		// {"data": [...], "links": ..., "meta": ...} would be, with data the
		// stored bodies (encodeTransaction) copied in: one buffer, one write.
		bp := pageBuffers.Get().(*[]byte)
		defer putPageBuffer(bp)
		buf := append((*bp)[:0], `{"data":[`...)
		buf, hasNext, err := h.Service.appendTransactionPage(r.Context(), buf, a.ID, f, p.size, int(offset))
		if err != nil {
			h.internal(w, r, metaPlain, "list transactions", err)
			return
		}
		l := h.linker(r, p.size)
		ls := linkSet{Self: l.page(p.page)}
		if p.page > 1 {
			ls.First, ls.Prev = l.page(1), l.page(p.page-1)
		}
		if hasNext {
			ls.Next = l.page(p.page + 1)
		}
		tail, err := httpx.Marshal(struct {
			Links linkSet `json:"links"`
			Meta  meta    `json:"meta"`
		}{Links: ls, Meta: meta{RequestDateTime: h.stamp()}})
		if err != nil {
			h.internal(w, r, metaPlain, "encode transactions page", err)
			return
		}
		buf = append(buf, "],"...)
		buf = append(buf, tail[1:]...) // "links":...,"meta":...}
		*bp = buf
		writeVersion(w, "2.4.2")
		httpx.WriteRawJSON(w, http.StatusOK, buf)
	}
}

// pageBuffers holds transaction page buffers (a 1,000-transaction page is
// about 370 KB) for reuse.
var pageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func putPageBuffer(bp *[]byte) {
	if cap(*bp) <= 4<<20 {
		pageBuffers.Put(bp)
	}
}

// transactionJSON is a transaction as the Accounts API shows it.
func transactionJSON(t *Transaction) transactionData {
	return transactionData{TransactionID: t.TransactionID, CompletedAuthorisedPaymentType: t.CompletedAuthorisedPaymentType,
		CreditDebitType: t.CreditDebitType, TransactionName: t.TransactionName, Type: t.Type,
		TransactionAmount: amount{t.Amount, t.Currency},
		// the stored booked_at is Unix milliseconds: what the API shows
		TransactionDateTime: time.UnixMilli(t.TransactionDateTime.UnixMilli()).UTC().Format(transactionTimeLayout),
		PartieCnpjCpf:       t.PartieCnpjCpf, PartiePersonType: t.PartiePersonType, PartieCompeCode: t.PartieCompeCode,
		PartieBranchCode: t.PartieBranchCode, PartieNumber: t.PartieNumber, PartieCheckDigit: t.PartieCheckDigit}
}

// encodeTransaction is the stored body of t: its Accounts API JSON object,
// byte for byte what httpx.WriteJSON writes for it.
func encodeTransaction(t *Transaction) (string, error) {
	b, err := httpx.Marshal(transactionJSON(t))
	if err != nil {
		return "", fmt.Errorf("dataapi: encode transaction: %w", err)
	}
	return string(b), nil
}

// importData serves the admin import: the partner loads account data for one
// of its customers' accounts (JSON document or CSV transactions).
func (h *Handler) importData(w http.ResponseWriter, r *http.Request) {
	errs := httpx.OpenFinance{Now: h.Service.clock.Now}
	p := httpx.PrincipalFrom(r.Context())
	body := http.MaxBytesReader(w, r.Body, maxImportBody)
	d, err := Decode(body, r.Header.Get("Content-Type"))
	if err == nil {
		_, err = io.Copy(io.Discard, body)
	}
	if errors.Is(err, httpx.ErrBadText) {
		// Past the first MiB the edge checks the text as it is read here.
		err = httpx.BadTextError("body")
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		errs.WriteError(w, r, &httpx.Error{Status: http.StatusRequestEntityTooLarge, Message: "request body exceeds 32 MiB"})
		return
	}
	var res *ImportResult
	if err == nil {
		res, err = h.Service.Import(r.Context(), p.ApplicationID, r.PathValue("document"), r.PathValue("number"), d)
	}
	var he *httpx.Error
	if !errors.As(err, &he) { // the edge's bad text, above, is already an answer
		he = importError(err)
	}
	switch {
	case he != nil:
		errs.WriteError(w, r, he)
	case err != nil:
		h.Logger.ErrorContext(r.Context(), "import account data", "err", err)
		errs.WriteError(w, r, httpx.Internal())
	default:
		h.Logger.InfoContext(r.Context(), "account data imported", "account_id", res.AccountID, "transactions", res.Transactions)
		httpx.WriteJSON(w, r, http.StatusOK, res)
	}
}
