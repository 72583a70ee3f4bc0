// Package config reads Ponte's settings from flags and PONTE_* environment
// variables (a flag wins over its variable) and validates them at start-up.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Modes.
const (
	Sandbox    = "sandbox"
	Production = "production"
)

// Config is everything `ponte serve` needs.
type Config struct {
	Addr            string
	DatabaseURL     string
	DataDir         string
	Mode            string
	PublicURL       string
	SigningKeyFile  string
	TokenTTL        time.Duration
	LogFormat       string
	ShutdownTimeout time.Duration
	SweepInterval   time.Duration

	// Scale-out (issue 17). KeysDir is --keys-dir: the complete key set
	// `ponte keys init` generates, shared by every instance of one
	// database; when set, every key and secret comes from it and none is
	// created. Instance is --instance, this instance's name on its metrics
	// and logs (default: host name and port). DrainDelay is --drain-delay:
	// on SIGTERM /readyz turns unready this long before the listener
	// closes, so a load balancer's health checks take the instance out of
	// rotation first.
	KeysDir    string
	Instance   string
	DrainDelay time.Duration
	// JobLease is --job-lease: how long a claimed job belongs to its
	// instance; a job held by an instance that died is taken over by
	// another once its lease ends. PCMLease is --pcm-lease, the same for a
	// claimed batch of the PCM outbox (0: the forwarder's default).
	JobLease time.Duration
	PCMLease time.Duration

	// Card wallet provisioning (issue 4). Empty paths mean sandbox files in
	// DataDir (created on first start) in sandbox mode, and "not configured"
	// in production.
	DataKeyFile       string
	AppleRootCAFile   string
	TAVKeyFile        string
	PEPKFile          string
	NetworkSecretFile string

	// HTTPS and mutual TLS (issue 5 §2). TLSCertFile and TLSKeyFile (PEM)
	// turn HTTPS on; ClientCAFile (PEM bundle) additionally asks clients for
	// certificates issued by those authorities and makes the Open Finance
	// routes require one (see internal/app/tls.go).
	TLSCertFile  string
	TLSKeyFile   string
	ClientCAFile string
	// TransportCertFile and TransportKeyFile (PEM) are Ponte's transport
	// certificate (BRCAC in production) for the outbound Open Finance
	// calls that carry no brand of their own: the holder's webhook
	// notifications to initiators (issue 16 §5c).
	TransportCertFile string
	TransportKeyFile  string
	// TransportCAFile (PEM) holds the authorities Ponte trusts, besides the
	// system's, for the servers it reaches with that certificate: ICP-Brasil's
	// roots are in few system stores.
	TransportCAFile string

	// PCM dashboard (issue 8 §4). AdminToken is the admin credential of
	// /admin/pcm and of the all-partners funnel; in sandbox mode an empty
	// one is generated into DATA-DIR/admin-token. PCMFloor is the
	// conversion-rate floor the dashboard marks (0 < f <= 1); 0 means 80%
	// of the period's average rate.
	AdminToken string
	PCMFloor   float64

	// Forwarding to the PCM (issue 8 §3). PCMURL is the PCM's base URL;
	// empty keeps events pending (in the sandbox: forwards to Ponte's own
	// receiver at /sandbox/pcm). The token comes from PCMTokenURL with the
	// client_credentials grant for PCMClientID, over mutual TLS with
	// PCMCertFile/PCMKeyFile (or client_secret_basic with PCMClientSecret).
	// PCMOrgID is the organisationId sent as clientOrgId/serverOrgId.
	// PCMSpecFile is the official PCM hybrid-flow OpenAPI file the sandbox
	// receiver validates against.
	PCMURL          string
	PCMTokenURL     string
	PCMClientID     string
	PCMClientSecret string
	PCMCertFile     string
	PCMKeyFile      string
	PCMOrgID        string
	PCMSpecFile     string

	// Settlement (issue 15 §3): where holder-side payments move money.
	// "ledger": the sandbox ledger on the accounts the Accounts API serves;
	// "partner": the holder partner settles through its own core banking
	// and reports the outcome, or the payment is rejected after
	// SettlementDeadline. Default: ledger in sandbox mode, partner otherwise.
	Settlement         string
	SettlementDeadline time.Duration
	// LedgerPixLimit is the sandbox ledger's limit per Pix transfer, an
	// amount ("1000.00"), the same for every account: a larger payment is
	// refused with VALOR_ACIMA_LIMITE. "" or "0.00": no limit.
	// LedgerPixLimitCents is it in cents, set by Finish.
	LedgerPixLimit      string
	LedgerPixLimitCents int64

	// ITPCNPJ and ITPISPB are Ponte's identity as a payment initiator: the
	// CNPJ sent as cnpjInitiator and the ISPB that opens the endToEndIds it
	// generates (default: the CNPJ's first 8 digits, as an institution's ISPB
	// is). Sandbox default: the sandbox institution's CNPJ.
	ITPCNPJ string
	ITPISPB string

	// ITPEncryptionKey is --itp-encryption-key: Ponte-as-initiator's
	// encryption key files (PEM, PKCS #8 RSA of 2048 bits or more),
	// comma-separated. Brands encrypt the id_tokens they send Ponte to the
	// first, which Ponte publishes at GET /itp/jwks.json and registers at the
	// sandbox brand (created if absent); the others only decrypt, so a
	// rotated-out key keeps opening what brands encrypted before they read
	// the new one. Sandbox default: DATA-DIR/sandbox-itp-encryption-key.pem;
	// none otherwise. ITPEncryptionKeyFiles is the list, set by Finish.
	ITPEncryptionKey      string
	ITPEncryptionKeyFiles []string

	// OrganisationID is Ponte's organisation id at the Open Finance
	// Directory (a UUID): the iss of the messages it signs, the aud its
	// peers sign for, and the default PCM organisation id. Required
	// outside the sandbox; the sandbox generates one into
	// DATA-DIR/org-id on first start (see app.organisationID).
	OrganisationID string

	// The Open Finance Directory (issue 16 §1): DirectoryJWKS is where its
	// signing keys are (a JWKS URL, or a file), DirectoryIssuer the iss of
	// the software statements it signs, DirectoryKeystore the base URL of
	// the keystore where organisations publish their software's keys. Empty
	// means the sandbox's own Directory in the sandbox and the real
	// production Directory otherwise (see internal/app/directory.go).
	DirectoryJWKS     string
	DirectoryIssuer   string
	DirectoryKeystore string

	envProblems []string
}

