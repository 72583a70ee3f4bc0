package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/keyfile"
)

// OrgIDFile is where the sandbox keeps the organisation id it generated
// for Ponte (config.Config.OrganisationID) on its first start.
const OrgIDFile = "org-id"

// organisationID fills cfg.OrganisationID and, unless configured,
// cfg.PCMOrgID. Outside the sandbox config.Finish has required --org-id or
// a key set (--keys-dir), whose KEYS-DIR/org-id is read. The sandbox without
// a key set generates one into DATA-DIR/org-id; a data directory from before
// --org-id existed keeps the id it already reported to the PCM
// (DATA-DIR/pcm-org-id), so its identity does not change.
func organisationID(cfg *config.Config) error {
	if cfg.OrganisationID == "" && cfg.KeysDir != "" {
		// A key set holds it (createKeys checked the file is there); none is generated.
		path := filepath.Join(cfg.KeysDir, OrgIDFile)
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("app: the organisation id: %w", err)
		}
		if cfg.OrganisationID = strings.TrimSpace(string(raw)); uuid.Validate(cfg.OrganisationID) != nil {
			return fmt.Errorf("app: %s holds %q, not an organisation id (UUID)", path, cfg.OrganisationID)
		}
	}
	if cfg.OrganisationID == "" && cfg.Sandbox() {
		raw, _, err := keyfile.LoadOrCreate(filepath.Join(cfg.DataDir, OrgIDFile), func() ([]byte, error) {
			if old, err := os.ReadFile(filepath.Join(cfg.DataDir, PCMOrgIDFile)); err == nil {
				if id := strings.TrimSpace(string(old)); uuid.Validate(id) == nil {
					return []byte(id + "\n"), nil
				}
			}
			return []byte(uuid.NewString() + "\n"), nil
		})
		if err != nil {
			return fmt.Errorf("app: sandbox organisation id: %w", err)
		}
		id := strings.TrimSpace(string(raw))
		if uuid.Validate(id) != nil {
			return fmt.Errorf("app: %s holds %q, not an organisation id (UUID)", filepath.Join(cfg.DataDir, OrgIDFile), id)
		}
		cfg.OrganisationID = id
	}
	if cfg.OrganisationID == "" {
		return fmt.Errorf("app: --org-id is required outside the sandbox")
	}
	if cfg.PCMOrgID == "" {
		cfg.PCMOrgID = cfg.OrganisationID
	}
	return nil
}
