package auth

import (
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// Handler serves the token endpoint and the JWKS.
type Handler struct {
	Apps   *Applications
	Tokens *Tokens
	Logger *slog.Logger
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauth/token", h.token)
	mux.HandleFunc("GET /.well-known/jwks.json", h.jwks)
}

type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="ponte"`)
	}
	noStore(w)
	httpx.WriteJSON(w, r, status, tokenError{code, desc})
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// token implements the client_credentials grant (RFC 6749 §4.4) with
// client_secret_basic and client_secret_post authentication.
func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		h.fail(w, r, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 {
			h.fail(w, r, http.StatusBadRequest, "invalid_request", "parameter "+k+" is repeated")
			return
		}
	}
	clientID, secret, ok := r.BasicAuth()
	if ok {
		if form.Has("client_secret") {
			h.fail(w, r, http.StatusBadRequest, "invalid_request", "use one client authentication method, not two")
			return
		}
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
		var err1, err2 error
		clientID, err1 = url.QueryUnescape(clientID)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			h.fail(w, r, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		if id := form.Get("client_id"); id != "" && id != clientID {
			h.fail(w, r, http.StatusBadRequest, "invalid_request", "client_id does not match the authenticated client")
			return
		}
	} else if r.Header.Get("Authorization") != "" {
		h.fail(w, r, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	} else {
		clientID, secret = form.Get("client_id"), form.Get("client_secret")
		if clientID == "" || secret == "" {
			h.fail(w, r, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		h.fail(w, r, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		h.fail(w, r, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported here")
		return
	}
	app, err := h.Apps.Authenticate(r.Context(), clientID, secret)
	if errors.Is(err, ErrNotFound) {
		h.Logger.InfoContext(r.Context(), "client authentication failed", "client_id", clientID)
		h.fail(w, r, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "authenticate client", "err", err)
		h.fail(w, r, http.StatusInternalServerError, "server_error", "")
		return
	}
	scopes := app.Scopes
	if form.Has("scope") {
		requested := strings.Fields(form.Get("scope"))
		if len(requested) == 0 {
			h.fail(w, r, http.StatusBadRequest, "invalid_scope", "scope is empty")
			return
		}
		for _, s := range requested {
			if !slices.Contains(app.Scopes, s) {
				h.fail(w, r, http.StatusBadRequest, "invalid_scope", "scope "+s+" is not granted to this client")
				return
			}
		}
		scopes = normalizeScopes(requested)
	}
	// RFC 8705 §3: a token requested with a verified client certificate is
	// bound to it, whatever the client authentication method.
	var thumbprint string
	if cert := httpx.ClientCertificate(r); cert != nil {
		thumbprint = httpx.CertThumbprint(cert)
	}
	raw, err := h.Tokens.IssueBound(app, scopes, thumbprint)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "issue token", "err", err)
		h.fail(w, r, http.StatusInternalServerError, "server_error", "")
		return
	}
	noStore(w)
	httpx.WriteJSON(w, r, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}{raw, "Bearer", int(h.Tokens.TTL().Seconds()), strings.Join(scopes, " ")})
}

func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpx.WriteJSON(w, r, http.StatusOK, h.Tokens.key.JWKS())
}
