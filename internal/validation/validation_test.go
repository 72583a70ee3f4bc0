package validation

import "testing"

func TestError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *Error
		want string
	}{
		{"no fields", &Error{What: "card"}, "invalid card"},
		{"one field", &Error{What: "card", Fields: []FieldError{{"proxy", "is required"}}}, "invalid card: proxy is required"},
		{"every field, in order", &Error{What: "request body", Fields: []FieldError{{"url", "is required"}, {"events", "must not be empty"}}},
			"invalid request body: url is required; events must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}
