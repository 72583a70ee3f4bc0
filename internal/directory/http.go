package directory

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/validation"
)

// Organisation is a participant as the sandbox's participants list shows
// it: Ponte's own organisation, with its authorisation server, is one.
type Organisation struct {
	OrgID     string
	Name      string
	CNPJ      string
	CreatedOn time.Time
	Roles     []string
	// Server is the organisation's authorisation server, nil for none.
	Server *Server
}

// Server is an authorisation server of the participants list.
type Server struct {
	ID           string // AuthorisationServerId
	Name         string // CustomerFriendlyName
	Description  string
	DiscoveryURL string // OpenIDDiscoveryDocument
	DCR          bool   // AutoRegistrationSupported
	Resources    []APIResource
}

// APIResource is one API an authorisation server protects.
type APIResource struct {
	Family    string  // ApiFamilyType, e.g. "payments-pix"
	Version   float64 // ApiVersion (a number in the participants API)
	Endpoints []string
}

// Handler serves the sandbox Directory's routes: its keys, the keystore,
// the participants list, and the admin API that issues statements.
type Handler struct {
	Sandbox *Sandbox
	// AdminToken is the admin credential of the /admin/v1/directory routes
	// (bearer, or the password of HTTP Basic); "" refuses them all.
	AdminToken string
	// Self is Ponte's own organisation, listed first among the participants.
	Self   Organisation
	Logger *slog.Logger
}

// Cache lifetimes the sandbox announces: the Directory's key changes never
// while the data directory lives; a software's keys change when it is
// issued a statement again, which a relying party then picks up through
// its refresh on an unknown kid.
const (
	directoryKeysMaxAge = "public, max-age=3600"
	keystoreMaxAge      = "public, max-age=300"
)

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	errs := httpx.Bankly{}
	route := func(fn http.HandlerFunc) http.Handler { return httpx.Recover(errs, h.Logger, fn) }
	mux.Handle("GET "+PathJWKS, route(h.directoryKeys))
	mux.Handle("GET "+PathKeystore+"/{orgId}/{softwareId}/application.jwks", route(h.applicationKeys))
	mux.Handle("GET "+PathParticipants, route(h.participants))
	mux.Handle("POST "+PathIssue, route(h.adminOnly(h.issue)))
	mux.Handle("GET "+PathIssue, route(h.adminOnly(h.list)))
}

func (h *Handler) directoryKeys(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", directoryKeysMaxAge)
	httpx.WriteJSON(w, r, http.StatusOK, h.Sandbox.PublicKeys())
}

func (h *Handler) applicationKeys(w http.ResponseWriter, r *http.Request) {
	set, err := h.Sandbox.ApplicationJWKS(r.Context(), r.PathValue("orgId"), r.PathValue("softwareId"))
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.Bankly{}.WriteError(w, r, &httpx.Error{Status: http.StatusNotFound, Message: "the keystore holds no keys for this organisation and software"})
		return
	case err != nil:
		h.internal(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", keystoreMaxAge)
	httpx.WriteJSON(w, r, http.StatusOK, set)
}

// adminOnly refuses a request without the admin credential with a 401.
func (h *Handler) adminOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.admin(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ponte-admin"`)
			httpx.Bankly{}.WriteError(w, r, &httpx.Error{Status: http.StatusUnauthorized, Message: "the admin token is missing or wrong"})
			return
		}
		next(w, r)
	}
}

func (h *Handler) admin(r *http.Request) bool {
	if h.AdminToken == "" {
		return false
	}
	var given string
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		given = strings.TrimSpace(tok)
	} else if _, pw, ok := r.BasicAuth(); ok {
		given = pw
	}
	if given == "" {
		return false
	}
	// Digests compare in constant time whatever the lengths.
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(h.AdminToken))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// issueRequest is the body of POST /admin/v1/directory/software-statements,
// in the statement's own snake case.
type issueRequest struct {
	OrgID        string          `json:"org_id" required:"true"`
	OrgName      string          `json:"org_name"`
	OrgNumber    string          `json:"org_number"`
	SoftwareID   string          `json:"software_id"`
	ClientName   string          `json:"client_name"`
	Roles        []string        `json:"roles" required:"true"`
	RedirectURIs []string        `json:"redirect_uris" required:"true"`
	WebhookURIs  []string        `json:"webhook_uris"`
	JWKS         json.RawMessage `json:"jwks" required:"true"`
}

