// Package pcm records the redirect-journey steps the PCM (Plataforma de
// Coleta de Métricas, v1.0.4 hybrid flow) measures conversion with: on both
// sides, from the payloads Ponte handles (written in the transaction of the
// state change that caused each step) and from partners' reports (seed 002,
// POST /api/journey/v1/consents/{consentId}/report). It answers the
// conversion funnel in JSON and draws it on the admin dashboard.
//
// Forwarding to the PCM (issue 8 §3) reads the pcm_events table: each event
// has a stable id, and a Recorder with Outbox writes the event's outbox row
// in the event's transaction (on PostgreSQL the report API writes both in
// one statement).
package pcm

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/ofb"
)

// Steps of the hybrid flow, as the PCM and seed 002 name them.
const (
	StepRedirectToServer            = "REDIRECT_TO_SERVER"
	StepRedirectTarget              = "REDIRECT_TARGET"
	StepAuthenticated               = "AUTHENTICATED"
	StepRedirectToClient            = "REDIRECT_TO_CLIENT"
	StepRedirectTargetWithErrors    = "REDIRECT_TARGET_WITH_ERRORS"
	StepRedirectTargetWithoutErrors = "REDIRECT_TARGET_WITHOUT_ERRORS"
)

// Types of REDIRECT_TARGET and REDIRECT_TO_CLIENT.
const (
	TypeAwaitingHandoff       = "AWAITING_HANDOFF"
	TypeAwaitingUserAuth      = "AWAITING_USER_AUTH"
	TypeAwaitingRedirectToApp = "AWAITING_REDIRECT_TO_APP"
	TypeAuthorised            = "AUTHORISED"
	TypeRejected              = "REJECTED"
)

// Sides: the holder is the PCM's server, the initiator its client.
const (
	SideHolder    = "HOLDER"
	SideInitiator = "INITIATOR"
)

// Sources: recorded by Ponte from the payload of a state change, or reported
// by a partner through the API.
const (
	SourcePayload = "PAYLOAD"
	SourceAPI     = "API"
)

// ScopeReport is the partner scope of the report and funnel APIs.
const ScopeReport = "pcm.report"

const (
	maxConsentID    = 256
	maxErrorLength  = 200
	maxURILength    = 200
	timestampLayout = "2006-01-02T15:04:05.000Z"
	dayLayout       = "2006-01-02"
	msPerDay        = int64(24 * time.Hour / time.Millisecond)
	defaultWindow   = 7 * 24 * time.Hour
	maxWindow       = 366 * 24 * time.Hour
)

// Steps lists the six steps in journey order.
var Steps = []string{StepRedirectToServer, StepRedirectTarget, StepAuthenticated, StepRedirectToClient,
	StepRedirectTargetWithErrors, StepRedirectTargetWithoutErrors}

// Sides lists the two sides.
var Sides = []string{SideHolder, SideInitiator}

// stepSpec says, per step, which side reports it and which data fields it
// takes: required (r), optional (o) or not a field of the step (absent).
type stepSpec struct {
	side  string
	uri   string // "uriAuthorizationEndpoint" or "uri_callback", "" for none
	uriRq bool
	types []string // allowed types; nil: the step has no type
	err   bool     // takes a required error
}

var specs = map[string]stepSpec{
	StepRedirectToServer:            {side: SideInitiator, uri: "uriAuthorizationEndpoint", uriRq: true},
	StepRedirectTarget:              {side: SideHolder, uri: "uriAuthorizationEndpoint", types: []string{TypeAwaitingHandoff, TypeAwaitingUserAuth, TypeAwaitingRedirectToApp}},
	StepAuthenticated:               {side: SideHolder},
	StepRedirectToClient:            {side: SideHolder, uri: "uri_callback", uriRq: true, types: []string{TypeAuthorised, TypeRejected}},
	StepRedirectTargetWithErrors:    {side: SideInitiator, err: true},
	StepRedirectTargetWithoutErrors: {side: SideInitiator},
}

// SideOf returns the side that reports step ("" for an unknown step).
func SideOf(step string) string { return specs[step].side }

