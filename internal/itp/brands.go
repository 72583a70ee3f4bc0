package itp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Sealer seals brands' signing keys at rest (the vault, under the data key).
type Sealer interface {
	Seal(plaintext []byte, context string) (string, error)
	Open(sealed, context string) ([]byte, error)
}

// BrandKeyContext binds a brand's sealed signing key (table
// itp_brand_keys, column sealed_key) to its brand.
func BrandKeyContext(brandID string) string { return "itp-brand-key:" + brandID }

// AddBrand registers a brand: it validates b, takes its signing key —
// the PEM file b.SigningKeyFile names (created, RSA-2048, if absent), or a
// new key when it is empty — and stores the brand, enabled, with the key
// sealed in the database, where every instance reads it (BrandSigningKey).
// An issuer already registered is ErrInvalid.
func (s *Service) AddBrand(ctx context.Context, b Brand) (*Brand, error) {
	if err := validateBrand(&b); err != nil {
		return nil, err
	}
	if s.Keys == nil {
		return nil, errors.New("itp: add brand: no data key to seal its signing key with (Service.Keys)")
	}
	now := s.now()
	b.ID, b.Enabled, b.CreatedAt, b.UpdatedAt = newObjectID(now), true, now, now
	var pemKey []byte
	if b.SigningKeyFile != "" {
		if abs, err := filepath.Abs(b.SigningKeyFile); err == nil {
			b.SigningKeyFile = abs
		}
		if err := os.MkdirAll(filepath.Dir(b.SigningKeyFile), 0o700); err != nil {
			return nil, fmt.Errorf("itp: brand key directory: %w", err)
		}
		if _, err := auth.LoadOrCreateKey(b.SigningKeyFile); err != nil {
			return nil, fmt.Errorf("itp: brand signing key: %w", err)
		}
		var err error
		if pemKey, err = os.ReadFile(b.SigningKeyFile); err != nil {
			return nil, fmt.Errorf("itp: brand signing key: %w", err)
		}
	} else {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("itp: generate brand signing key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("itp: encode brand signing key: %w", err)
		}
		pemKey = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sealed, err := s.Keys.Seal(pemKey, BrandKeyContext(b.ID))
	if err != nil {
		return nil, fmt.Errorf("itp: seal brand signing key: %w", err)
	}
	err = s.DB.Write(ctx, func(tx *sql.Tx) error {
		if err := insertBrand(ctx, tx, &b); err != nil {
			return err
		}
		return insertBrandKey(ctx, tx, b.ID, sealed, now)
	})
	if store.IsUniqueViolation(err) {
		return nil, fmt.Errorf("%w brand: issuer %s is already registered", ErrInvalid, b.Issuer)
	}
	if err != nil {
		return nil, err
	}
	return &b, nil
}

func insertBrandKey(ctx context.Context, tx *sql.Tx, brandID, sealed string, now time.Time) error {
	// A brand's key never changes once stored: a second import is nothing.
	if _, err := tx.ExecContext(ctx, `INSERT INTO itp_brand_keys (brand_id, sealed_key, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (brand_id) DO NOTHING`, brandID, sealed, now.UnixMilli()); err != nil {
		return fmt.Errorf("itp: store brand signing key: %w", err)
	}
	return nil
}

// BrandSigningKey is the key Ponte signs with at brand id, read from the
// database. A brand from before keys were kept there whose key file this
// host has is imported first (ImportBrandKeys); ErrBrandKeyMissing when
// neither the database nor this host has it.
func (s *Service) BrandSigningKey(ctx context.Context, id string) (*auth.SigningKey, error) {
	if s.Keys == nil {
		return nil, errors.New("itp: brand signing key: no data key to open it with (Service.Keys)")
	}
	var sealed string
	err := s.DB.Read().QueryRowContext(ctx, `SELECT sealed_key FROM itp_brand_keys WHERE brand_id = $1`, id).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		b, berr := s.Brand(ctx, id)
		if berr != nil {
			return nil, berr
		}
		imported, ierr := s.importBrandKey(ctx, b)
		if ierr != nil {
			return nil, ierr
		}
		if !imported {
			return nil, fmt.Errorf("%w: brand %s (its key file %q is not on this host)", ErrBrandKeyMissing, id, b.SigningKeyFile)
		}
		err = s.DB.Read().QueryRowContext(ctx, `SELECT sealed_key FROM itp_brand_keys WHERE brand_id = $1`, id).Scan(&sealed)
	}
	if err != nil {
		return nil, fmt.Errorf("itp: read brand %s signing key: %w", id, err)
	}
	pemKey, err := s.Keys.Open(sealed, BrandKeyContext(id))
	if err != nil {
		return nil, fmt.Errorf("itp: open brand %s signing key (was it sealed under another data key?): %w", id, err)
	}
	return auth.ParseKey(pemKey)
}

