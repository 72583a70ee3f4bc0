package pcm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/httpx"
)

// ItemValidator checks one hybrid-flow item sent to endpoint (a path under
// HybridFlowPrefix) against the PCM's schema of that endpoint.
type ItemValidator interface {
	ValidateItem(endpoint string, item any) error
}

// Receiver is a PCM stand-in for tests and the sandbox: it serves the six
// hybrid-flow operations, validates each item (against the official
// specification with a SpecValidator, or Ponte's built-in copy of its
// rules), answers as the PCM does — 200 with a reportId per item, 207 when
// some item is invalid, 400 for a body that is not an array of at most
// 1,000 items — and keeps what it accepted.
type Receiver struct {
	// Validator checks items; nil means BuiltinValidator.
	Validator ItemValidator
	Clock     clock.Clock
	// Token, when set, is the bearer token the receiver requires (401 otherwise).
	Token string
	// Refuse, when set, may refuse a valid item with a reason (tests and
	// demos of a 207); "" accepts it.
	Refuse func(endpoint string, item map[string]any) string
	// Keep bounds the accepted reports kept for Accepted (default 10,000;
	// counts are never dropped).
	Keep int

	mu       sync.Mutex
	accepted []AcceptedReport
	counts   map[string]int
}

// AcceptedReport is an item the Receiver accepted.
type AcceptedReport struct {
	ReportID   string          `json:"reportId"`
	Endpoint   string          `json:"endpoint"`
	ConsentID  string          `json:"consentId"`
	Item       json.RawMessage `json:"item"`
	ReceivedAt time.Time       `json:"receivedAt"`
}

// Register mounts the receiver on mux under prefix (e.g. "/sandbox/pcm"):
// POST prefix/report-api/v2/hybrid-flow/{role}/{step}, and GET prefix/reports
// listing what it accepted.
func (rc *Receiver) Register(mux *http.ServeMux, prefix string) {
	mux.Handle("POST "+prefix+HybridFlowPrefix+"{role}/{step}", http.StripPrefix(prefix, rc))
	mux.HandleFunc("GET "+prefix+"/reports", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, r, http.StatusOK, map[string]any{"counts": rc.Counts(), "reports": orEmpty(rc.Accepted())})
	})
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Accepted returns the kept accepted reports, oldest first.
func (rc *Receiver) Accepted() []AcceptedReport {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.accepted)
}

// Counts returns how many items each endpoint accepted.
func (rc *Receiver) Counts() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]int, len(rc.counts))
	for k, v := range rc.counts {
		out[k] = v
	}
	return out
}

