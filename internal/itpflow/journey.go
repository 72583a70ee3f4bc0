package itpflow

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/fapiclient"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/itp"
	"github.com/ponte-ofb/ponte/internal/ofb"
)

// Hosted journey routes (issue 6 §3).
const (
	routeJourneyPage     = "GET /journey/{journeyId}"
	routeJourneyConfirm  = "POST /journey/{journeyId}/confirm"
	routeJourneyCancel   = "POST /journey/{journeyId}/cancel"
	routeCallbackPage    = "GET /journey/callback"
	routeCallbackPost    = "POST /journey/callback"
	CallbackPath         = "/journey/callback"
	RecurringConsentPath = "/open-banking/automatic-payments/v2/recurring-consents"
)

// SettingSweepingConfiguration is the journey (or session) setting with the
// sweeping limits Ponte asks the brand for: an object shaped like the
// Automatic Payments v2 recurringConfiguration.sweeping. Without it the
// consent carries no limits of its own (the holder's apply).
const SettingSweepingConfiguration = "SWEEPING_CONFIGURATION"

// JourneyHandler serves the hosted journey page of journey sessions and the
// callback that brands send the user back to.
type JourneyHandler struct {
	Flow     *Flow
	Sessions *itp.Service
	Pages    *template.Template
	Logger   *slog.Logger
	// PublicURL is Ponte's public URL: the callback is PublicURL + CallbackPath.
	PublicURL string
}

// Register adds the routes to mux.
func (h *JourneyHandler) Register(mux *http.ServeMux) {
	errs := httpx.OpenFinance{Now: h.Flow.Clock.Now}
	wrap := func(fn http.HandlerFunc) http.Handler { return httpx.Recover(errs, h.Logger, fn) }
	mux.Handle(routeJourneyPage, wrap(h.page))
	mux.Handle(routeJourneyConfirm, wrap(h.confirm))
	mux.Handle(routeJourneyCancel, wrap(h.cancel))
	mux.Handle(routeCallbackPage, wrap(h.callbackPage))
	mux.Handle(routeCallbackPost, wrap(h.callback))
}

// pageCSP: the page's only forms post to Ponte, but browsers also apply
// form-action to the redirect that follows (to the brand's authorize URL, or
// the partner's redirectUrl), which can be any institution's origin.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'"

type brandOption struct {
	ID, Name, Initials string
	Selected           bool
}

type sessionPage struct {
	JourneyID, SessionID, Token string
	Status                      string
	Brands                      []brandOption
	Limits                      []string
	Document, Name, Error       string
	AuthorizationURL            string
	Final                       bool
	BackURL                     string
	ExpiresAt                   string
}

type errorPage struct{ Title, Message string }