// Settlement modes.
const (
	SettlementLedger  = "ledger"
	SettlementPartner = "partner"
)

// Sandbox reports whether Ponte runs in sandbox mode.
func (c *Config) Sandbox() bool { return c.Mode == Sandbox }

// TLS reports whether Ponte serves HTTPS.
func (c *Config) TLS() bool { return c.TLSCertFile != "" && c.TLSKeyFile != "" }

// MutualTLS reports whether Ponte asks clients for certificates.
func (c *Config) MutualTLS() bool { return c.TLS() && c.ClientCAFile != "" }

// Scheme is "https" when Ponte serves TLS, "http" otherwise.
func (c *Config) Scheme() string {
	if c.TLS() {
		return "https"
	}
	return "http"
}

// RegisterStorage adds the flags every database-using command shares.
func (c *Config) RegisterStorage(fs *flag.FlagSet) {
	fs.StringVar(&c.DatabaseURL, "database-url", env("PONTE_DATABASE_URL", ""),
		"PostgreSQL URL (postgres://...) or sqlite:PATH; empty means SQLite at DATA-DIR/ponte.db (env PONTE_DATABASE_URL)")
	fs.StringVar(&c.DataDir, "data-dir", env("PONTE_DATA_DIR", "data"),
		"directory for the SQLite database, the signing key and sandbox files (env PONTE_DATA_DIR)")
	fs.StringVar(&c.DataKeyFile, "data-key", env("PONTE_DATA_KEY", ""),
		"AES-256 data key sealing card numbers and webhook secrets, created if absent (never with --keys-dir); default DATA-DIR/data.key, KEYS-DIR/data.key with --keys-dir; back it up (env PONTE_DATA_KEY)")
	fs.StringVar(&c.KeysDir, "keys-dir", env("PONTE_KEYS_DIR", ""),
		"the key set `ponte keys init` generated, shared by every instance of one database: every key and secret comes from it and none is created (env PONTE_KEYS_DIR)")
}

