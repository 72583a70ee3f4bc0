package oidc

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"database/sql"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/luikyv/go-oidc/pkg/goidc"
	"github.com/luikyv/go-oidc/pkg/provider"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/directory"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/store"
)

// PathRegister is the dynamic client registration endpoint (RFC 7591);
// PathRegister/{client_id} is the client's configuration endpoint (RFC 7592).
const PathRegister = "/register"

// RFC 7591 §3.2.2 errors go-oidc has no constant for, and the webhook one of
// the Open Finance Brasil DCR/DCM API (dcr-dcm-swagger.yaml).
const (
	ErrorCodeInvalidSoftwareStatement    goidc.ErrorCode = "invalid_software_statement"
	ErrorCodeUnapprovedSoftwareStatement goidc.ErrorCode = "unapproved_software_statement"
	ErrorCodeInvalidWebhookURIs          goidc.ErrorCode = "invalid_webhook_uris"
)

// attrSoftwareStatement keeps the statement a client registered with: RFC
// 7591 §3.2.1 returns it unmodified with the client's metadata.
const attrSoftwareStatement = "software_statement"

// StatementVerifier checks a software statement against the Directory's keys
// (signature, issuer, iat age, active organisation and roles) and returns
// its claims; a refused statement is a *directory.StatementError
// (directory.Verifier).
type StatementVerifier interface {
	Verify(ctx context.Context, ssa string) (*directory.SoftwareStatement, error)
}

// KeySets reads the public key set at a URL, the client's jwks_uri
// (directory.JWKSCache).
type KeySets interface {
	Keys(ctx context.Context, url string) (jose.JSONWebKeySet, error)
}

// RegisteredApplications keeps the partner application of each dynamically
// registered client in step with it, inside the transaction that writes the
// client: a client and its application exist together or not at all.
type RegisteredApplications interface {
	SaveRegistered(ctx context.Context, tx *sql.Tx, app RegisteredApplication) error
	DisableRegistered(ctx context.Context, tx *sql.Tx, clientID string) error
}

// RegisteredApplication is what the partner application of a dynamically
// registered client holds.
type RegisteredApplication struct {
	ClientID       string
	Name           string
	OrganisationID string
	SoftwareID     string
	// Scopes are the client's scopes (openid and the APIs' scopes; the
	// consent-bound ones are left out).
	Scopes       []string
	RedirectURIs []string
	// JWKS are the signing keys read from the client's jwks_uri at this
	// registration or update: they verify the client's signed Payments API
	// bodies. Nil leaves the application's keys as they are.
	JWKS json.RawMessage
}

// Registration configures dynamic client registration and management
// (POST /register, GET|PUT|DELETE /register/{client_id}).
type Registration struct {
	Statements   StatementVerifier
	Keys         KeySets
	Applications RegisteredApplications
	// AllowLoopbackHTTP accepts http:// webhook URIs on loopback hosts (the
	// sandbox, where initiators run on the same machine).
	AllowLoopbackHTTP bool
	// HTTPClient fetches clients' jwks_uri for go-oidc (request objects and
	// client assertions are verified with the keys published there); nil is
	// a client with a 10-second timeout.
	HTTPClient *http.Client
}

// registrationRequest is the per-request state of a registration route,
// carried in the request's context from registrationHandler to the go-oidc
// callbacks (the dynamic-client handler and the client storage).
type registrationRequest struct {
	// token is the registration access token the request presented.
	token string
	// jwks are the client's signing keys read from its jwks_uri, for the
	// partner application.
	jwks json.RawMessage
	// refusal is the dynamic-client handler's error: go-oidc wraps it on
	// updates, and registrationWriter answers with it instead.
	refusal *goidc.Error
	// noScope says the request asked for no scope: it gets every scope its
	// statement allows (DCR-BR, "Applying Server Defaults").
	noScope bool
}

type registrationKey struct{}

