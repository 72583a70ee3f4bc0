package itp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/store"
)

// AddBrand registers a brand: it validates b, creates its signing key file
// (RSA-2048, PEM, mode 0600) in KeyDir when b.SigningKeyFile is empty (or
// loads the one named), and stores it enabled. An issuer already registered
// is ErrInvalid.
func (s *Service) AddBrand(ctx context.Context, b Brand) (*Brand, error) {
	if err := validateBrand(&b); err != nil {
		return nil, err
	}
	now := s.now()
	b.ID, b.Enabled, b.CreatedAt, b.UpdatedAt = newObjectID(now), true, now, now
	if b.SigningKeyFile == "" {
		if s.KeyDir == "" {
			return nil, fmt.Errorf("%w brand: no signing key file and no key directory", ErrInvalid)
		}
		b.SigningKeyFile = filepath.Join(s.KeyDir, "brand-"+b.ID+"-signing-key.pem")
	}
	if abs, err := filepath.Abs(b.SigningKeyFile); err == nil {
		b.SigningKeyFile = abs
	}
	if err := os.MkdirAll(filepath.Dir(b.SigningKeyFile), 0o700); err != nil {
		return nil, fmt.Errorf("itp: brand key directory: %w", err)
	}
	if _, err := auth.LoadOrCreateKey(b.SigningKeyFile); err != nil {
		return nil, fmt.Errorf("itp: brand signing key: %w", err)
	}
	err := s.DB.Write(ctx, func(tx *sql.Tx) error { return insertBrand(ctx, tx, &b) })
	if store.IsUniqueViolation(err) {
		return nil, fmt.Errorf("%w brand: issuer %s is already registered", ErrInvalid, b.Issuer)
	}
	if err != nil {
		return nil, err
	}
	return &b, nil
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

// SigningKey loads the brand's signing key from its key file. A missing
// file is an error: a new key would not be the one registered at the brand.
func (b *Brand) SigningKey() (*auth.SigningKey, error) {
	if _, err := os.Stat(b.SigningKeyFile); err != nil {
		return nil, fmt.Errorf("itp: brand %s signing key: %w", b.ID, err)
	}
	return auth.LoadOrCreateKey(b.SigningKeyFile)
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