// File names of the keys config defaults (internal/keyset holds the whole
// key set's layout and checks it agrees with these).
const (
	SigningKeyFileName          = "signing-key.pem"
	DataKeyFileName             = "data.key"
	ITPEncryptionKeyFileName    = "itp-encryption-key.pem" // in a key set (--keys-dir)
	SandboxITPEncryptionKeyFile = "sandbox-itp-encryption-key.pem"
)

// KeyDir is where key files default: the key set (--keys-dir) when one is
// given, the data directory otherwise.
func (c *Config) KeyDir() string {
	if c.KeysDir != "" {
		return c.KeysDir
	}
	return c.DataDir
}

// DataKeyPath is the data key file, defaulting into KeyDir.
func (c *Config) DataKeyPath() string {
	if c.DataKeyFile != "" {
		return c.DataKeyFile
	}
	return filepath.Join(c.KeyDir(), DataKeyFileName)
}

// RegisterServe adds the flags of `ponte serve`.
func (c *Config) RegisterServe(fs *flag.FlagSet) {
	c.RegisterStorage(fs)
	fs.StringVar(&c.Addr, "addr", env("PONTE_ADDR", "127.0.0.1:8080"), "listen address (env PONTE_ADDR)")
	fs.StringVar(&c.Mode, "mode", env("PONTE_MODE", Sandbox), "sandbox or production (env PONTE_MODE)")
	fs.StringVar(&c.PublicURL, "public-url", env("PONTE_PUBLIC_URL", ""),
		"base URL clients use to reach Ponte; default http://ADDR (env PONTE_PUBLIC_URL)")
	fs.StringVar(&c.SigningKeyFile, "signing-key", env("PONTE_SIGNING_KEY", ""),
		"token-signing key (PEM, created if absent, never with --keys-dir); default DATA-DIR/signing-key.pem, KEYS-DIR/signing-key.pem with --keys-dir; instances sharing a database must share it (env PONTE_SIGNING_KEY)")
	fs.DurationVar(&c.TokenTTL, "token-ttl", c.envDuration("PONTE_TOKEN_TTL", 300*time.Second), "access-token lifetime (env PONTE_TOKEN_TTL)")
	fs.StringVar(&c.LogFormat, "log-format", env("PONTE_LOG_FORMAT", ""), "text or json; default text in sandbox, json in production (env PONTE_LOG_FORMAT)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.envDuration("PONTE_SHUTDOWN_TIMEOUT", 30*time.Second),
		"how long in-flight requests may take to finish on SIGINT/SIGTERM (env PONTE_SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.envDuration("PONTE_DRAIN_DELAY", 0),
		"on SIGTERM, how long /readyz answers 503 before the listener closes, so a load balancer stops sending first; 0 closes at once (env PONTE_DRAIN_DELAY)")
	fs.DurationVar(&c.JobLease, "job-lease", c.envDuration("PONTE_JOB_LEASE", 5*time.Minute),
		"how long a claimed background job belongs to its instance: a job held by an instance that died is run by another after it (env PONTE_JOB_LEASE)")
	fs.DurationVar(&c.PCMLease, "pcm-lease", c.envDuration("PONTE_PCM_LEASE", 0),
		"how long a claimed PCM batch belongs to its instance, the same for the PCM outbox; 0 means twice the forwarding timeout plus 30 s; under 60 s the forwarding timeout is half of it (env PONTE_PCM_LEASE)")
	fs.StringVar(&c.Instance, "instance", env("PONTE_INSTANCE", ""),
		"this instance's name, the instance label of its metrics; default HOST:PORT (env PONTE_INSTANCE)")
	fs.StringVar(&c.AppleRootCAFile, "apple-root-ca", env("PONTE_APPLE_ROOT_CA", ""),
		"PEM trust roots for Apple Pay device certificates (Apple Root CA - G3 in production); default in sandbox: a generated test root (env PONTE_APPLE_ROOT_CA)")
	fs.StringVar(&c.TAVKeyFile, "mastercard-tav-key", env("PONTE_MASTERCARD_TAV_KEY", ""),
		"RSA private key (PEM) signing Mastercard activation data (TAV); default in sandbox: generated (env PONTE_MASTERCARD_TAV_KEY)")
	fs.StringVar(&c.PEPKFile, "mastercard-pepk", env("PONTE_MASTERCARD_PEPK", ""),
		"Mastercard payload-encryption public key (PEM) for Google Pay OPCs; default in sandbox: generated (env PONTE_MASTERCARD_PEPK)")
	fs.StringVar(&c.NetworkSecretFile, "network-secret", env("PONTE_NETWORK_SECRET", ""),
		"file holding the HMAC secret of token-network notifications; default in sandbox: generated (env PONTE_NETWORK_SECRET)")
	fs.StringVar(&c.TLSCertFile, "tls-cert", env("PONTE_TLS_CERT", ""),
		"server certificate chain (PEM); with --tls-key, serves HTTPS (TLS 1.2+) (env PONTE_TLS_CERT)")
	fs.StringVar(&c.TLSKeyFile, "tls-key", env("PONTE_TLS_KEY", ""),
		"private key (PEM) of --tls-cert (env PONTE_TLS_KEY)")
	fs.StringVar(&c.ClientCAFile, "client-ca", env("PONTE_CLIENT_CA", ""),
		"CA certificates (PEM) of client certificates; turns on mutual TLS: Open Finance routes require a client certificate and tokens are bound to it; needs --tls-cert (env PONTE_CLIENT_CA)")
	fs.StringVar(&c.TransportCertFile, "transport-cert", env("PONTE_TRANSPORT_CERT", ""),
		"Ponte's Open Finance transport certificate (PEM, BRCAC), presented over mutual TLS when notifying initiators' webhooks (env PONTE_TRANSPORT_CERT)")
	fs.StringVar(&c.TransportKeyFile, "transport-key", env("PONTE_TRANSPORT_KEY", ""),
		"private key (PEM) of --transport-cert (env PONTE_TRANSPORT_KEY)")
	fs.StringVar(&c.TransportCAFile, "transport-ca", env("PONTE_TRANSPORT_CA", ""),
		"CA certificates (PEM) trusted, besides the system's, for initiators' webhook servers (e.g. ICP-Brasil's roots) (env PONTE_TRANSPORT_CA)")
	fs.StringVar(&c.AdminToken, "admin-token", env("PONTE_ADMIN_TOKEN", ""),
		"admin credential of the PCM dashboard /admin/pcm (HTTP Basic password or bearer); default KEYS-DIR/admin-token with --keys-dir, else in sandbox: generated into DATA-DIR/admin-token (env PONTE_ADMIN_TOKEN)")
	fs.Float64Var(&c.PCMFloor, "pcm-floor", c.envFloat("PONTE_PCM_FLOOR", 0),
		"conversion-rate floor marked on the PCM dashboard, a fraction (0.6 = 60%); 0 means 80% of the period's average (env PONTE_PCM_FLOOR)")
	fs.StringVar(&c.PCMURL, "pcm-url", env("PONTE_PCM_URL", ""),
		"PCM base URL (e.g. https://api.pcm.openfinancebrasil.org.br) journey steps are forwarded to; empty keeps them pending, in sandbox forwards to the built-in receiver at /sandbox/pcm (env PONTE_PCM_URL)")
	fs.StringVar(&c.PCMTokenURL, "pcm-token-url", env("PONTE_PCM_TOKEN_URL", ""),
		"OAuth2 token endpoint of the PCM (client_credentials); empty sends no token (env PONTE_PCM_TOKEN_URL)")
	fs.StringVar(&c.PCMClientID, "pcm-client-id", env("PONTE_PCM_CLIENT_ID", ""),
		"client_id at the PCM token endpoint: the Software Statement's client id (env PONTE_PCM_CLIENT_ID)")
	fs.StringVar(&c.PCMClientSecret, "pcm-client-secret", env("PONTE_PCM_CLIENT_SECRET", ""),
		"client secret (client_secret_basic) when the PCM token endpoint takes one instead of mutual TLS (env PONTE_PCM_CLIENT_SECRET)")
	fs.StringVar(&c.PCMCertFile, "pcm-cert", env("PONTE_PCM_CERT", ""),
		"client certificate (PEM, directory-issued) for mutual TLS with the PCM and its token endpoint (env PONTE_PCM_CERT)")
	fs.StringVar(&c.PCMKeyFile, "pcm-key", env("PONTE_PCM_KEY", ""), "private key (PEM) of --pcm-cert (env PONTE_PCM_KEY)")
	fs.StringVar(&c.PCMOrgID, "pcm-org-id", env("PONTE_PCM_ORG_ID", ""),
		"organisationId (UUID) sent as clientOrgId/serverOrgId; default: --org-id (env PONTE_PCM_ORG_ID)")
	fs.StringVar(&c.Settlement, "settlement", env("PONTE_SETTLEMENT", ""),
		"where payments move money: ledger (the sandbox accounts are a ledger) or partner (the holder partner settles and reports the outcome); default ledger in sandbox, partner otherwise (env PONTE_SETTLEMENT)")
	fs.DurationVar(&c.SettlementDeadline, "settlement-deadline", c.envDuration("PONTE_SETTLEMENT_DEADLINE", 15*time.Minute),
		"with --settlement partner: how long the partner has to report a settlement before the payment is rejected with FALHA_INFRAESTRUTURA_DETENTORA (env PONTE_SETTLEMENT_DEADLINE)")
	fs.StringVar(&c.LedgerPixLimit, "ledger-pix-limit", env("PONTE_LEDGER_PIX_LIMIT", ""),
		"with --settlement ledger: the holder's limit per Pix transfer, an amount such as 1000.00; a larger payment is refused with VALOR_ACIMA_LIMITE; default: no limit (env PONTE_LEDGER_PIX_LIMIT)")
	fs.StringVar(&c.ITPCNPJ, "itp-cnpj", env("PONTE_ITP_CNPJ", ""),
		"Ponte's CNPJ as a payment initiator, sent as cnpjInitiator; required to initiate payments at brands outside the sandbox (env PONTE_ITP_CNPJ)")
	fs.StringVar(&c.ITPISPB, "itp-ispb", env("PONTE_ITP_ISPB", ""),
		"ISPB that opens the endToEndIds Ponte generates as an initiator; default: the first 8 digits of --itp-cnpj (env PONTE_ITP_ISPB)")
	fs.StringVar(&c.ITPEncryptionKey, "itp-encryption-key", env("PONTE_ITP_ENCRYPTION_KEY", ""),
		"Ponte-as-initiator's id_token encryption keys (PEM RSA), comma-separated: brands encrypt to the first (created if absent, published at /itp/jwks.json), the rest only decrypt (rotation); default KEYS-DIR/itp-encryption-key.pem with --keys-dir, else in sandbox DATA-DIR/sandbox-itp-encryption-key.pem, none otherwise (env PONTE_ITP_ENCRYPTION_KEY)")
	fs.StringVar(&c.OrganisationID, "org-id", env("PONTE_ORG_ID", ""),
		"Ponte's organisation id (UUID) at the Open Finance Directory: iss of the messages it signs, the default --pcm-org-id; default KEYS-DIR/org-id with --keys-dir; otherwise required outside the sandbox, generated into DATA-DIR/org-id in it (env PONTE_ORG_ID)")
	fs.StringVar(&c.DirectoryJWKS, "directory-jwks", env("PONTE_DIRECTORY_JWKS", ""),
		"the Open Finance Directory's signing keys, which software statements are verified with: a JWKS URL or file; default: the sandbox Directory's own keys in the sandbox, "+
			"https://keystore.directory.openbankingbrasil.org.br/openbanking.jwks otherwise (env PONTE_DIRECTORY_JWKS)")
	fs.StringVar(&c.DirectoryIssuer, "directory-issuer", env("PONTE_DIRECTORY_ISSUER", ""),
		"the iss software statements must carry; default: the sandbox Directory's in the sandbox, \"Open Banking Open Banking Brasil prod SSA issuer\" otherwise (env PONTE_DIRECTORY_ISSUER)")
	fs.StringVar(&c.DirectoryKeystore, "directory-keystore", env("PONTE_DIRECTORY_KEYSTORE", ""),
		"base URL of the Directory's keystore, where a client's jwks_uri must point ({keystore}/{org_id}/{software_id}/application.jwks); default: PUBLIC-URL/sandbox/directory/keystore in the sandbox, "+
			"https://keystore.directory.openbankingbrasil.org.br otherwise (env PONTE_DIRECTORY_KEYSTORE)")
	fs.StringVar(&c.PCMSpecFile, "pcm-spec", env("PONTE_PCM_SPEC", ""),
		"official PCM hybrid-flow OpenAPI file the sandbox receiver validates each item against; default: Ponte's built-in copy of its rules (env PONTE_PCM_SPEC)")
	c.SweepInterval = 10 * time.Second
}