// Event is one recorded journey step.
type Event struct {
	ID        string
	ConsentID string
	Side      string
	Step      string
	// Type is the REDIRECT_TARGET or REDIRECT_TO_CLIENT type, "" otherwise.
	Type string
	// Error is the hybrid-flow error code (REDIRECT_TARGET_WITH_ERRORS).
	Error string
	// URI is uriAuthorizationEndpoint or uri_callback, without query.
	URI           string
	Device        ofb.Device
	ApplicationID string
	BrandID       string
	Source        string
	OccurredAt    time.Time
	CreatedAt     time.Time
}

// Errors of the service.
var (
	// ErrConsentNotFound: the consent is unknown or not the caller's.
	ErrConsentNotFound = errors.New("pcm: consent not found among the caller's consents")
	// ErrInvalid wraps validation problems (see Problems).
	ErrInvalid = errors.New("pcm: invalid report")
)

// ReportData is the "data" object of a report (seed 002).
type ReportData struct {
	Platform                 *string `json:"platform" required:"true"`
	OS                       *string `json:"os" required:"true"`
	OSVersion                *string `json:"osVersion" required:"true"`
	URIAuthorizationEndpoint *string `json:"uriAuthorizationEndpoint"`
	URICallback              *string `json:"uri_callback"`
	Type                     *string `json:"type"`
	Error                    *string `json:"error"`
}

// ReportRequest is the body of POST /api/journey/v1/consents/{consentId}/report.
type ReportRequest struct {
	Step *string     `json:"step" required:"true"`
	Data *ReportData `json:"data" required:"true"`
}

// uriPattern is the PCM's pattern for uriAuthorizationEndpoint and
// uri_callback: no query string, no fragment.
var uriPattern = regexp.MustCompile(`^[- /:_.',0-9a-zA-Z]{0,200}$`)

// Problem is one invalid field of a report; Missing is true when a field the
// step requires is absent (the API answers PARAMETRO_NAO_INFORMADO).
type Problem struct {
	Field, Message string
	Missing        bool
	// reason classifies a funnel query's problem for the dashboard.
	reason string
}

// ValidateConsentID checks a consent id as the PCM takes it: 1-256
// characters, no leading or trailing white space.
func ValidateConsentID(id string) bool {
	return id != "" && len(id) <= maxConsentID && strings.TrimSpace(id) == id
}

// Validate reports every invalid field of a report: the step, the fields the
// step requires (and those it does not take), the device enums and the URI
// pattern.
func (in *ReportRequest) Validate() []Problem {
	var out []Problem
	step := deref(in.Step)
	spec, ok := specs[step]
	if !ok {
		out = append(out, Problem{Field: "step", Message: "must be one of " + strings.Join(Steps, ", ")})
	}
	d := in.Data
	if d == nil {
		return out
	}
	dev := ofb.Device{Platform: deref(d.Platform), OS: deref(d.OS), OSVersion: deref(d.OSVersion)}
	given := map[string]bool{"data.platform": d.Platform != nil, "data.os": d.OS != nil, "data.osVersion": d.OSVersion != nil}
	for _, p := range dev.Validate("data") {
		if !given[p.Field] {
			out = append(out, Problem{Field: p.Field, Message: "is required", Missing: true})
			continue
		}
		out = append(out, Problem{Field: p.Field, Message: p.Message})
	}
	if !ok {
		return out
	}
	uris := map[string]*string{"uriAuthorizationEndpoint": d.URIAuthorizationEndpoint, "uri_callback": d.URICallback}
	for _, name := range []string{"uriAuthorizationEndpoint", "uri_callback"} {
		v := uris[name]
		switch {
		case name != spec.uri && v != nil:
			out = append(out, Problem{Field: "data." + name, Message: "is not a field of step " + step})
		case name == spec.uri && v == nil && spec.uriRq:
			out = append(out, Problem{Field: "data." + name, Message: "is required for step " + step, Missing: true})
		case name == spec.uri && v != nil && !validURI(*v):
			out = append(out, Problem{Field: "data." + name, Message: "must be an absolute http(s) URL of at most 200 characters without query string or fragment (PCM pattern ^[- /:_.',0-9a-zA-Z]{0,200}$)"})
		}
	}
	switch {
	case spec.types == nil && d.Type != nil:
		out = append(out, Problem{Field: "data.type", Message: "is not a field of step " + step})
	case spec.types != nil && d.Type == nil:
		out = append(out, Problem{Field: "data.type", Message: "is required for step " + step, Missing: true})
	case spec.types != nil && !slices.Contains(spec.types, *d.Type):
		out = append(out, Problem{Field: "data.type", Message: "must be one of " + strings.Join(spec.types, ", ") + " for step " + step})
	}
	switch {
	case !spec.err && d.Error != nil:
		out = append(out, Problem{Field: "data.error", Message: "is not a field of step " + step})
	case spec.err && d.Error == nil:
		out = append(out, Problem{Field: "data.error", Message: "is required for step " + step, Missing: true})
	case spec.err && (strings.TrimSpace(*d.Error) == "" || len(*d.Error) > maxErrorLength):
		out = append(out, Problem{Field: "data.error", Message: "must be the hybrid-flow error code, 1-200 characters"})
	}
	return out
}

