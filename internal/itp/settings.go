package itp

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// validateSettings checks settings (named prefix[i] in errors): keys
// present, unique and at most 64 characters, values present, and the known
// keys' value types.
func validateSettings(prefix string, settings []Setting) []FieldError {
	var out []FieldError
	seen := map[string]bool{}
	for i, st := range settings {
		name := fmt.Sprintf("%s[%d]", prefix, i)
		switch {
		case st.Key == "":
			out = append(out, FieldError{name + ".key", "is required"})
			continue
		case len(st.Key) > 64:
			out = append(out, FieldError{name + ".key", "must be at most 64 characters"})
		case seen[st.Key]:
			out = append(out, FieldError{name + ".key", "is repeated"})
		}
		seen[st.Key] = true
		if len(st.Value) == 0 || string(st.Value) == "null" {
			out = append(out, FieldError{name + ".value", "is required"})
			continue
		}
		switch st.Key {
		case SettingPrioritiesBrands, SettingJourneyRules:
			var list []string
			if err := json.Unmarshal(st.Value, &list); err != nil {
				out = append(out, FieldError{name + ".value", "must be an array of strings"})
			}
		case SettingSessionTTL:
			if _, err := parseTTL(st.Value); err != nil {
				out = append(out, FieldError{name + ".value", err.Error()})
			}
		}
	}
	return out
}

func parseTTL(v json.RawMessage) (time.Duration, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < int64(MinSessionTTL/time.Second) || n > int64(MaxSessionTTL/time.Second) {
		return 0, fmt.Errorf("must be an integer number of seconds from %d to %d", int64(MinSessionTTL/time.Second), int64(MaxSessionTTL/time.Second))
	}
	return time.Duration(n) * time.Second, nil
}

// mergeSettings returns the journey's settings with the request's applied on
// top: a request key replaces the journey's value in place, new keys follow
// in request order (seed 003, rule 5).
func mergeSettings(journey, request []Setting) []Setting {
	out := make([]Setting, 0, len(journey)+len(request))
	idx := map[string]int{}
	for _, st := range journey {
		idx[st.Key] = len(out)
		out = append(out, st)
	}
	for _, st := range request {
		if i, ok := idx[st.Key]; ok {
			out[i] = st
			continue
		}
		idx[st.Key] = len(out)
		out = append(out, st)
	}
	return out
}
