package store

import (
	"strconv"
	"strings"
)

// Params collects a statement's arguments while its text is written, giving
// each its placeholder in the engine's syntax: "$n" on PostgreSQL (pgx takes
// nothing else) and an anonymous "?" on SQLite.
//
// SQLite finds a numbered parameter ($n, ?n) by a linear search of the
// statement's parameter names, once when it parses each one and once more per
// bind, so a statement with many of them costs time quadratic in their number
// (DESIGN §4); anonymous ones bind by position. Hence the rule of use: write
// the placeholders into the text in the order they were added, and add a
// value used twice twice. Go evaluates the operands of a concatenation such
// as `"a = " + p.Add(x) + " AND b = " + p.Add(y)` left to right, so building
// the text in one expression keeps that order.
type Params struct {
	anonymous bool
	args      []any
}

// NewParams returns an empty Params for a statement run on engine e.
func NewParams(e Engine) *Params {
	return &Params{anonymous: e == SQLite}
}

// Add appends v to the arguments and returns its placeholder.
func (p *Params) Add(v any) string {
	p.args = append(p.args, v)
	if p.anonymous {
		return "?"
	}
	return "$" + strconv.Itoa(len(p.args))
}

// List appends vs to the arguments and returns their placeholders separated
// by commas, as an IN list or a VALUES row wants them ("" for no values).
func (p *Params) List(vs ...any) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Add(v))
	}
	return b.String()
}

// Args returns the arguments in the order they were added, to pass with the
// statement.
func (p *Params) Args() []any { return p.args }

// Len is how many arguments have been added.
func (p *Params) Len() int { return len(p.args) }
