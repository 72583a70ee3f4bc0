package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// MaxBody is the largest request body accepted, in bytes.
const MaxBody = 1 << 20

// ReadBody reads a JSON request body of at most MaxBody bytes. A declared
// non-JSON content type is a 415; an oversize body a 413.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, *Error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Message: "Content-Type must be application/json"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", MaxBody)}
		}
		return nil, &Error{Status: http.StatusBadRequest, Message: "could not read request body"}
	}
	return body, nil
}

// DecodeObject decodes a JSON object into dst, a pointer to a struct, checking
// every field rather than stopping at the first problem: malformed JSON, a
// value of the wrong type, and a missing or null field tagged `required:"true"`
// each produce a FieldError. Nested structs are checked the same way and named
// with dots ("address.zipCode"). Unknown fields are ignored, so clients can
// send newer versions of a body.
func DecodeObject(body []byte, dst any) *Error {
	var fields []FieldError
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic("httpx.DecodeObject: dst must be a pointer to a struct")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return &Error{Status: http.StatusBadRequest, Message: "malformed JSON: " + jsonSyntaxMessage(err),
			Fields: []FieldError{{Field: "body", Message: "is not valid JSON: " + jsonSyntaxMessage(err)}}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Status: http.StatusBadRequest, Message: "malformed JSON: data after the top-level value",
			Fields: []FieldError{{Field: "body", Message: "has data after the JSON object"}}}
	}
	decodeStruct(raw, v.Elem(), "", &fields)
	if len(fields) > 0 {
		return &Error{Status: http.StatusBadRequest, Message: "invalid request body", Fields: fields}
	}
	return nil
}

func decodeStruct(raw json.RawMessage, v reflect.Value, prefix string, fields *[]FieldError) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		name := strings.TrimSuffix(prefix, ".")
		if name == "" {
			name = "body"
		}
		*fields = append(*fields, FieldError{Field: name, Message: "must be a JSON object"})
		return
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		path := prefix + name
		val, present := obj[name]
		if !present || string(bytes.TrimSpace(val)) == "null" {
			if sf.Tag.Get("required") == "true" {
				*fields = append(*fields, FieldError{Field: path, Message: "is required"})
			}
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			decodeStruct(val, fv, path+".", fields)
			continue
		}
		if err := json.Unmarshal(val, fv.Addr().Interface()); err != nil {
			*fields = append(*fields, FieldError{Field: path, Message: "must be " + typeName(fv.Type())})
		}
	}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a valid value"
}

func jsonSyntaxMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at offset %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return err.Error()
}

// Merge adds rule violations for fields that decoded cleanly to a decoding
// error, so a client learns of every offending field in one response. A body
// that was not JSON at all is returned unchanged.
func (e *Error) Merge(more []FieldError) *Error {
	seen := map[string]bool{}
	for _, f := range e.Fields {
		if f.Field == "body" {
			return e
		}
		seen[f.Field] = true
	}
	out := *e
	out.Fields = append([]FieldError(nil), e.Fields...)
	for _, f := range more {
		if !seen[f.Field] {
			out.Fields = append(out.Fields, f)
		}
	}
	return &out
}