// ErrBrandKeyMissing means a brand's signing key is neither in the database
// nor in a key file on this host.
var ErrBrandKeyMissing = errors.New("itp: brand signing key missing")

// ImportBrandKeys stores, sealed, the signing key of every brand that has
// none in the database yet and whose key file is on this host (brands
// added before keys were kept in the database), and returns how many it
// imported. Each instance runs it at start; a brand whose file only another
// host has is imported when that host starts, and is logged here.
func (s *Service) ImportBrandKeys(ctx context.Context) (int, error) {
	if s.Keys == nil {
		return 0, errors.New("itp: import brand keys: no data key (Service.Keys)")
	}
	rows, err := s.DB.Read().QueryContext(ctx, `SELECT `+brandColumns+` FROM itp_brands
		WHERE id NOT IN (SELECT brand_id FROM itp_brand_keys) ORDER BY created_at, id`)
	if err != nil {
		return 0, fmt.Errorf("itp: brands without a stored key: %w", err)
	}
	var missing []*Brand
	for rows.Next() {
		b, err := scanBrand(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		missing = append(missing, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("itp: brands without a stored key: %w", err)
	}
	n := 0
	for _, b := range missing {
		imported, err := s.importBrandKey(ctx, b)
		if err != nil {
			return n, err
		}
		if imported {
			n++
			continue
		}
		s.Logger.WarnContext(ctx, "itp: brand signing key not in the database and not on this host; the host that has it imports it when it starts",
			"brand", b.ID, "key_file", b.SigningKeyFile)
	}
	return n, nil
}

// importBrandKey stores b's key file, sealed, when this host has it.
func (s *Service) importBrandKey(ctx context.Context, b *Brand) (bool, error) {
	if b.SigningKeyFile == "" {
		return false, nil
	}
	pemKey, err := os.ReadFile(b.SigningKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("itp: brand %s signing key: %w", b.ID, err)
	}
	if _, err := auth.ParseKey(pemKey); err != nil {
		return false, fmt.Errorf("itp: brand %s signing key %s: %w", b.ID, b.SigningKeyFile, err)
	}
	sealed, err := s.Keys.Seal(pemKey, BrandKeyContext(b.ID))
	if err != nil {
		return false, fmt.Errorf("itp: seal brand %s signing key: %w", b.ID, err)
	}
	if err := s.DB.Write(ctx, func(tx *sql.Tx) error { return insertBrandKey(ctx, tx, b.ID, sealed, s.now()) }); err != nil {
		return false, err
	}
	return true, nil
}

// EnsureBrand returns the brand with b's issuer, registering b (as AddBrand)
// when there is none. Idempotent, also when several instances start at once.
func (s *Service) EnsureBrand(ctx context.Context, b Brand) (*Brand, error) {
	if existing, err := s.brandByIssuer(ctx, b.Issuer); !errors.Is(err, ErrBrandNotFound) {
		return existing, err
	}
	added, err := s.AddBrand(ctx, b)
	if errors.Is(err, ErrInvalid) {
		if existing, gerr := s.brandByIssuer(ctx, b.Issuer); gerr == nil {
			return existing, nil // another instance registered it first
		}
	}
	return added, err
}

func (s *Service) brandByIssuer(ctx context.Context, issuer string) (*Brand, error) {
	return scanBrand(s.DB.Read().QueryRowContext(ctx, selectBrandByIssuerSQL, issuer))
}

// Brand returns brand id (ErrBrandNotFound if there is none).
func (s *Service) Brand(ctx context.Context, id string) (*Brand, error) {
	st, err := s.DB.ReadStmt(ctx, selectBrandSQL)
	if err != nil {
		return nil, err
	}
	return scanBrand(st.QueryRowContext(ctx, id))
}

// Brands lists every brand, oldest first.
func (s *Service) Brands(ctx context.Context) ([]*Brand, error) {
	rows, err := s.DB.Read().QueryContext(ctx, listBrandsSQL)
	if err != nil {
		return nil, fmt.Errorf("itp: list brands: %w", err)
	}
	defer rows.Close()
	var out []*Brand
	for rows.Next() {
		b, err := scanBrand(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// DisableBrand stops offering brand id to new journey sessions.
func (s *Service) DisableBrand(ctx context.Context, id string) (*Brand, error) {
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, disableBrandSQL, s.now().UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("itp: disable brand: %w", err)
		}
		return brandChanged(res, id)
	})
	s.cache.forget()
	if err != nil {
		return nil, err
	}
	return s.Brand(ctx, id)
}

// SetBrandOrganisation records brand id's organisation id at the Open
// Finance Directory (a UUID; "" clears it): from then on the brand's signed
// answers must name it as iss.
func (s *Service) SetBrandOrganisation(ctx context.Context, id, organisationID string) (*Brand, error) {
	organisationID = strings.TrimSpace(organisationID)
	if organisationID != "" && uuid.Validate(organisationID) != nil {
		return nil, fmt.Errorf("%w brand: organisation id %q must be a UUID (the brand's organisationId at the Open Finance Directory)", ErrInvalid, organisationID)
	}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, brandOrganisationSQL, organisationID, s.now().UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("itp: set brand organisation id: %w", err)
		}
		return brandChanged(res, id)
	})
	s.cache.forget()
	if err != nil {
		return nil, err
	}
	return s.Brand(ctx, id)
}

