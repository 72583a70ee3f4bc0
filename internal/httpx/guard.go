package httpx

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Family names the error writer of the routes under a path prefix: the API
// family whose error shape a refused request gets.
type Family struct {
	Prefix string
	Errors ErrorWriter
}

// Guard refuses, before any handler runs, a request whose text Ponte would
// have to store or look up but cannot: a NUL byte or invalid UTF-8 in the
// path, the query, a header Ponte reads, a form field, a JSON string (raw or
// \u0000-escaped) or the claims of a signed (JWS) body. Every route is
// covered, so no such value reaches SQL (PostgreSQL fails on it with SQLSTATE
// 22021 where SQLite would store it) nor the authorization server library.
//
// The refusal is a 400 in the shape of the family whose prefix is the
// longest to match the path (Fallback when none does). Bodies up to MaxBody
// are checked whole and handed on unchanged; the rest of a larger body (only
// data imports accept one) is checked as the handler reads it.
type Guard struct {
	Mux *http.ServeMux
	// Families by path prefix; the longest matching prefix wins.
	Families []Family
	Fallback ErrorWriter
	// Headers are the request headers Ponte's handlers (and the libraries
	// behind them) read; others pass unchecked.
	Headers []string
}

// Handler returns the guarded mux.
func (g Guard) Handler() http.Handler {
	families := slices.Clone(g.Families)
	headers := slices.Clone(g.Headers)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, inPath := check(r, headers)
		if e == nil {
			g.Mux.ServeHTTP(w, r)
			return
		}
		// The route is looked up only for a refusal: clean requests pay
		// for one mux match, not two.
		_, pattern := g.Mux.Handler(r)
		if pattern == "" || pattern == "/" {
			// No route (or only the catch-all): the answer is a 404 or 405
			// that reads nothing of the request.
			g.Mux.ServeHTTP(w, r)
			return
		}
		if inPath {
			e = BadTextError(pathParam(pattern, r.URL.Path))
		}
		r.Pattern = pattern // for the access log and metrics
		FamilyOf(families, r.URL.Path, g.Fallback).WriteError(w, r, e)
	})
}

// FamilyOf is the error writer of the family whose prefix is the longest to
// match path, or fallback when none does: the one table of which API family
// a path belongs to, for every answer written outside a route's own handler.
func FamilyOf(families []Family, path string, fallback ErrorWriter) ErrorWriter {
	errs, longest := fallback, -1
	for _, f := range families {
		if len(f.Prefix) > longest && strings.HasPrefix(path, f.Prefix) {
			errs, longest = f.Errors, len(f.Prefix)
		}
	}
	return errs
}

// check finds the first input holding bad text; inPath says it is the path.
func check(r *http.Request, headers []string) (e *Error, inPath bool) {
	if BadText(r.URL.Path) {
		return BadTextError("path"), true
	}
	if e := checkQuery(r.URL.RawQuery); e != nil {
		return e, false
	}
	for _, h := range headers {
		for _, v := range r.Header.Values(h) {
			if BadText(v) {
				return BadTextError(h), false
			}
		}
	}
	// Basic credentials are base64, and form-urlencoded inside (RFC 6749
	// §2.3.1): a client_id is looked up in SQL however it arrives.
	if id, secret, ok := r.BasicAuth(); ok {
		for _, s := range []string{id, secret} {
			u, _ := url.QueryUnescape(s)
			if BadText(s) || BadText(u) {
				return BadTextError("Authorization"), false
			}
		}
	}
	return checkBody(r), false
}

// pathParam names the path parameter of pattern holding bad text, or "path".
func pathParam(pattern, path string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = p
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:] // drop a host
	}
	want, got := strings.Split(pattern, "/"), strings.Split(path, "/")
	for i, seg := range got {
		if i >= len(want) || !BadText(seg) {
			continue
		}
		if w := want[i]; strings.HasPrefix(w, "{") && strings.HasSuffix(w, "}") {
			return strings.TrimSuffix(strings.TrimSuffix(w[1:len(w)-1], "..."), "$")
		}
	}
	return "path"
}

func checkQuery(raw string) *Error {
	if raw == "" {
		return nil
	}
	// Unparseable pairs are dropped by url.ParseQuery, as by r.URL.Query: the
	// handlers never see them, so neither does this check.
	q, _ := url.ParseQuery(raw)
	return checkValues(q)
}

func checkValues(v url.Values) *Error {
	for k, vs := range v {
		if BadText(k) {
			return BadTextError(sanitizeName(k))
		}
		for _, s := range vs {
			if BadText(s) {
				return BadTextError(k)
			}
			// A signed request object, client assertion or id_token: its
			// claims are looked up and stored like any other field.
			if strings.Count(s, ".") == 2 && CheckJWS([]byte(s)) != nil {
				return BadTextError(k)
			}
		}
	}
	return nil
}

// checkBody checks a form, JSON or JWS body and puts it back for the handler.
func checkBody(r *http.Request) *Error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil && r.Header.Get("Content-Type") != "" {
		return nil // the handler refuses the content type
	}
	var check func([]byte) *Error
	switch {
	case mt == "", mt == "application/json", strings.HasSuffix(mt, "+json"):
		check = CheckJSON // a body without a type is read as JSON
	case mt == "text/csv":
		check = func(b []byte) *Error {
			if BadText(string(b)) {
				return BadTextError("csv")
			}
			return nil
		}
	case mt == "application/jwt":
		check = CheckJWS
	case mt == "application/x-www-form-urlencoded":
		check = func(b []byte) *Error {
			f, _ := url.ParseQuery(string(b))
			return checkValues(f)
		}
	case mt == "multipart/form-data":
		// Nothing of Ponte's takes one, but net/http parses it for
		// r.FormValue, which go-oidc reads.
		check = func(b []byte) *Error { return checkMultipart(b, params["boundary"]) }
	default:
		return nil
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	body := r.Body
	var rd io.Reader = io.MultiReader(bytes.NewReader(head), body)
	if err != nil {
		rd = io.MultiReader(bytes.NewReader(head), errReader{err})
	}
	big := len(head) > MaxBody
	if big {
		rd = &textReader{r: rd} // checked as the handler reads it
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{rd, body}
	if err != nil || big {
		return nil
	}
	return check(head)
}

// checkMultipart checks the names and values of a multipart form's fields
// (file contents are not text).
func checkMultipart(b []byte, boundary string) *Error {
	mr := multipart.NewReader(bytes.NewReader(b), boundary)
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil // malformed forms are the parser's to refuse
		}
		name := part.FormName()
		if BadText(name) {
			return BadTextError(sanitizeName(name))
		}
		if part.FileName() != "" {
			continue
		}
		v, err := io.ReadAll(part)
		if err != nil {
			return nil
		}
		if BadText(string(v)) {
			return BadTextError(name)
		}
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