func withRegistrationRequest(ctx context.Context, req *registrationRequest) context.Context {
	return context.WithValue(ctx, registrationKey{}, req)
}

func registrationFrom(ctx context.Context) *registrationRequest {
	r, _ := ctx.Value(registrationKey{}).(*registrationRequest)
	return r
}

// registrationTokenPrefix marks a stored registration access token as its
// SHA-256 hash.
const registrationTokenPrefix = "sha256:"

// hashRegistrationToken is what the storage keeps of a registration access
// token (RFC 7592): its SHA-256, never the token. The storage never hands
// the hash out (registeredToken), so what it is given to save is always a
// plain token.
func hashRegistrationToken(token string) string {
	if token == "" {
		return ""
	}
	return registrationTokenPrefix + hashKey(token)
}

// registeredToken is the registration access token go-oidc compares the
// presented one with: the presented token itself when its hash is the stored
// one, else "" (which matches nothing: go-oidc requires a non-empty token).
// Outside the registration routes nothing is presented and it is always "".
func registeredToken(ctx context.Context, stored string) string {
	req := registrationFrom(ctx)
	if req == nil || req.token == "" || stored == "" {
		return ""
	}
	if subtle.ConstantTimeCompare([]byte(hashRegistrationToken(req.token)), []byte(stored)) == 1 {
		return req.token
	}
	return ""
}

// maxRegistrationBody bounds a registration request (a statement is ~3 KiB).
const maxRegistrationBody = 64 << 10

// registrationHandler serves the registration routes with go-oidc: it hands
// the presented registration access token to the storage (which holds only
// its hash), bounds the body, marks the answers uncacheable (they carry the
// token) and keeps the dynamic-client handler's RFC 7591 error on updates.
// On the client configuration endpoint a missing or wrong token and an
// unknown client are one answer, 401 invalid_token (RFC 7592 §2, RFC 6750
// §3.1), so the endpoint tells nobody which client ids exist.
func (s *Server) registrationHandler() http.Handler {
	next := s.handler
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &registrationRequest{}
		if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
			req.token = strings.TrimSpace(token)
		}
		r = r.WithContext(withRegistrationRequest(r.Context(), req))
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxRegistrationBody)
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		if id := r.PathValue("client_id"); id != "" {
			c, err := s.storage.Clients().Client(r.Context(), id)
			switch {
			case errors.Is(err, ErrNotFound) || (err == nil && c.RegistrationToken == ""):
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_ = json.NewEncoder(w).Encode(goidc.NewError(goidc.ErrorCodeInvalidToken,
					"the registration access token is missing, wrong or replaced, or the client does not exist"))
				return
			case err != nil:
				s.logger.ErrorContext(r.Context(), "registration: load client", "err", err)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_ = json.NewEncoder(w).Encode(goidc.NewError(goidc.ErrorCodeInternalError, "internal error"))
				return
			}
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			if err := defaultScope(r, req); err != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(goidc.NewError(goidc.ErrorCodeInvalidRequest, "the request body cannot be read: "+err.Error()))
				return
			}
		}
		next.ServeHTTP(&registrationWriter{ResponseWriter: w, req: req}, r)
	})
}

// defaultScope stands in "openid" for a missing or empty scope: go-oidc
// requires openid in a registration before Ponte's handler sees it, and
// the handler then grants every scope the statement allows (req.noScope). A
// body that is not a JSON object is left for go-oidc to refuse.
func defaultScope(r *http.Request, req *registrationRequest) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil || fields == nil {
		return nil
	}
	var scope string
	if raw, ok := fields["scope"]; ok && json.Unmarshal(raw, &scope) != nil {
		return nil // not a string: go-oidc refuses it
	}
	if strings.TrimSpace(scope) != "" {
		return nil
	}
	req.noScope = true
	fields["scope"] = json.RawMessage(`"` + goidc.ScopeOpenID.ID + `"`)
	if body, err = json.Marshal(fields); err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return nil
}