// checkPCM validates Ponte's organisation id and the forwarding flags.
func (c *Config) checkPCM() []string {
	var problems []string
	if c.OrganisationID != "" && !uuidRE.MatchString(c.OrganisationID) {
		problems = append(problems, "--org-id must be a UUID (the organisation id the Open Finance Directory gave the institution)")
	}
	if c.OrganisationID == "" && !c.Sandbox() && c.KeysDir == "" {
		// A key set holds it (KEYS-DIR/org-id, read by app).
		problems = append(problems, "--org-id (PONTE_ORG_ID) is required outside the sandbox (or a --keys-dir holding it): it is the institution's organisation id at the Open Finance Directory")
	}
	if c.PCMOrgID == "" && uuidRE.MatchString(c.OrganisationID) {
		// The PCM knows the institution by the same organisation id.
		c.PCMOrgID = c.OrganisationID
	}
	if c.PCMURL != "" {
		if u, err := url.Parse(c.PCMURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, fmt.Sprintf("--pcm-url %q must be an absolute http(s) URL", c.PCMURL))
		}
		if c.PCMOrgID == "" && !c.Sandbox() && c.KeysDir == "" {
			problems = append(problems, "--pcm-url needs --pcm-org-id (the organisationId reported as clientOrgId/serverOrgId)")
		}
	}
	if c.PCMOrgID != "" && !uuidRE.MatchString(c.PCMOrgID) {
		problems = append(problems, fmt.Sprintf("--pcm-org-id %q must be a UUID", c.PCMOrgID))
	}
	if c.PCMTokenURL != "" && c.PCMClientID == "" {
		problems = append(problems, "--pcm-token-url needs --pcm-client-id")
	}
	if (c.PCMCertFile == "") != (c.PCMKeyFile == "") {
		problems = append(problems, "--pcm-cert and --pcm-key go together")
	} else if c.PCMCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.PCMCertFile, c.PCMKeyFile); err != nil {
			problems = append(problems, fmt.Sprintf("--pcm-cert %s / --pcm-key %s: %v", c.PCMCertFile, c.PCMKeyFile, err))
		}
	}
	return problems
}