// SoftwareJSON is a software in the admin API's answers.
type SoftwareJSON struct {
	OrgID           string   `json:"org_id"`
	OrgName         string   `json:"org_name"`
	OrgNumber       string   `json:"org_number,omitempty"`
	SoftwareID      string   `json:"software_id"`
	ClientName      string   `json:"client_name"`
	Roles           []string `json:"roles"`
	Scopes          []string `json:"scopes"`
	RedirectURIs    []string `json:"redirect_uris"`
	WebhookURIs     []string `json:"webhook_uris"`
	SoftwareJWKSURI string   `json:"software_jwks_uri"`
	Keys            int      `json:"keys"`
	CreatedAt       string   `json:"created_at"`
	UpdatedAt       string   `json:"updated_at"`
}

// JSON is sw as the admin API shows it.
func (s *Sandbox) JSON(sw *Software) SoftwareJSON {
	return SoftwareJSON{
		OrgID: sw.OrgID, OrgName: sw.OrgName, OrgNumber: sw.OrgNumber, SoftwareID: sw.SoftwareID, ClientName: sw.ClientName,
		Roles: sw.Roles, Scopes: ScopesForRoles(sw.Roles), RedirectURIs: sw.RedirectURIs, WebhookURIs: sw.WebhookURIs,
		SoftwareJWKSURI: KeystoreJWKSURI(s.keystore, sw.OrgID, sw.SoftwareID), Keys: len(sw.JWKS.Keys),
		CreatedAt: sw.CreatedAt.UTC().Format(time.RFC3339), UpdatedAt: sw.UpdatedAt.UTC().Format(time.RFC3339),
	}
}

func (h *Handler) issue(w http.ResponseWriter, r *http.Request) {
	errs := httpx.Bankly{}
	body, herr := httpx.ReadBody(w, r)
	if herr != nil {
		errs.WriteError(w, r, herr)
		return
	}
	var in issueRequest
	if herr := httpx.DecodeObject(body, &in); herr != nil {
		errs.WriteError(w, r, herr)
		return
	}
	sw, ssa, err := h.Sandbox.Issue(r.Context(), IssueRequest(in))
	var verr *validation.Error
	switch {
	case errors.As(err, &verr):
		e := &httpx.Error{Status: http.StatusBadRequest, Message: verr.Error()}
		for _, f := range verr.Fields {
			e.Fields = append(e.Fields, httpx.FieldError{Field: f.Field, Message: f.Message})
		}
		errs.WriteError(w, r, e)
		return
	case err != nil:
		h.internal(w, r, err)
		return
	}
	httpx.WriteJSON(w, r, http.StatusCreated, struct {
		SoftwareStatement string `json:"software_statement"`
		SoftwareJSON
	}{ssa, h.Sandbox.JSON(sw)})
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	list, err := h.Sandbox.List(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	out := make([]SoftwareJSON, 0, len(list))
	for i := range list {
		out = append(out, h.Sandbox.JSON(&list[i]))
	}
	httpx.WriteJSON(w, r, http.StatusOK, struct {
		Data []SoftwareJSON `json:"data"`
	}{out})
}

func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	h.Logger.ErrorContext(r.Context(), "sandbox directory", "err", err)
	httpx.Bankly{}.WriteError(w, r, httpx.Internal())
}

