package httpx

import (
	"bytes"
	"html/template"
	"log/slog"
	"net/http"
)

// OAuth renders errors as the OAuth 2.0 token and PAR endpoints do
// (RFC 6749 §5.2): {"error":"invalid_request","error_description":"..."}.
type OAuth struct{}

var oauthCodes = map[int]string{
	http.StatusBadRequest:          "invalid_request",
	http.StatusUnauthorized:        "invalid_client",
	http.StatusInternalServerError: "server_error",
}

// WriteError implements ErrorWriter.
func (OAuth) WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	code := e.Code
	if code == "" {
		if code = oauthCodes[e.Status]; code == "" {
			code = "invalid_request"
		}
	}
	desc := e.Message
	if len(e.Fields) > 0 {
		desc = e.Fields[0].Field + " " + e.Fields[0].Message
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, r, e.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
}

// Page renders errors as the Portuguese error page people see in the
// WebView, the journey pages and the dashboard: the "ticket_error" template
// with a title and a message.
type Page struct {
	Pages  *template.Template
	Logger *slog.Logger
}

// pageTexts are the page's title and message by status.
var pageTexts = map[int][2]string{
	http.StatusBadRequest: {"Endereço inválido", "O endereço ou o formulário tem caracteres que não podem ser lidos."},
}

// WriteError implements ErrorWriter.
func (p Page) WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	text, ok := pageTexts[e.Status]
	if !ok {
		text = [2]string{"Falha temporária", "Não foi possível concluir agora. Tente novamente em instantes."}
	}
	var buf bytes.Buffer
	if err := p.Pages.ExecuteTemplate(&buf, "ticket_error", struct{ Title, Message string }{text[0], text[1]}); err != nil {
		if p.Logger != nil {
			p.Logger.ErrorContext(r.Context(), "render error page", "err", err)
		}
		http.Error(w, text[0], e.Status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_, _ = w.Write(buf.Bytes())
}