// checkDirectory validates the Directory flags: URLs absolute, a JWKS file
// readable.
func (c *Config) checkDirectory() []string {
	var problems []string
	isURL := func(s string) bool {
		u, err := url.Parse(s)
		return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
	}
	switch j := c.DirectoryJWKS; {
	case j == "":
	case strings.HasPrefix(j, "http://") || strings.HasPrefix(j, "https://"):
		if !isURL(j) {
			problems = append(problems, fmt.Sprintf("--directory-jwks %q is not an absolute http(s) URL", j))
		}
	default:
		if _, err := os.Stat(j); err != nil {
			problems = append(problems, fmt.Sprintf("--directory-jwks: neither an http(s) URL nor a readable file: %v", err))
		}
	}
	if c.DirectoryKeystore != "" && !isURL(c.DirectoryKeystore) {
		problems = append(problems, fmt.Sprintf("--directory-keystore %q must be an absolute http(s) URL", c.DirectoryKeystore))
	}
	c.DirectoryKeystore = strings.TrimRight(c.DirectoryKeystore, "/")
	if c.DirectoryIssuer != "" && strings.TrimSpace(c.DirectoryIssuer) != c.DirectoryIssuer {
		problems = append(problems, "--directory-issuer must not start or end with spaces")
	}
	return problems
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Finish fills derived defaults and validates the serve configuration.
func (c *Config) Finish() error {
	problems := c.envProblems
	if c.Mode != Sandbox && c.Mode != Production {
		problems = append(problems, fmt.Sprintf("--mode must be %q or %q, not %q", Sandbox, Production, c.Mode))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		problems = append(problems, fmt.Sprintf("--addr %q: %v", c.Addr, err))
	}
	problems = append(problems, c.checkTLS()...)
	problems = append(problems, c.checkPCM()...)
	if (c.TransportCertFile == "") != (c.TransportKeyFile == "") {
		problems = append(problems, "--transport-cert and --transport-key go together")
	} else if c.TransportCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TransportCertFile, c.TransportKeyFile); err != nil {
			problems = append(problems, fmt.Sprintf("--transport-cert %s / --transport-key %s: %v", c.TransportCertFile, c.TransportKeyFile, err))
		}
	}
	if c.TransportCAFile != "" {
		if _, err := LoadTransportCAs(c.TransportCAFile); err != nil {
			problems = append(problems, err.Error())
		}
	}
	problems = append(problems, c.checkDirectory()...)
	if c.PublicURL == "" {
		c.PublicURL = c.Scheme() + "://" + c.Addr
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("--public-url %q must be an absolute http(s) URL", c.PublicURL))
	}
	if c.SigningKeyFile == "" {
		c.SigningKeyFile = filepath.Join(c.KeyDir(), SigningKeyFileName)
	}
	if c.TokenTTL < time.Second || c.TokenTTL > 24*time.Hour {
		problems = append(problems, "--token-ttl must be between 1s and 24h")
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
		if c.Mode == Production {
			c.LogFormat = "json"
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		problems = append(problems, "--log-format must be text or json")
	}
	if c.PCMFloor < 0 || c.PCMFloor > 1 {
		problems = append(problems, "--pcm-floor must be between 0 and 1")
	}
	if c.ShutdownTimeout <= 0 {
		problems = append(problems, "--shutdown-timeout must be positive")
	}
	if c.JobLease < 0 || c.PCMLease < 0 {
		problems = append(problems, "--job-lease and --pcm-lease must not be negative")
	}
	if c.Settlement == "" {
		c.Settlement = SettlementPartner
		if c.Mode == Sandbox {
			c.Settlement = SettlementLedger
		}
	}
	if c.Settlement != SettlementLedger && c.Settlement != SettlementPartner {
		problems = append(problems, fmt.Sprintf("--settlement must be %q or %q, not %q", SettlementLedger, SettlementPartner, c.Settlement))
	}
	if c.SettlementDeadline == 0 {
		c.SettlementDeadline = 15 * time.Minute // a Config built without flags (tests, embedding)
	}
	if c.SettlementDeadline < time.Minute || c.SettlementDeadline > 7*24*time.Hour {
		problems = append(problems, "--settlement-deadline must be between 1m and 168h")
	}
	if c.LedgerPixLimit != "" {
		cents, ok := amountCents(c.LedgerPixLimit)
		if !ok {
			problems = append(problems, "--ledger-pix-limit must be an amount with two decimal places, such as 1000.00")
		}
		c.LedgerPixLimitCents = cents
	}
	if c.ITPCNPJ != "" && !allDigits(c.ITPCNPJ, 14) {
		problems = append(problems, "--itp-cnpj must be 14 digits")
	}
	if c.ITPISPB != "" && !allDigits(c.ITPISPB, 8) {
		problems = append(problems, "--itp-ispb must be 8 digits")
	}
	if c.ITPISPB == "" && len(c.ITPCNPJ) == 14 {
		c.ITPISPB = c.ITPCNPJ[:8]
	}
	problems = append(problems, c.checkITPEncryptionKey()...)
	if c.KeysDir != "" {
		if info, err := os.Stat(c.KeysDir); err != nil || !info.IsDir() {
			problems = append(problems, fmt.Sprintf("--keys-dir %s is not a directory: generate the key set once with 'ponte keys init --dir %s' and hand the same directory to every instance", c.KeysDir, c.KeysDir))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// checkITPEncryptionKey splits --itp-encryption-key into
// ITPEncryptionKeyFiles, defaulting into the key set (any mode: `ponte keys
// init` generates one) or, without one, into the sandbox's data directory.
func (c *Config) checkITPEncryptionKey() []string {
	c.ITPEncryptionKeyFiles = nil
	if strings.TrimSpace(c.ITPEncryptionKey) == "" {
		if c.KeysDir != "" {
			c.ITPEncryptionKeyFiles = []string{filepath.Join(c.KeysDir, ITPEncryptionKeyFileName)}
		} else if c.Sandbox() {
			c.ITPEncryptionKeyFiles = []string{filepath.Join(c.DataDir, SandboxITPEncryptionKeyFile)}
		}
		return nil
	}
	for _, f := range strings.Split(c.ITPEncryptionKey, ",") {
		if f = strings.TrimSpace(f); f == "" {
			return []string{"--itp-encryption-key lists an empty file name"}
		}
		c.ITPEncryptionKeyFiles = append(c.ITPEncryptionKeyFiles, f)
	}
	return nil
}

// allDigits reports whether s is n ASCII digits.
func allDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkTLS validates the TLS flags: the certificate and key come together,
// load as a pair, and --client-ca needs them and holds at least one CA
// certificate.
func (c *Config) checkTLS() []string {
	var problems []string
	switch {
	case c.TLSCertFile != "" && c.TLSKeyFile == "":
		problems = append(problems, "--tls-cert needs --tls-key (PONTE_TLS_KEY)")
	case c.TLSCertFile == "" && c.TLSKeyFile != "":
		problems = append(problems, "--tls-key needs --tls-cert (PONTE_TLS_CERT)")
	case c.TLS():
		if _, err := LoadServerCertificate(c.TLSCertFile, c.TLSKeyFile); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if c.ClientCAFile != "" {
		if !c.TLS() {
			problems = append(problems, "--client-ca needs --tls-cert and --tls-key: mutual TLS requires HTTPS")
		}
		if _, err := LoadClientCAs(c.ClientCAFile); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

// LoadServerCertificate reads the PEM certificate chain and private key of
// --tls-cert and --tls-key.
func LoadServerCertificate(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// LoadTransportCAs is the system's trust roots plus the PEM certificates of
// --transport-ca (at least one).
func LoadTransportCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--transport-ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--transport-ca %s: no PEM CERTIFICATE", file)
	}
	return pool, nil
}

// LoadClientCAs reads the PEM CA certificates of --client-ca. Every PEM
// block must be a parsable CERTIFICATE, and there must be at least one.
func LoadClientCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("--client-ca %s: unexpected PEM block %q, want CERTIFICATE", file, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--client-ca %s: %w", file, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("--client-ca %s holds no PEM certificate", file)
	}
	return pool, nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func (c *Config) envFloat(name string, def float64) float64 {
	if v, ok := os.LookupEnv(name); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err == nil {
			return f
		}
		c.envProblems = append(c.envProblems, fmt.Sprintf("%s=%q is not a number (e.g. 0.6)", name, v))
	}
	return def
}

func (c *Config) envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		d, err := time.ParseDuration(v)
		if err == nil {
			return d
		}
		c.envProblems = append(c.envProblems, fmt.Sprintf("%s=%q is not a duration (e.g. 300s)", name, v))
	}
	return def
}

var amountPattern = regexp.MustCompile(`^\d{1,16}\.\d{2}$`)

// amountCents converts an amount as the payment APIs write it ("1000.00")
// to integer cents.
func amountCents(s string) (int64, bool) {
	if !amountPattern.MatchString(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.Replace(s, ".", "", 1), 10, 64)
	return n, err == nil
}