func (h *JourneyHandler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := h.Pages.ExecuteTemplate(&buf, name, data); err != nil {
		h.Logger.ErrorContext(r.Context(), "render journey page", "page", name, "err", err)
		http.Error(w, "Falha temporária", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *JourneyHandler) fail(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	h.render(w, r, status, "ticket_error", errorPage{title, message})
}

// session finds the session the link or form names, by its token.
func (h *JourneyHandler) session(w http.ResponseWriter, r *http.Request, id, token string) *itp.Session {
	sess, err := h.Sessions.SessionByToken(r.Context(), id, token)
	if err == nil && sess.JourneyID != r.PathValue("journeyId") {
		err = itp.ErrNotFound
	}
	switch {
	case err == nil:
	case errors.Is(err, itp.ErrNotFound):
		h.fail(w, r, http.StatusNotFound, "Link inválido", "Não encontramos esta jornada. Volte ao aplicativo e tente de novo.")
		return nil
	default:
		h.Logger.ErrorContext(r.Context(), "journey page: session", "err", err)
		h.fail(w, r, http.StatusInternalServerError, "Falha temporária", "Não foi possível abrir a jornada agora. Tente novamente em instantes.")
		return nil
	}
	if !h.Flow.Clock.Now().Before(sess.ExpiresAt) && !final(sess.Status) {
		if expired, err := h.Sessions.VerifyExpired(r.Context(), sess.ApplicationID, sess.ID); err == nil {
			sess = expired
		}
	}
	return sess
}

func final(s itp.Status) bool {
	switch s {
	case itp.StatusFinished, itp.StatusRejected, itp.StatusCancelled, itp.StatusExpired:
		return true
	}
	return false
}

func (h *JourneyHandler) page(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if api := q.Get("api"); api != "" && api != "SWEEPING_ACCOUNTS_V2" {
		h.fail(w, r, http.StatusNotFound, "Link inválido", "Esta jornada não é de transferências automáticas (Sweeping Accounts).")
		return
	}
	sess := h.session(w, r, q.Get("id"), q.Get("token"))
	if sess == nil {
		return
	}
	h.show(w, r, sess, q.Get("token"), "", "", "", http.StatusOK)
}

func (h *JourneyHandler) show(w http.ResponseWriter, r *http.Request, sess *itp.Session, token, document, name, problem string, status int) {
	data := sessionPage{JourneyID: sess.JourneyID, SessionID: sess.ID, Token: token, Status: string(sess.Status),
		Document: document, Name: name, Error: problem, Final: final(sess.Status),
		ExpiresAt: sess.ExpiresAt.In(time.FixedZone("BRT", -3*3600)).Format("15:04")}
	switch {
	case data.Final || sess.Status == itp.StatusAuthorised:
		data.BackURL = backURL(sess)
	case sess.Status == itp.StatusAwaitingAuthorisation:
		if a, err := h.Flow.ForSession(r.Context(), sess.ID); err == nil && a.Status == StatusPending {
			data.AuthorizationURL = a.AuthorizationURL
		}
	default:
		brands, err := h.offered(r.Context(), sess)
		if err != nil {
			h.Logger.ErrorContext(r.Context(), "journey page: brands", "err", err)
			h.fail(w, r, http.StatusInternalServerError, "Falha temporária", "Não foi possível listar as instituições agora.")
			return
		}
		data.Brands = brands
		data.Limits = describeSweeping(sweepingConfiguration(sess))
	}
	h.render(w, r, status, "journey_session", data)
}

// offered lists the brands the session's journey offers, enabled, ordered by
// PRIORITIES_BRANDS, the session's brandId preselected.
func (h *JourneyHandler) offered(ctx context.Context, sess *itp.Session) ([]brandOption, error) {
	j, err := h.Sessions.Journey(ctx, sess.JourneyID)
	if err != nil {
		return nil, err
	}
	all, err := h.Sessions.Brands(ctx)
	if err != nil {
		return nil, err
	}
	var priorities []string
	_ = json.Unmarshal(sess.Setting(itp.SettingPrioritiesBrands), &priorities)
	var out []brandOption
	for _, b := range all {
		if !b.Enabled || (len(j.BrandIDs) > 0 && !slices.Contains(j.BrandIDs, b.ID)) {
			continue
		}
		out = append(out, brandOption{ID: b.ID, Name: b.Name, Initials: initials(b.Name), Selected: b.ID == sess.BrandID})
	}
	rank := func(id string) int {
		if i := slices.Index(priorities, id); i >= 0 {
			return i
		}
		return len(priorities)
	}
	slices.SortStableFunc(out, func(a, b brandOption) int { return rank(a.ID) - rank(b.ID) })
	if len(out) > 0 && !slices.ContainsFunc(out, func(b brandOption) bool { return b.Selected }) {
		out[0].Selected = true
	}
	return out, nil
}

func initials(name string) string {
	var b strings.Builder
	for _, f := range strings.Fields(name) {
		for _, r := range f {
			b.WriteRune(r)
			break
		}
		if b.Len() >= 2 {
			break
		}
	}
	return strings.ToUpper(b.String())
}

func sweepingConfiguration(sess *itp.Session) json.RawMessage {
	if v := sess.Setting(SettingSweepingConfiguration); len(v) > 0 && string(v) != "null" {
		return v
	}
	return json.RawMessage(`{}`)
}

// describeSweeping renders the limits for the user, in Portuguese.
func describeSweeping(raw json.RawMessage) []string {
	var cfg struct {
		TotalAllowedAmount string `json:"totalAllowedAmount"`
		TransactionLimit   string `json:"transactionLimit"`
		PeriodicLimits     map[string]struct {
			QuantityLimit    *int   `json:"quantityLimit"`
			TransactionLimit string `json:"transactionLimit"`
		} `json:"periodicLimits"`
	}
	if json.Unmarshal(raw, &cfg) != nil {
		return nil
	}
	var out []string
	if cfg.TotalAllowedAmount != "" {
		out = append(out, "Total permitido: "+brl(cfg.TotalAllowedAmount))
	}
	if cfg.TransactionLimit != "" {
		out = append(out, "Limite por transferência: "+brl(cfg.TransactionLimit))
	}
	names := map[string]string{"day": "por dia", "week": "por semana", "month": "por mês", "year": "por ano"}
	for _, k := range []string{"day", "week", "month", "year"} {
		p, ok := cfg.PeriodicLimits[k]
		if !ok {
			continue
		}
		if p.TransactionLimit != "" {
			out = append(out, "Até "+brl(p.TransactionLimit)+" "+names[k])
		}
		if p.QuantityLimit != nil {
			out = append(out, "Até "+itoa(*p.QuantityLimit)+" transferências "+names[k])
		}
	}
	if len(out) == 0 {
		out = append(out, "Sem limites além dos da sua instituição")
	}
	return out
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func brl(amount string) string {
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

// backURL is the partner's redirectUrl with the session's id and status.
func backURL(sess *itp.Session) string {
	u, err := url.Parse(sess.RedirectURL)
	if err != nil {
		return sess.RedirectURL
	}
	q := u.Query()
	q.Set("id", sess.ID)
	q.Set("status", string(sess.Status))
	u.RawQuery = q.Encode()
	return u.String()
}

func (h *JourneyHandler) form(w http.ResponseWriter, r *http.Request) (*itp.Session, string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "Pedido inválido", "Não entendemos o formulário enviado.")
		return nil, "", false
	}
	token := r.PostForm.Get("token")
	sess := h.session(w, r, r.PostForm.Get("id"), token)
	return sess, token, sess != nil
}

// confirm creates the sweeping consent at the chosen brand and sends the
// user there.
func (h *JourneyHandler) confirm(w http.ResponseWriter, r *http.Request) {
	sess, token, ok := h.form(w, r)
	if !ok {
		return
	}
	if sess.Status != itp.StatusPending {
		h.show(w, r, sess, token, "", "", "", http.StatusConflict)
		return
	}
	document, name, brandID := strings.TrimSpace(r.PostForm.Get("document")), strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("brandId")
	brands, err := h.offered(r.Context(), sess)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "journey confirm: brands", "err", err)
		h.fail(w, r, http.StatusInternalServerError, "Falha temporária", "Não foi possível listar as instituições agora.")
		return
	}
	switch {
	case !slices.ContainsFunc(brands, func(b brandOption) bool { return b.ID == brandID }):
		h.show(w, r, sess, token, document, name, "Escolha uma das instituições da lista.", http.StatusUnprocessableEntity)
		return
	case ofb.ValidateDocument(document) != nil || len(document) != 11:
		h.show(w, r, sess, token, document, name, "Informe um CPF válido, só com números.", http.StatusUnprocessableEntity)
		return
	case len(name) < 2 || len(name) > 140:
		h.show(w, r, sess, token, document, name, "Informe seu nome completo.", http.StatusUnprocessableEntity)
		return
	}
	body, err := json.Marshal(map[string]any{"data": map[string]any{
		"loggedUser":             map[string]any{"document": map[string]string{"identification": document, "rel": "CPF"}},
		"creditors":              []map[string]string{{"personType": "PESSOA_NATURAL", "cpfCnpj": document, "name": name}},
		"recurringConfiguration": map[string]json.RawMessage{"sweeping": sweepingConfiguration(sess)},
	}})
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "Falha temporária", "Não foi possível preparar a autorização.")
		return
	}
	a, _, err := h.Flow.Start(r.Context(), StartRequest{
		ApplicationID: sess.ApplicationID, Kind: KindJourneySession, SessionID: sess.ID, BrandID: brandID,
		Collection: RecurringConsentPath, Body: body, APIScope: "recurring-payments",
		RedirectURI: strings.TrimSuffix(h.PublicURL, "/") + CallbackPath, IdempotencyKey: uuid.NewString(),
		Device: ofb.DeviceFromUserAgent(r.UserAgent()),
		Before: func(ctx context.Context, tx *sql.Tx, a *Authorization) error {
			_, err := h.Sessions.Transition(ctx, tx, sess.ID, itp.StatusAwaitingAuthorisation, func(s *itp.Session) {
				s.ConsentID, s.BrandID = a.ConsentID, a.BrandID
			})
			return err
		},
	})
	var apiErr *fapiclient.APIError
	switch {
	case err == nil:
	case errors.As(err, &apiErr):
		h.Logger.InfoContext(r.Context(), "journey confirm: the brand refused the consent", "session_id", sess.ID, "err", err)
		h.show(w, r, sess, token, document, name, "A instituição recusou o pedido. Confira os dados ou escolha outra instituição.", http.StatusUnprocessableEntity)
		return
	case errors.Is(err, itp.ErrInvalidTransition), errors.Is(err, itp.ErrExpired):
		if current := h.session(w, r, sess.ID, token); current != nil {
			h.show(w, r, current, token, "", "", "", http.StatusConflict)
		}
		return
	default:
		h.Logger.ErrorContext(r.Context(), "journey confirm", "session_id", sess.ID, "brand_id", brandID, "err", err)
		h.show(w, r, sess, token, document, name, "Não conseguimos falar com a instituição agora. Tente de novo em instantes.", http.StatusBadGateway)
		return
	}
	h.Logger.InfoContext(r.Context(), "journey session sent to the brand", "session_id", sess.ID, "brand_id", brandID, "consent_id", a.ConsentID)
	http.Redirect(w, r, a.AuthorizationURL, http.StatusSeeOther)
}