// participants answers the participants list (OAPI participants 1.0.0,
// OrganisationsExportOpenData): Ponte's own organisation first, then every
// organisation the sandbox issued statements for, with the roles of its
// software.
func (h *Handler) participants(w http.ResponseWriter, r *http.Request) {
	list, err := h.Sandbox.List(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	orgs := []Organisation{h.Self}
	index := map[string]int{h.Self.OrgID: 0}
	for _, sw := range list {
		i, ok := index[sw.OrgID]
		if !ok {
			i = len(orgs)
			index[sw.OrgID] = i
			orgs = append(orgs, Organisation{OrgID: sw.OrgID, Name: sw.OrgName, CNPJ: sw.OrgNumber, CreatedOn: sw.CreatedAt})
		}
		o := &orgs[i]
		if sw.CreatedAt.Before(o.CreatedOn) {
			o.CreatedOn = sw.CreatedAt
		}
		for _, role := range sw.Roles {
			if !slices.Contains(o.Roles, role) {
				o.Roles = append(o.Roles, role)
			}
		}
	}
	out := make([]participantJSON, 0, len(orgs))
	for _, o := range orgs {
		out = append(out, o.export())
	}
	w.Header().Set("Cache-Control", "no-cache")
	httpx.WriteJSON(w, r, http.StatusOK, out)
}

// participantJSON is OrganisationExportOpenData, limited to the fields the
// sandbox knows.
type participantJSON struct {
	OrganisationID        string            `json:"OrganisationId"`
	Status                string            `json:"Status"`
	OrganisationName      string            `json:"OrganisationName"`
	CreatedOn             string            `json:"CreatedOn"`
	LegalEntityName       string            `json:"LegalEntityName"`
	CountryOfRegistration string            `json:"CountryOfRegistration"`
	CompanyRegister       string            `json:"CompanyRegister"`
	RegistrationNumber    string            `json:"RegistrationNumber"`
	RegisteredName        string            `json:"RegisteredName"`
	AuthorisationServers  []serverJSON      `json:"AuthorisationServers"`
	OrgDomainClaims       []domainClaimJSON `json:"OrgDomainClaims"`
	OrgDomainRoleClaims   []roleClaimJSON   `json:"OrgDomainRoleClaims"`
}

type serverJSON struct {
	AuthorisationServerID       string         `json:"AuthorisationServerId"`
	OrganisationID              string         `json:"OrganisationId"`
	AutoRegistrationSupported   bool           `json:"AutoRegistrationSupported"`
	APIResources                []resourceJSON `json:"ApiResources"`
	CustomerFriendlyDescription string         `json:"CustomerFriendlyDescription"`
	CustomerFriendlyName        string         `json:"CustomerFriendlyName"`
	OpenIDDiscoveryDocument     string         `json:"OpenIDDiscoveryDocument"`
}

type resourceJSON struct {
	APIFamilyType         string         `json:"ApiFamilyType"`
	APIVersion            float64        `json:"ApiVersion"`
	APIDiscoveryEndpoints []endpointJSON `json:"ApiDiscoveryEndpoints"`
}

type endpointJSON struct {
	APIEndpoint string `json:"ApiEndpoint"`
}

type domainClaimJSON struct {
	AuthorisationDomainName string `json:"AuthorisationDomainName"`
	AuthorityName           string `json:"AuthorityName"`
	RegistrationID          string `json:"RegistrationId"`
	Status                  string `json:"Status"`
}

type roleClaimJSON struct {
	Status              string   `json:"Status"`
	AuthorisationDomain string   `json:"AuthorisationDomain"`
	Role                string   `json:"Role"`
	Authorisations      []string `json:"Authorisations"`
	RegistrationID      string   `json:"RegistrationId"`
}

// The authorisation domain and authority of Open Finance Brasil's
// participants, as the real list names them.
const (
	authorisationDomain = "Open Banking"
	authorityName       = "Banco Central do Brasil"
)

func (o Organisation) export() participantJSON {
	// The real list's registration ids are the CNPJ's first 8 digits (the
	// root) with the domain and role.
	root := o.CNPJ
	if len(root) >= 8 {
		root = root[:8]
	}
	p := participantJSON{
		OrganisationID: o.OrgID, Status: RoleActive, OrganisationName: o.Name,
		CreatedOn: o.CreatedOn.UTC().Format("2006-01-02 15:04:05.000"), LegalEntityName: o.Name,
		CountryOfRegistration: "BR", CompanyRegister: "Cadastro Nacional da Pessoa Jurídica",
		RegistrationNumber: o.CNPJ, RegisteredName: o.Name,
		AuthorisationServers: []serverJSON{},
		OrgDomainClaims: []domainClaimJSON{{AuthorisationDomainName: authorisationDomain, AuthorityName: authorityName,
			RegistrationID: root + "-OFB", Status: RoleActive}},
		OrgDomainRoleClaims: []roleClaimJSON{},
	}
	for _, role := range o.Roles {
		p.OrgDomainRoleClaims = append(p.OrgDomainRoleClaims, roleClaimJSON{Status: RoleActive, AuthorisationDomain: authorisationDomain,
			Role: role, Authorisations: []string{}, RegistrationID: root + "-OFB-" + role})
	}
	if s := o.Server; s != nil {
		sj := serverJSON{AuthorisationServerID: s.ID, OrganisationID: o.OrgID, AutoRegistrationSupported: s.DCR,
			APIResources: []resourceJSON{}, CustomerFriendlyDescription: s.Description, CustomerFriendlyName: s.Name,
			OpenIDDiscoveryDocument: s.DiscoveryURL}
		for _, res := range s.Resources {
			rj := resourceJSON{APIFamilyType: res.Family, APIVersion: res.Version, APIDiscoveryEndpoints: []endpointJSON{}}
			for _, e := range res.Endpoints {
				rj.APIDiscoveryEndpoints = append(rj.APIDiscoveryEndpoints, endpointJSON{APIEndpoint: e})
			}
			sj.APIResources = append(sj.APIResources, rj)
		}
		p.AuthorisationServers = append(p.AuthorisationServers, sj)
	}
	return p
}