// registrationWriter answers with the dynamic-client handler's error when
// there is one: go-oidc wraps it as "invalid_client_metadata: invalid
// metadata" on updates, which would lose its code and description.
type registrationWriter struct {
	http.ResponseWriter
	req     *registrationRequest
	replied bool
}

func (w *registrationWriter) WriteHeader(status int) {
	if w.req.refusal == nil || status < 400 {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.replied = true
	w.ResponseWriter.Header().Set("Content-Type", "application/json")
	w.ResponseWriter.WriteHeader(w.req.refusal.StatusCode())
	_ = json.NewEncoder(w.ResponseWriter).Encode(w.req.refusal)
}

func (w *registrationWriter) Write(b []byte) (int, error) {
	if w.replied {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// withRegistration turns on go-oidc's dynamic client registration with
// Ponte's rules when reg is set, and changes nothing otherwise. Registration
// access tokens rotate on each update (RFC 7592 §2.2 allows it): a token
// that leaked stops working once its owner uses it.
func withRegistration(reg *Registration, storage *Storage, mutualTLS bool) provider.Option {
	return func(p *provider.Provider) error {
		if reg == nil {
			return nil
		}
		if reg.Statements == nil || reg.Keys == nil || reg.Applications == nil {
			return errors.New("oidc: registration needs statements, keys and applications")
		}
		rg := registrar{reg: reg, storage: storage, mutualTLS: mutualTLS}
		httpClient := reg.HTTPClient
		if httpClient == nil {
			httpClient = &http.Client{Timeout: 10 * time.Second}
		}
		opts := []provider.Option{
			provider.WithDCR(rg.handle, nil),
			provider.WithDCREndpoint(PathRegister),
			provider.WithDCRTokenRotation(),
			provider.WithHTTPClientFunc(func(context.Context) *http.Client { return httpClient }),
		}
		if mutualTLS {
			// tls_client_auth beside private_key_jwt (FAPI-BR allows both);
			// only registered clients can choose it.
			opts = append(opts, provider.WithTokenAuthnMethods(goidc.ClientAuthnPrivateKeyJWT, goidc.ClientAuthnTLS))
		}
		for _, opt := range opts {
			if err := opt(p); err != nil {
				return err
			}
		}
		return nil
	}
}

// clientStorage is the client manager go-oidc uses: with registration on,
// a dynamically registered client is written and deleted together with its
// partner application.
func clientStorage(cfg Config) goidc.ClientManager {
	if cfg.Registration == nil {
		return cfg.Storage.Clients()
	}
	return registeredClients{clientManager{cfg.Storage}, cfg.Registration.Applications}
}

// registeredClients writes a client registered with a software statement in
// one transaction with its partner application; on delete it also ends the
// client's sessions, so its tokens stop working at once, and disables the
// application.
type registeredClients struct {
	clientManager
	apps RegisteredApplications
}

func (m registeredClients) Save(ctx context.Context, c *goidc.Client) error {
	if SoftwareID(c) == "" {
		return m.clientManager.Save(ctx, c)
	}
	app := RegisteredApplication{ClientID: c.ID, Name: c.Name, OrganisationID: OrganisationID(c), SoftwareID: SoftwareID(c),
		RedirectURIs: c.RedirectURIs}
	for _, s := range strings.Fields(c.ScopeIDs) {
		if s != ScopeConsent.ID && s != ScopeRecurringConsent.ID {
			app.Scopes = append(app.Scopes, s)
		}
	}
	if req := registrationFrom(ctx); req != nil {
		app.JWKS = req.jwks
	}
	err := m.s.db.Write(ctx, func(tx *sql.Tx) error {
		if err := m.saveTx(ctx, tx, c); err != nil {
			return err
		}
		return m.apps.SaveRegistered(ctx, tx, app)
	})
	if store.IsUniqueViolation(err) {
		// Another registration for the same software won the race.
		return goidc.NewError(ErrorCodeInvalidSoftwareStatement,
			fmt.Sprintf("software %s already has a client at this server", SoftwareID(c)))
	}
	return err
}

func (m registeredClients) Delete(ctx context.Context, id string) error {
	return m.s.db.Write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM oidc_grant_sessions WHERE client_id = $1`,
			`DELETE FROM oidc_authn_sessions WHERE client_id = $1`,
			`DELETE FROM oidc_clients WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("oidc: delete client %s: %w", id, err)
			}
		}
		return m.apps.DisableRegistered(ctx, tx, id)
	})
}