// cancel ends a pending session at the user's request.
func (h *JourneyHandler) cancel(w http.ResponseWriter, r *http.Request) {
	sess, token, ok := h.form(w, r)
	if !ok {
		return
	}
	cancelled, err := h.Sessions.Move(r.Context(), sess.ID, itp.StatusCancelled, nil)
	if err != nil {
		if current := h.session(w, r, sess.ID, token); current != nil {
			h.show(w, r, current, token, "", "", "", http.StatusConflict)
		}
		return
	}
	http.Redirect(w, r, backURL(cancelled), http.StatusSeeOther)
}

// callbackPage receives the brand's redirect. The hybrid flow answers in the
// URL fragment, which only the browser sees: the page's script posts it
// back. A response in the query (an error some brands send there) is
// handled at once.
func (h *JourneyHandler) callbackPage(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query(); q.Get("state") != "" {
		h.complete(w, r, fapiclient.Callback{Code: q.Get("code"), IDToken: q.Get("id_token"), State: q.Get("state"),
			Error: q.Get("error"), ErrorDescription: q.Get("error_description")})
		return
	}
	h.render(w, r, http.StatusOK, "journey_callback", nil)
}

func (h *JourneyHandler) callback(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "Retorno inválido", "Não entendemos o retorno da instituição.")
		return
	}
	f := r.PostForm
	h.complete(w, r, fapiclient.Callback{Code: f.Get("code"), IDToken: f.Get("id_token"), State: f.Get("state"),
		Error: f.Get("error"), ErrorDescription: f.Get("error_description")})
}

