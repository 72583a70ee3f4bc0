package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/ponte-ofb/ponte/internal/store"
)

// Slug lengths: maxSlugBase bounds the part made from the name, so a
// collision suffix ("-2", "-3", ...) still fits in a readable URL segment.
const (
	maxSlugBase = 40
	// fallbackSlug names an application whose name has no letter or digit
	// that folds to ASCII (say, only Japanese or only symbols).
	fallbackSlug = "app"
	// maxSlugAttempts bounds the retries when instances sharing a
	// PostgreSQL database take the same slug at the same moment. A creator
	// that loses every race retries once per rival still in flight (the
	// slug it picks may belong to a transaction it cannot see yet), so the
	// bound is the number of simultaneous creations of one name it rides
	// out: generous, since each retry is only a read and a savepoint.
	maxSlugAttempts = 64
)

// specialFolds are Latin letters that Unicode does not decompose into an
// ASCII letter and a mark, spelled as their usual ASCII transliteration.
var specialFolds = map[rune]string{
	'ß': "ss", 'æ': "ae", 'Æ': "ae", 'œ': "oe", 'Œ': "oe", 'ø': "o", 'Ø': "o",
	'đ': "d", 'Đ': "d", 'ł': "l", 'Ł': "l", 'þ': "th", 'Þ': "th", 'ð': "d", 'Ð': "d",
	'ı': "i",
}

// Slug returns the URL-safe base slug of an application name: lowercase,
// accents folded to ASCII ("São João" → "sao-joao"), every run of other
// characters one '-', no '-' at either end, at most 40 characters; "app"
// when nothing is left. It is deterministic: the same name always gives the
// same base. Unique slugs add a suffix to it on collision (see insertApp).
func Slug(name string) string {
	var b strings.Builder
	dash := false // a separator is pending
	emit := func(s string) {
		if dash && b.Len() > 0 {
			b.WriteByte('-')
		}
		dash = false
		b.WriteString(s)
	}
	// NFD splits "ã" into "a" and a combining tilde, which is then dropped.
	for _, r := range norm.NFD.String(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			emit(string(r))
		case r >= 'A' && r <= 'Z':
			emit(string(r + ('a' - 'A')))
		case unicode.Is(unicode.Mn, r):
			// a combining mark: part of the letter before it
		case specialFolds[r] != "":
			emit(specialFolds[r])
		default:
			dash = true
		}
		if b.Len() >= maxSlugBase {
			break
		}
	}
	s := b.String()
	if len(s) > maxSlugBase {
		s = s[:maxSlugBase]
	}
	s = strings.Trim(s, "-")
	if s == "" {
		return fallbackSlug
	}
	return s
}

// withFreeSlug runs write — an INSERT or UPDATE storing the slug it is given
// — with the first free slug made from name: the base, then base-2, base-3,
// and so on. Each attempt runs under a savepoint; when a concurrent
// transaction (another instance on PostgreSQL) took the slug first, the
// unique index refuses it, the attempt is undone and the next free slug is
// tried. A unique violation on anything but the slug is returned as is.
func withFreeSlug(ctx context.Context, tx *sql.Tx, name string, write func(slug string) error) (string, error) {
	base := Slug(name)
	for attempt := 0; attempt < maxSlugAttempts; attempt++ {
		slug, err := freeSlug(ctx, tx, base)
		if err != nil {
			return "", err
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT application_slug`); err != nil {
			return "", fmt.Errorf("auth: slug savepoint: %w", err)
		}
		werr := write(slug)
		if werr == nil {
			if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT application_slug`); err != nil {
				return "", fmt.Errorf("auth: release slug savepoint: %w", err)
			}
			return slug, nil
		}
		// Undo the failed statement: PostgreSQL refuses every further
		// statement of a transaction after an error until then.
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT application_slug`); err != nil {
			return "", fmt.Errorf("auth: roll back slug savepoint: %w (after %w)", err, werr)
		}
		if !store.IsUniqueViolation(werr) {
			return "", werr
		}
		taken, err := slugTaken(ctx, tx, slug)
		if err != nil {
			return "", err
		}
		if !taken {
			return "", werr // another unique index refused the row
		}
	}
	return "", fmt.Errorf("auth: no free slug for %q after %d attempts", base, maxSlugAttempts)
}

// freeSlug returns base, or base-N with the smallest N ≥ 2 no application
// holds, as this transaction sees them.
func freeSlug(ctx context.Context, tx *sql.Tx, base string) (string, error) {
	// Slugs hold no '%' or '_', so base is a literal LIKE prefix.
	rows, err := tx.QueryContext(ctx, `SELECT slug FROM applications WHERE slug = $1 OR slug LIKE $2`, base, base+"-%")
	if err != nil {
		return "", fmt.Errorf("auth: read slugs: %w", err)
	}
	defer rows.Close()
	taken := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", fmt.Errorf("auth: read slugs: %w", err)
		}
		taken[s] = true
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("auth: read slugs: %w", err)
	}
	if !taken[base] {
		return base, nil
	}
	for n := 2; ; n++ {
		if s := base + "-" + strconv.Itoa(n); !taken[s] {
			return s, nil
		}
	}
}

func slugTaken(ctx context.Context, tx *sql.Tx, slug string) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM applications WHERE slug = $1`, slug).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: read slug: %w", err)
	}
	return true, nil
}

// BackfillSlugs gives a slug to every application that has none — those
// created before slugs existed — oldest first, by the rule new applications
// follow, and returns how many it assigned. Ponte runs it at start-up (and
// the apps CLI before it reads): the result is deterministic, and instances
// starting together on one PostgreSQL database agree, since each
// assignment only fills a slug still empty and collisions move to the next
// free suffix.
func (s *Applications) BackfillSlugs(ctx context.Context) (int, error) {
	rows, err := s.db.Read().QueryContext(ctx, `SELECT id, name FROM applications WHERE slug = '' ORDER BY created_at, id`)
	if err != nil {
		return 0, fmt.Errorf("auth: list applications without slug: %w", err)
	}
	type pending struct{ id, name string }
	var todo []pending
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.id, &p.name); err != nil {
			rows.Close()
			return 0, fmt.Errorf("auth: list applications without slug: %w", err)
		}
		todo = append(todo, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("auth: list applications without slug: %w", err)
	}
	assigned := 0
	for _, p := range todo {
		var filled bool // false when another instance assigned it first
		err := s.db.Write(ctx, func(tx *sql.Tx) error {
			_, err := withFreeSlug(ctx, tx, p.name, func(slug string) error {
				res, err := tx.ExecContext(ctx, `UPDATE applications SET slug = $1 WHERE id = $2 AND slug = ''`, slug, p.id)
				if err != nil {
					return err
				}
				n, err := res.RowsAffected()
				filled = n == 1
				return err
			})
			return err
		})
		if err != nil {
			return assigned, fmt.Errorf("auth: assign slug to application %s: %w", p.id, err)
		}
		if filled {
			assigned++
		}
	}
	if assigned > 0 {
		s.forget()
	}
	return assigned, nil
}