// Event turns a valid report into the event to store (id, application,
// brand, source and times are the service's).
func (in *ReportRequest) Event(consentID string) Event {
	d := in.Data
	e := Event{ConsentID: consentID, Step: *in.Step, Side: SideOf(*in.Step), Type: deref(d.Type), Error: deref(d.Error),
		Device: ofb.Device{Platform: *d.Platform, OS: *d.OS, OSVersion: *d.OSVersion}}
	if d.URIAuthorizationEndpoint != nil {
		e.URI = *d.URIAuthorizationEndpoint
	}
	if d.URICallback != nil {
		e.URI = *d.URICallback
	}
	return e
}

func validURI(s string) bool {
	if len(s) > maxURILength || !uriPattern.MatchString(s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// StripQuery returns raw without its query string and fragment, the form
// the PCM takes URIs in.
func StripQuery(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		return raw[:i]
	}
	return raw
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// EventJSON is an event as the API answers it. Data carries the step's
// fields under the names of seed 002.
type EventJSON struct {
	ID        string        `json:"id"`
	ConsentID string        `json:"consentId"`
	Step      string        `json:"step"`
	Side      string        `json:"side"`
	Data      EventDataJSON `json:"data"`
	BrandID   string        `json:"brandId,omitempty"`
	Source    string        `json:"source"`
	// Timestamp is UTC with milliseconds, as the PCM takes it.
	Timestamp string `json:"timestamp"`
}

// EventDataJSON is the "data" of an event.
type EventDataJSON struct {
	Platform                 string `json:"platform"`
	OS                       string `json:"os"`
	OSVersion                string `json:"osVersion"`
	URIAuthorizationEndpoint string `json:"uriAuthorizationEndpoint,omitempty"`
	URICallback              string `json:"uri_callback,omitempty"`
	Type                     string `json:"type,omitempty"`
	Error                    string `json:"error,omitempty"`
}

// JSON renders e for the API.
func (e *Event) JSON() EventJSON {
	out := EventJSON{ID: e.ID, ConsentID: e.ConsentID, Step: e.Step, Side: e.Side, BrandID: e.BrandID, Source: e.Source,
		Timestamp: e.OccurredAt.UTC().Format(timestampLayout),
		Data:      EventDataJSON{Platform: e.Device.Platform, OS: e.Device.OS, OSVersion: e.Device.OSVersion, Type: e.Type, Error: e.Error}}
	switch specs[e.Step].uri {
	case "uriAuthorizationEndpoint":
		out.Data.URIAuthorizationEndpoint = e.URI
	case "uri_callback":
		out.Data.URICallback = e.URI
	}
	return out
}

// fieldErrors converts problems to the HTTP layer's field errors.
func fieldErrors(ps []Problem) []httpx.FieldError {
	out := make([]httpx.FieldError, 0, len(ps))
	for _, p := range ps {
		out = append(out, httpx.FieldError{Field: p.Field, Message: p.Message})
	}
	return out
}