// clientIDForSoftware returns the client registered for softwareID ("" when none).
func (s *Storage) clientIDForSoftware(ctx context.Context, softwareID string) (string, error) {
	var id string
	err := s.db.Read().QueryRowContext(ctx, `SELECT id FROM oidc_clients WHERE software_id = $1`, softwareID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("oidc: client of software %s: %w", softwareID, err)
	}
	return id, nil
}

// registrar applies the Open Finance Brasil DCR profile (DCR-BR, "Client
// registration") to a registration or an update, after go-oidc's own
// metadata checks: it verifies the software statement and makes the
// client's metadata agree with it, the statement's values taking
// precedence.
type registrar struct {
	reg       *Registration
	storage   *Storage
	mutualTLS bool
}

// refuse records err for registrationWriter and returns it.
func refuse(r *http.Request, code goidc.ErrorCode, format string, args ...any) error {
	err := goidc.NewError(code, fmt.Sprintf(format, args...))
	if req := registrationFrom(r.Context()); req != nil {
		req.refusal = &err
	}
	return err
}

// handle is the goidc.HandleDynamicClientFunc. id is the client's id: a new
// one on POST /register, the path's on PUT /register/{client_id}.
func (g registrar) handle(r *http.Request, id string, meta *goidc.ClientMeta) error {
	ctx := r.Context()
	ssa, _ := meta.CustomAttribute(attrSoftwareStatement).(string)
	if ssa == "" {
		return refuse(r, ErrorCodeInvalidSoftwareStatement, "software_statement is required: the Directory's signed statement of the software")
	}
	st, err := g.reg.Statements.Verify(ctx, ssa)
	var serr *directory.StatementError
	switch {
	case errors.As(err, &serr):
		return refuse(r, goidc.ErrorCode(serr.Code), "%s", serr.Description)
	case err != nil:
		// The Directory's keys could not be read: not the client's fault.
		e := goidc.NewError("temporarily_unavailable", "the software statement cannot be verified now: the Directory's keys are unavailable").
			WithStatusCode(http.StatusServiceUnavailable)
		if req := registrationFrom(ctx); req != nil {
			req.refusal = &e
		}
		return e
	}
	if err := g.checkCertificate(r, st); err != nil {
		return err
	}
	if err := g.checkSoftware(r, id, st); err != nil {
		return err
	}
	requested := meta.ScopeIDs
	if req := registrationFrom(ctx); req != nil && req.noScope {
		requested = ""
	}
	scopes, err := g.scopes(r, st, requested)
	if err != nil {
		return err
	}
	webhooks, err := g.webhooks(r, st, meta.CustomAttribute(AttrWebhookURIs))
	if err != nil {
		return err
	}
	if len(meta.RedirectURIs) == 0 {
		return refuse(r, goidc.ErrorCodeInvalidRedirectURI, "redirect_uris is required: one or more of the statement's software_redirect_uris")
	}
	for _, u := range meta.RedirectURIs {
		if !slices.Contains(st.SoftwareRedirectURIs, u) {
			return refuse(r, goidc.ErrorCodeInvalidRedirectURI, "redirect_uri %q is not among the statement's software_redirect_uris", u)
		}
	}
	if err := g.authentication(r, meta); err != nil {
		return err
	}
	if meta.PublicJWKS != nil {
		return refuse(r, goidc.ErrorCodeInvalidClientMetadata,
			"jwks by value is not accepted: register jwks_uri, the statement's software_jwks_uri")
	}
	switch meta.PublicJWKSURI {
	case "":
		meta.PublicJWKSURI = st.SoftwareJWKSURI
	case st.SoftwareJWKSURI:
	default:
		return refuse(r, goidc.ErrorCodeInvalidClientMetadata,
			"jwks_uri %q is not the statement's software_jwks_uri %q", meta.PublicJWKSURI, st.SoftwareJWKSURI)
	}
	keys, encrypt, err := g.clientKeys(ctx, meta.PublicJWKSURI)
	if err != nil {
		return refuse(r, goidc.ErrorCodeInvalidClientMetadata, "the keys at jwks_uri %s: %v", meta.PublicJWKSURI, err)
	}
	switch {
	case meta.IDTokenKeyEncAlg == "" && meta.IDTokenContentEncAlg == "" && encrypt:
		// The software published an encryption key: its ID tokens are
		// encrypted, as a hand-registered initiator's (encryption.go).
		meta.IDTokenKeyEncAlg, meta.IDTokenContentEncAlg = IDTokenKeyEncAlg, IDTokenContentEncAlg
	case meta.IDTokenKeyEncAlg != "" && !encrypt:
		return refuse(r, goidc.ErrorCodeInvalidClientMetadata,
			"id_token_encrypted_response_alg %s needs an RSA encryption key with alg %s at jwks_uri %s", meta.IDTokenKeyEncAlg,
			IDTokenKeyEncAlg, meta.PublicJWKSURI)
	case meta.IDTokenKeyEncAlg != "" && meta.IDTokenContentEncAlg == "":
		meta.IDTokenContentEncAlg = IDTokenContentEncAlg
	}
	for _, rt := range meta.ResponseTypes {
		if rt != goidc.ResponseTypeCodeAndIDToken {
			return refuse(r, goidc.ErrorCodeInvalidClientMetadata,
				"response_types: this server answers only %q (the hybrid flow), not %q", goidc.ResponseTypeCodeAndIDToken, rt)
		}
	}

	// The statement's values take precedence (DCR-BR), then Ponte's policy
	// for every Open Finance client (initiatorPolicy).
	if st.SoftwareClientName != "" {
		meta.Name = st.SoftwareClientName
	}
	if meta.Name == "" {
		meta.Name = st.OrgName
	}
	for field, v := range map[*string]string{&meta.LogoURI: st.SoftwareLogoURI, &meta.PolicyURI: st.SoftwarePolicyURI,
		&meta.TermsOfServiceURI: st.SoftwareTOSURI} {
		if v != "" {
			*field = v
		}
	}
	meta.ScopeIDs = strings.Join(scopes, " ")
	c := goidc.Client{ClientMeta: *meta}
	initiatorPolicy(&c)
	meta.GrantTypes, meta.ResponseTypes = c.GrantTypes, c.ResponseTypes
	meta.JARIsRequired, meta.JARSigAlg, meta.PARIsRequired = true, goidc.PS256, true
	if meta.IDTokenSigAlg == "" {
		meta.IDTokenSigAlg = goidc.PS256
	}
	// Only Ponte's attributes stay: the client cannot set others.
	meta.CustomAttributes = map[string]any{
		AttrOrganisationID:    st.OrgID,
		AttrSoftwareID:        st.SoftwareID,
		attrSoftwareStatement: ssa,
	}
	if len(webhooks) > 0 {
		meta.SetCustomAttribute(AttrWebhookURIs, webhooks)
	}
	if req := registrationFrom(ctx); req != nil {
		req.jwks = keys
	}
	return nil
}