// brandChanged is nil when res changed brand id's row and ErrBrandNotFound
// when it changed none. A driver that cannot count is an error of its own,
// not a missing brand.
func brandChanged(res sql.Result, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("itp: brand %s: count changed rows: %w", id, err)
	}
	if n == 0 {
		return ErrBrandNotFound
	}
	return nil
}

func validateBrand(b *Brand) error {
	var problems []string
	b.Name = strings.TrimSpace(b.Name)
	if b.Name == "" || len(b.Name) > 200 {
		problems = append(problems, "name is required (at most 200 characters)")
	}
	for _, f := range []struct {
		name, value string
		required    bool
	}{{"issuer", b.Issuer, true}, {"API base URL", b.APIBaseURL, true}, {"discovery URL", b.DiscoveryURL, false}, {"logo URL", b.LogoURL, false}} {
		if f.value == "" {
			if f.required {
				problems = append(problems, f.name+" is required")
			}
			continue
		}
		if u, err := url.Parse(f.value); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			problems = append(problems, f.name+" must be an absolute http(s) URL without userinfo or fragment")
		}
	}
	b.APIBaseURL = strings.TrimSuffix(b.APIBaseURL, "/")
	b.OrganisationID = strings.TrimSpace(b.OrganisationID)
	if b.OrganisationID != "" && uuid.Validate(b.OrganisationID) != nil {
		problems = append(problems, "organisation id must be a UUID (the brand's organisationId at the Open Finance Directory)")
	}
	if strings.TrimSpace(b.ClientID) == "" {
		problems = append(problems, "client id (Ponte's registration at the brand) is required")
	}
	if (b.MTLSCertFile == "") != (b.MTLSKeyFile == "") {
		problems = append(problems, "mTLS certificate and key files go together")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w brand: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}