func (h *JourneyHandler) complete(w http.ResponseWriter, r *http.Request, cb fapiclient.Callback) {
	var sess *itp.Session
	a, err := h.Flow.Complete(r.Context(), CompleteRequest{Callback: cb, Device: ofb.DeviceFromUserAgent(r.UserAgent()),
		After: func(ctx context.Context, tx *sql.Tx, a *Authorization) error {
			if a.Kind != KindJourneySession {
				return nil
			}
			var err error
			if a.Status == StatusAuthorised {
				if _, err = h.Sessions.Transition(ctx, tx, a.SessionID, itp.StatusAuthorised, nil); err == nil {
					sess, err = h.Sessions.Transition(ctx, tx, a.SessionID, itp.StatusFinished, nil)
				}
			} else {
				sess, err = h.Sessions.Transition(ctx, tx, a.SessionID, itp.StatusRejected, nil)
			}
			if errors.Is(err, itp.ErrExpired) || errors.Is(err, itp.ErrInvalidTransition) {
				// The session ended meanwhile (expired, cancelled): it keeps
				// that status; the authorization keeps the brand's answer.
				h.Logger.WarnContext(ctx, "journey callback: the session had already ended", "session_id", a.SessionID, "flow_status", a.Status)
				return nil
			}
			return err
		}})
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound), errors.Is(err, fapiclient.ErrCallback):
		h.Logger.InfoContext(r.Context(), "journey callback refused", "err", err)
		h.fail(w, r, http.StatusBadRequest, "Retorno inválido", "Este retorno da instituição não confere com nenhuma jornada em andamento. Nada foi alterado.")
		return
	case errors.Is(err, ErrAlreadyCompleted):
		h.fail(w, r, http.StatusConflict, "Jornada já concluída", "Este retorno já foi processado. Volte ao aplicativo para ver o resultado.")
		return
	case errors.Is(err, ErrExpired):
		h.fail(w, r, http.StatusGone, "Tempo esgotado", "O tempo para concluir esta autorização acabou. Volte ao aplicativo e comece de novo.")
		return
	default:
		h.Logger.ErrorContext(r.Context(), "journey callback", "err", err)
		h.fail(w, r, http.StatusBadGateway, "Falha temporária", "Não conseguimos confirmar a autorização com a instituição agora.")
		return
	}
	if a.Kind != KindJourneySession {
		h.fail(w, r, http.StatusBadRequest, "Retorno inválido", "Este retorno pertence a outro tipo de autorização.")
		return
	}
	if sess == nil {
		if sess, err = h.Sessions.Session(r.Context(), a.ApplicationID, a.SessionID); err != nil {
			h.Logger.ErrorContext(r.Context(), "journey callback: read session", "err", err)
			h.fail(w, r, http.StatusInternalServerError, "Falha temporária", "A autorização foi registrada, mas não conseguimos mostrar o resultado.")
			return
		}
	}
	h.Logger.InfoContext(r.Context(), "journey session finished", "session_id", sess.ID, "status", sess.Status)
	http.Redirect(w, r, backURL(sess), http.StatusSeeOther)
}