// checkSoftware keeps one client per software: a new registration for a
// software that has a client is refused (RFC 7591 §3.2.2; the client is
// managed at its configuration endpoint instead), and an update must
// present a statement of the client's own software and organisation.
func (g registrar) checkSoftware(r *http.Request, id string, st *directory.SoftwareStatement) error {
	ctx := r.Context()
	if r.Method == http.MethodPost {
		existing, err := g.storage.clientIDForSoftware(ctx, st.SoftwareID)
		if err != nil {
			return err
		}
		if existing != "" {
			return refuse(r, ErrorCodeInvalidSoftwareStatement,
				"software %s already has a client at this server (%s): read, update or delete it at %s/%s with its registration access token",
				st.SoftwareID, existing, PathRegister, existing)
		}
		return nil
	}
	current, err := g.storage.Clients().Client(ctx, id)
	if err != nil {
		return err
	}
	if SoftwareID(current) != st.SoftwareID || OrganisationID(current) != st.OrgID {
		return refuse(r, ErrorCodeInvalidSoftwareStatement,
			"the statement is for software %s of organisation %s; client %s belongs to software %s of organisation %s",
			st.SoftwareID, st.OrgID, id, SoftwareID(current), OrganisationID(current))
	}
	return nil
}

// scopes checks the requested scopes against those the statement's active
// roles allow (directory.ScopesForRoles: PAGTO → payments,
// recurring-payments; DADOS → consents, accounts, resources; openid always)
// and returns the client's: the requested ones, or all allowed when none
// were asked for (DCR-BR server defaults), with openid and the consent-bound
// scopes their APIs use.
func (g registrar) scopes(r *http.Request, st *directory.SoftwareStatement, requested string) ([]string, error) {
	roles := st.ActiveRoles()
	allowed := directory.ScopesForRoles(roles)
	if len(allowed) <= 1 { // openid alone: nothing at this server to use
		return nil, refuse(r, ErrorCodeUnapprovedSoftwareStatement,
			"the statement's active roles (%s) give no scope at this server: it serves the %s and %s roles",
			strings.Join(roles, ", "), directory.RolePayments, directory.RoleData)
	}
	asked := strings.Fields(requested)
	if len(asked) == 0 {
		asked = allowed
	}
	out := []string{goidc.ScopeOpenID.ID}
	for _, s := range asked {
		switch {
		case s == ScopeConsent.ID || s == ScopeRecurringConsent.ID:
			// Added below with the API scope they go with.
			continue
		case !slices.Contains(allowed, s):
			return nil, refuse(r, goidc.ErrorCodeInvalidClientMetadata,
				"scope %q is not allowed to the statement's active roles (%s): they allow %s",
				s, strings.Join(roles, ", "), strings.Join(allowed, " "))
		}
		out = append(out, s)
	}
	if slices.Contains(out, ScopePayments.ID) || slices.Contains(out, ScopeConsents.ID) {
		out = append(out, ScopeConsent.ID)
	}
	if slices.Contains(out, ScopeRecurringPayments.ID) {
		out = append(out, ScopeRecurringConsent.ID)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// webhookURIPattern is webhook_uris' pattern in the DCR/DCM API
// (dcr-dcm-swagger.yaml): https, no trailing slash, no query or fragment.
var webhookURIPattern = regexp.MustCompile(`^(https:\/\/[^\s\/?#]+(?:\/[^\s\/?#]+)*)$`)

// CheckWebhookURI checks one webhook base URI: the DCR/DCM pattern (https,
// no trailing slash, no query or fragment) or, when allowLoopbackHTTP, the
// same shape over http on a loopback host (localhost, 127.0.0.0/8, ::1).
func CheckWebhookURI(raw string, allowLoopbackHTTP bool) error {
	if webhookURIPattern.MatchString(raw) {
		if _, err := url.Parse(raw); err == nil {
			return nil
		}
	}
	if rest, ok := strings.CutPrefix(raw, "http://"); ok && allowLoopbackHTTP && webhookURIPattern.MatchString("https://"+rest) {
		if u, err := url.Parse(raw); err == nil && isLoopback(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("webhook URI %q must be an https URL without trailing slash, query or fragment", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// webhooks checks the requested webhook_uris: each of the DCR/DCM pattern
// and among the statement's software_api_webhook_uris.
func (g registrar) webhooks(r *http.Request, st *directory.SoftwareStatement, v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, refuse(r, ErrorCodeInvalidWebhookURIs, "webhook_uris must be an array of URLs")
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		u, ok := item.(string)
		if !ok {
			return nil, refuse(r, ErrorCodeInvalidWebhookURIs, "webhook_uris must be an array of URLs")
		}
		if err := CheckWebhookURI(u, g.reg.AllowLoopbackHTTP); err != nil {
			return nil, refuse(r, ErrorCodeInvalidWebhookURIs, "%v", err)
		}
		if !slices.Contains(st.SoftwareAPIWebhookURIs, u) {
			return nil, refuse(r, ErrorCodeInvalidWebhookURIs, "webhook URI %q is not among the statement's software_api_webhook_uris", u)
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// authentication accepts private_key_jwt (PS256), the default, and, under
// mutual TLS, tls_client_auth with tls_client_auth_subject_dn only (DCR-BR
// 12), which must name the subject of the certificate presented
// (distinguishedNameMatch: attributes in any order, descriptors or OIDs,
// values as strings or #hex, case ignored; see dn.go). The subject is then
// stored as Go prints it, since go-oidc compares it with that of the
// certificate at the token endpoint verbatim.
func (g registrar) authentication(r *http.Request, meta *goidc.ClientMeta) error {
	switch meta.TokenAuthnMethod {
	case "", goidc.ClientAuthnPrivateKeyJWT:
		meta.TokenAuthnMethod, meta.TokenAuthnSigAlg = goidc.ClientAuthnPrivateKeyJWT, goidc.PS256
		meta.TLSSubDistinguishedName, meta.TLSSubAlternativeName, meta.TLSSubAlternativeNameIp = "", "", ""
		return nil
	case goidc.ClientAuthnTLS:
		cert := httpx.ClientCertificate(r)
		switch {
		case !g.mutualTLS || cert == nil:
			return refuse(r, goidc.ErrorCodeInvalidClientMetadata,
				"tls_client_auth needs mutual TLS: register over it, or with %q", goidc.ClientAuthnPrivateKeyJWT)
		case meta.TLSSubDistinguishedName == "" || meta.TLSSubAlternativeName != "" || meta.TLSSubAlternativeNameIp != "":
			return refuse(r, goidc.ErrorCodeInvalidClientMetadata,
				"tls_client_auth takes tls_client_auth_subject_dn only (no tls_client_auth_san_dns or _san_ip)")
		}
		ok, err := subjectMatches(meta.TLSSubDistinguishedName, cert)
		if err != nil {
			return refuse(r, goidc.ErrorCodeInvalidClientMetadata, "tls_client_auth_subject_dn: %v", err)
		}
		if !ok {
			return refuse(r, goidc.ErrorCodeInvalidClientMetadata,
				"tls_client_auth_subject_dn %q is not the subject of the client certificate presented (%s)",
				meta.TLSSubDistinguishedName, cert.Subject.String())
		}
		meta.TLSSubDistinguishedName, meta.TokenAuthnSigAlg = cert.Subject.String(), ""
		return nil
	default:
		return refuse(r, goidc.ErrorCodeInvalidClientMetadata, "token_endpoint_auth_method %q is not supported: register with %q or %q",
			meta.TokenAuthnMethod, goidc.ClientAuthnPrivateKeyJWT, goidc.ClientAuthnTLS)
	}
}

// tlsClientTokens sends the client_credentials requests of clients that
// authenticate with tls_client_auth (no assertion, no secret: only their
// client_id and certificate) to go-oidc, and every other request to
// partner, Ponte's partner token endpoint. Without registration under
// mutual TLS no client authenticates so, and partner is returned as is.
func (s *Server) tlsClientTokens(partner http.Handler) http.Handler {
	if !s.tlsClientAuth {
		return partner
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, err := peekForm(r)
		if err == nil && form.Get("grant_type") == string(goidc.GrantClientCredentials) && form.Get("client_assertion") == "" &&
			form.Get("client_secret") == "" && r.Header.Get("Authorization") == "" && form.Get("client_id") != "" {
			if c, err := s.storage.Clients().Client(r.Context(), form.Get("client_id")); err == nil && c.TokenAuthnMethod == goidc.ClientAuthnTLS {
				s.handler.ServeHTTP(w, r)
				return
			}
		}
		partner.ServeHTTP(w, r)
	})
}

// clientKeys reads the client's key set at jwksURI and returns its public
// signing keys (use "sig" or none) as the partner application keeps them
// (auth.ParseJWKS), and whether it holds an encryption key go-oidc can
// encrypt ID tokens to: RSA, use "enc" (or none), alg RSA-OAEP, which
// go-oidc picks keys by.
func (g registrar) clientKeys(ctx context.Context, jwksURI string) (json.RawMessage, bool, error) {
	set, err := g.reg.Keys.Keys(ctx, jwksURI)
	if err != nil {
		return nil, false, err
	}
	var sig jose.JSONWebKeySet
	encrypt := false
	for _, k := range set.Keys {
		switch {
		case k.Algorithm == string(IDTokenKeyEncAlg) && (k.Use == "" || k.Use == "enc"):
			pub, ok := k.Key.(*rsa.PublicKey)
			encrypt = encrypt || (ok && pub.N.BitLen() >= minEncryptionKeyBits)
		case k.Use == "" || k.Use == "sig":
			sig.Keys = append(sig.Keys, k)
		}
	}
	raw, err := json.Marshal(sig)
	if err != nil {
		return nil, false, err
	}
	_, compact, err := auth.ParseJWKS(raw)
	if err != nil {
		return nil, false, err
	}
	return compact, encrypt, nil
}

// OIDs of the Open Finance Brasil certificate's subject (OFB x.509
// certificate standards): UID holds the software_id, organizationIdentifier
// "OFBBR-" + org_id.
var (
	oidUID                    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}
)

// checkCertificate matches the client certificate of a mutual-TLS request
// with the statement (DCR-BR 13 and 14): its UID must be the software_id and
// its organizationIdentifier OFBBR-{org_id} (certificates issued before
// September 2022: an OU of org_id). Without mutual TLS there is no
// certificate to match (the sandbox on plain HTTP).
func (g registrar) checkCertificate(r *http.Request, st *directory.SoftwareStatement) error {
	if !g.mutualTLS {
		return nil
	}
	cert := httpx.ClientCertificate(r)
	if cert == nil {
		return refuse(r, goidc.ErrorCodeInvalidClientMetadata, "a client certificate is required: register over mutual TLS")
	}
	uid, orgIdentifier := subjectAttr(cert, oidUID), subjectAttr(cert, oidOrganizationIdentifier)
	if uid != st.SoftwareID {
		return refuse(r, ErrorCodeUnapprovedSoftwareStatement,
			"the client certificate's UID %q is not the statement's software_id %q", uid, st.SoftwareID)
	}
	if orgIdentifier != "OFBBR-"+st.OrgID && !slices.Contains(cert.Subject.OrganizationalUnit, st.OrgID) {
		return refuse(r, ErrorCodeUnapprovedSoftwareStatement,
			"the client certificate's organizationIdentifier %q is not OFBBR- and the statement's org_id %q", orgIdentifier, st.OrgID)
	}
	return nil
}

func subjectAttr(cert *x509.Certificate, oid asn1.ObjectIdentifier) string {
	for _, n := range cert.Subject.Names {
		if n.Type.Equal(oid) {
			if s, ok := n.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}