func writeMessage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// ServeHTTP serves POST /report-api/v2/hybrid-flow/{role}/{step}.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint := strings.TrimPrefix(r.URL.Path, HybridFlowPrefix)
	if r.Method != http.MethodPost || !slices.Contains(Endpoints, endpoint) {
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	if rc.Token != "" && r.Header.Get("Authorization") != "Bearer "+rc.Token {
		writeMessage(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeMessage(w, http.StatusUnsupportedMediaType, "Unsupported Media Type")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 10<<20))
	if err != nil {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Payload Too Large")
		return
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil || raws == nil || len(raws) > MaxBatch {
		writeMessage(w, http.StatusBadRequest, "Report Invalid")
		return
	}
	v := rc.Validator
	if v == nil {
		v = BuiltinValidator{}
	}
	now := clock.System{}.Now()
	if rc.Clock != nil {
		now = rc.Clock.Now()
	}
	results := make([]map[string]string, len(raws))
	var ok []AcceptedReport
	for i, raw := range raws {
		var item any
		if err := json.Unmarshal(raw, &item); err != nil {
			results[i] = map[string]string{"message": "Report Invalid"}
			continue
		}
		if err := v.ValidateItem(endpoint, item); err != nil {
			results[i] = map[string]string{"message": safeMessage(err.Error())}
			continue
		}
		obj, _ := item.(map[string]any)
		if rc.Refuse != nil {
			if reason := rc.Refuse(endpoint, obj); reason != "" {
				results[i] = map[string]string{"message": safeMessage(reason)}
				continue
			}
		}
		id := uuid.NewString()
		results[i] = map[string]string{"reportId": id}
		cid, _ := obj["consentId"].(string)
		ok = append(ok, AcceptedReport{ReportID: id, Endpoint: endpoint, ConsentID: cid, Item: raw, ReceivedAt: now})
	}
	rc.keep(endpoint, ok)
	code := http.StatusOK
	if len(ok) < len(raws) {
		code = http.StatusMultiStatus
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(results)
}

func (rc *Receiver) keep(endpoint string, reports []AcceptedReport) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.counts == nil {
		rc.counts = map[string]int{}
	}
	rc.counts[endpoint] += len(reports)
	limit := rc.Keep
	if limit <= 0 {
		limit = 10000
	}
	rc.accepted = append(rc.accepted, reports...)
	if over := len(rc.accepted) - limit; over > 0 {
		rc.accepted = slices.Delete(rc.accepted, 0, over)
	}
}

var unsafeMessage = regexp.MustCompile(`[^- /:_.',0-9a-zA-Z]+`)

// safeMessage fits msg to GenericError.message's pattern and length.
func safeMessage(msg string) string {
	msg = unsafeMessage.ReplaceAllString(msg, " ")
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// BuiltinValidator holds the PCM v1.0.4 hybrid-flow item rules in Go: the
// fields each endpoint requires, the enums, the consentId, URI and UUID
// patterns and the millisecond timestamp. Tests hold it to the official
// file (SpecValidator).
type BuiltinValidator struct{}

var (
	uuidPattern      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	itemRequirements = map[string][]string{
		"client/redirect-to-server":             {"consentId", "platform", "osVersion", "os", "timestamp", "clientOrgId"},
		"server/redirect-target":                {"consentId", "osVersion", "os", "type", "timestamp", "serverOrgId"},
		"server/authenticated":                  {"consentId", "platform", "osVersion", "os", "timestamp", "serverOrgId"},
		"server/redirect-to-client":             {"consentId", "uri_callback", "platform", "osVersion", "os", "type", "timestamp", "serverOrgId"},
		"client/redirect-target-with-errors":    {"consentId", "platform", "osVersion", "os", "error", "timestamp", "clientOrgId"},
		"client/redirect-target-without-errors": {"consentId", "platform", "osVersion", "os", "timestamp", "clientOrgId"},
	}
	itemTypes = map[string][]string{
		"server/redirect-target":    {TypeAwaitingHandoff, TypeAwaitingUserAuth, TypeAwaitingRedirectToApp},
		"server/redirect-to-client": {TypeAuthorised, TypeRejected},
	}
)

// ValidateItem implements ItemValidator.
func (BuiltinValidator) ValidateItem(endpoint string, item any) error {
	req, ok := itemRequirements[endpoint]
	if !ok {
		return fmt.Errorf("unknown endpoint %s", endpoint)
	}
	obj, ok := item.(map[string]any)
	if !ok {
		return errors.New("item must be an object")
	}
	str := func(name string) (string, bool, error) {
		v, present := obj[name]
		if !present {
			return "", false, nil
		}
		s, ok := v.(string)
		if !ok {
			return "", true, fmt.Errorf("%s must be a string", name)
		}
		return s, true, nil
	}
	for _, name := range req {
		if _, present := obj[name]; !present {
			return fmt.Errorf("property %s is missing", name)
		}
	}
	for _, name := range []string{"consentId", "platform", "os", "osVersion", "type", "timestamp", "error",
		"uriAuthorizationEndpoint", "uri_callback", "clientOrgId", "serverOrgId"} {
		if _, _, err := str(name); err != nil {
			return err
		}
	}
	if s, _, _ := str("consentId"); !ecmaConsentID(s) || utf8.RuneCountInString(s) > maxConsentID {
		return errors.New("consentId does not match the pattern or is longer than 256")
	}
	if s, ok, _ := str("platform"); ok && endpoint != "server/redirect-target" && !slices.Contains([]string{"BROWSER", "APP"}, s) {
		return errors.New("platform must be BROWSER or APP")
	}
	if s, _, _ := str("os"); !slices.Contains([]string{"LINUX", "MACOS", "UNIX", "WINDOWS", "IOS", "ANDROID", "OTHER"}, s) {
		return errors.New("os is not one of the enum")
	}
	if s, _, _ := str("timestamp"); len(s) > 28 || !validTimestamp(s) {
		return errors.New("timestamp must be a date-time of at most 28 characters")
	}
	if types, ok := itemTypes[endpoint]; ok {
		if s, _, _ := str("type"); !slices.Contains(types, s) {
			return errors.New("type is not one of the enum")
		}
	}
	for _, name := range []string{"uriAuthorizationEndpoint", "uri_callback"} {
		if s, ok, _ := str(name); ok && !validURI(s) {
			return fmt.Errorf("%s must be a URI matching ^[- /:_.',0-9a-zA-Z]{0,200}$", name)
		}
	}
	for _, name := range []string{"clientOrgId", "serverOrgId"} {
		if s, ok, _ := str(name); ok && !uuidPattern.MatchString(s) {
			return fmt.Errorf("%s must be a UUID", name)
		}
	}
	return nil
}

func validTimestamp(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// ecmaConsentID is the PCM's consentId pattern ^(?!\s)[\w\W\s]*[^\s]$ with
// ECMAScript's \s: not empty, no white space first or last.
func ecmaConsentID(s string) bool {
	if s == "" {
		return false
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return !ecmaSpace(first) && !ecmaSpace(last)
}

func ecmaSpace(r rune) bool { return unicode.IsSpace(r) || r == '\uFEFF' }

// SpecValidator validates items against the official PCM specification
// file (openapi3 schemas of each operation's request body).
type SpecValidator struct {
	items map[string]*openapi3.Schema
	whole map[string]*openapi3.Schema
}

// LoadSpecValidator loads the official PCM hybrid-flow OpenAPI file at
// path. Its consentId pattern uses an ECMAScript lookahead, which the
// validator evaluates with ECMAScript semantics (see ecmaRegex).
func LoadSpecValidator(path string) (*SpecValidator, error) {
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("pcm: load the PCM specification %s: %w", path, err)
	}
	v := &SpecValidator{items: map[string]*openapi3.Schema{}, whole: map[string]*openapi3.Schema{}}
	for _, ep := range Endpoints {
		item := doc.Paths.Find(HybridFlowPrefix + ep)
		if item == nil || item.Post == nil || item.Post.RequestBody == nil || item.Post.RequestBody.Value == nil {
			return nil, fmt.Errorf("pcm: %s has no POST %s%s with a request body", path, HybridFlowPrefix, ep)
		}
		mt := item.Post.RequestBody.Value.Content.Get("application/json")
		if mt == nil || mt.Schema == nil || mt.Schema.Value == nil || mt.Schema.Value.Items == nil || mt.Schema.Value.Items.Value == nil {
			return nil, fmt.Errorf("pcm: %s: POST %s%s takes no JSON array", path, HybridFlowPrefix, ep)
		}
		v.whole[ep], v.items[ep] = mt.Schema.Value, mt.Schema.Value.Items.Value
	}
	return v, nil
}

// ValidateItem implements ItemValidator.
func (v *SpecValidator) ValidateItem(endpoint string, item any) error {
	s, ok := v.items[endpoint]
	if !ok {
		return fmt.Errorf("unknown endpoint %s", endpoint)
	}
	return s.VisitJSON(item, openapi3.SetSchemaRegexCompiler(ecmaRegex), openapi3.MultiErrors())
}

// ValidateBody checks a whole request body (the array) against the
// operation's request schema.
func (v *SpecValidator) ValidateBody(endpoint string, body []byte) error {
	s, ok := v.whole[endpoint]
	if !ok {
		return fmt.Errorf("unknown endpoint %s", endpoint)
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return err
	}
	return s.VisitJSON(doc, openapi3.SetSchemaRegexCompiler(ecmaRegex), openapi3.MultiErrors())
}

// ecmaRegex compiles a specification pattern. Go's regexp lacks
// lookarounds; the PCM uses one, a leading (?!\s) ("does not start with
// white space"), which is checked here with ECMAScript's \s before the rest
// of the pattern (whose \s is Go's, ASCII white space).
func ecmaRegex(expr string) (openapi3.RegexMatcher, error) {
	if rest, ok := strings.CutPrefix(expr, `^(?!\s)`); ok {
		re, err := regexp.Compile(`^` + rest)
		if err != nil {
			return nil, err
		}
		return notLeadingSpace{re}, nil
	}
	return regexp.Compile(expr)
}

type notLeadingSpace struct{ re *regexp.Regexp }

func (m notLeadingSpace) MatchString(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && !ecmaSpace(r) && m.re.MatchString(s)
}
