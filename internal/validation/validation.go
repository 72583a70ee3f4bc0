// Package validation is the domain error for a request with invalid fields:
// services list every invalid field at once and their handlers map the list
// to their API family's error shape (each family words and codes it
// differently, so the list carries no HTTP status).
package validation

import "strings"

// FieldError names one invalid field (by its name in the request) and what
// is wrong with it.
type FieldError struct {
	Field   string
	Message string
}

// Error lists every invalid field of one thing a service refused.
type Error struct {
	What   string // what was refused, e.g. "card", "request body"
	Fields []FieldError
}

// Error says what was refused and every field's problem, for logs and the CLI.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid " + e.What)
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + " " + f.Message)
	}
	return b.String()
}
