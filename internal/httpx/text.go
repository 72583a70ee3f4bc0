package httpx

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// BadTextMessage is what a refused field is told: the same words for every
// API family, so clients and docs have one sentence to match.
const BadTextMessage = "contains a NUL character or invalid UTF-8"

// BadText reports whether s holds a NUL byte or is not valid UTF-8. PostgreSQL
// refuses to store such text (SQLSTATE 22021) while SQLite keeps it, so Ponte
// refuses it on input and both engines answer alike.
func BadText(s string) bool {
	return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)
}

// BadTextError is the 400 for a refused field, rendered by the family's writer.
func BadTextError(field string) *Error {
	return &Error{Status: http.StatusBadRequest, Message: "invalid text in " + field,
		Fields: []FieldError{{Field: field, Message: BadTextMessage}}}
}

// CheckJSON returns the refusal for a JSON document whose text Ponte cannot
// store: invalid UTF-8 (which encoding/json would silently turn into U+FFFD),
// a raw NUL byte, or a \u0000 escape (which decodes into a NUL). It names the
// offending field ("data.creditor.name", "items[0].device") when the document
// parses that far, "body" otherwise; nil means the text is clean. Whether the
// document is valid JSON is the decoder's business, not this check's.
func CheckJSON(b []byte) *Error {
	if utf8.Valid(b) && bytes.IndexByte(b, 0) < 0 && !hasEscapedNUL(b) {
		return nil
	}
	return BadTextError(badJSONField(b))
}

// hasEscapedNUL reports whether b holds a \u0000 escape: "u0000" after an odd
// run of backslashes ("\\u0000" is a backslash followed by the text u0000).
func hasEscapedNUL(b []byte) bool {
	for {
		i := bytes.Index(b, []byte(`u0000`))
		if i < 0 {
			return false
		}
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 1 {
			return true
		}
		b = b[i+1:]
	}
}

// badJSONField walks b token by token and names the first string (key or
// value) that is not clean text.
func badJSONField(b []byte) string {
	type frame struct {
		array   bool
		index   int
		key     string
		wantKey bool
	}
	var stack []frame
	path := func(key string) string {
		var s strings.Builder
		for i, f := range stack {
			switch {
			case f.array:
				s.WriteString("[" + strconv.Itoa(f.index) + "]")
			case i == len(stack)-1 && key != "":
				if s.Len() > 0 {
					s.WriteByte('.')
				}
				s.WriteString(key)
			default:
				if s.Len() > 0 {
					s.WriteByte('.')
				}
				s.WriteString(f.key)
			}
		}
		if s.Len() == 0 {
			return "body"
		}
		return s.String()
	}
	// valueDone moves the enclosing container past the value just read.
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].wantKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var prev int64
	for {
		tok, err := dec.Token()
		if err != nil {
			return "body" // broken before the bad text could be placed
		}
		off := dec.InputOffset()
		raw := b[prev:off]
		prev = off
		s, isString := tok.(string)
		bad := isString && (!utf8.Valid(raw) || strings.IndexByte(s, 0) >= 0)
		switch {
		case isString && len(stack) > 0 && !stack[len(stack)-1].array && stack[len(stack)-1].wantKey:
			if bad {
				return path(sanitizeName(s))
			}
			stack[len(stack)-1].key, stack[len(stack)-1].wantKey = s, false
		case bad:
			return path("")
		case tok == json.Delim('{'):
			stack = append(stack, frame{wantKey: true})
		case tok == json.Delim('['):
			stack = append(stack, frame{array: true})
		case tok == json.Delim('}'), tok == json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// sanitizeName makes a refused key printable for the error message.
func sanitizeName(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", `\u0000`), "\uFFFD")
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(s, "")
}

// CheckJWS applies CheckJSON to the claims of a compact JWS (a signed request
// body, a request object, a client assertion): they become stored or
// looked-up text just as a JSON body's fields do. Anything that is not a
// compact JWS of a JSON object is left to the signature check.
func CheckJWS(b []byte) *Error {
	parts := bytes.Split(bytes.TrimSpace(b), []byte("."))
	if len(parts) != 3 {
		return nil
	}
	header, err1 := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(parts[0]), "="))
	payload, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(parts[1]), "="))
	if err1 != nil || err2 != nil || !jsonObject(header) || !jsonObject(payload) {
		return nil // not a JWS (a host name, a version): nothing to check
	}
	return CheckJSON(payload)
}

// jsonObject reports whether b is a JSON object (encoding/json lets invalid
// UTF-8 through; that is CheckJSON's to find).
func jsonObject(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) && json.Valid(b)
}

// ErrBadText is the read error of a body refused by TextReader.
var ErrBadText = errors.New("request body " + BadTextMessage)

// textReader passes a body through, failing with ErrBadText at the first NUL
// byte, invalid UTF-8 or \u0000 escape: the streaming form of CheckJSON, for
// the part of a large body (an account data import) the Guard does not buffer.
type textReader struct {
	r       io.Reader
	pending []byte // the start of a UTF-8 sequence cut by the previous read
	odd     bool   // the bytes just read end in an odd run of backslashes
	escape  int    // how much of "u0000" follows that odd run
	err     error
}

func (t *textReader) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.r.Read(p)
	if t.bad(p[:n], err != nil) {
		t.err = ErrBadText
		return 0, t.err
	}
	return n, err
}

// bad checks chunk; last says no more bytes follow.
func (t *textReader) bad(chunk []byte, last bool) bool {
	if bytes.IndexByte(chunk, 0) >= 0 {
		return true
	}
	for _, c := range chunk {
		switch {
		case t.escape > 0 && c == "u0000"[t.escape]:
			if t.escape++; t.escape == len("u0000") {
				return true
			}
			continue
		case c == '\\':
			t.odd, t.escape = !t.odd, 0
			continue
		case t.odd && c == 'u':
			t.odd, t.escape = false, 1
			continue
		}
		t.odd, t.escape = false, 0
	}
	buf := append(t.pending, chunk...)
	t.pending = nil
	// Keep an incomplete sequence at the end for the next read.
	if !last {
		for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
			if utf8.RuneStart(buf[i]) {
				if !utf8.FullRune(buf[i:]) {
					t.pending = append([]byte(nil), buf[i:]...)
					buf = buf[:i]
				}
				break
			}
		}
	}
	return !utf8.Valid(buf)
}
