package consentflow

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/ponte-ofb/ponte/internal/customers"
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/ofb"
)

// The login step of seed 002: the holder partner's accessToken
// authenticates the end user.

// Login tokens: how long a partner's accessToken may live and the clock skew
// tolerated on its iat/exp.
const (
	MaxLoginTokenLifetime = 10 * time.Minute
	loginTokenLeeway      = 30 * time.Second
)

// LoginTokenAlgorithms are the signatures accepted on a partner's accessToken.
var LoginTokenAlgorithms = []jose.SignatureAlgorithm{jose.PS256, jose.RS256, jose.ES256}

// LoginRequest is the body of …/interactions/{interactionId}/login.
type LoginRequest struct {
	AccessToken string  `json:"accessToken" required:"true"`
	Device      *Device `json:"device" required:"true"`
}

// Validate reports every invalid field of a login request.
func (in *LoginRequest) Validate() []httpx.FieldError {
	var fields []httpx.FieldError
	if strings.Count(in.AccessToken, ".") != 2 || len(in.AccessToken) > 8192 {
		fields = append(fields, httpx.FieldError{Field: "accessToken", Message: "must be a signed JWT (compact serialization, at most 8 KiB)"})
	}
	if in.Device != nil {
		fields = append(fields, deviceFields(in.Device, "device")...)
	}
	return fields
}

// Login authenticates the end user with the holder partner's accessToken.
func (s *Interactions) Login(ctx context.Context, actor Actor, clientName, id string, in LoginRequest) (*Outcome, error) {
	it, p, err := s.access(ctx, s.db.Read(), actor, clientName, id)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	subject, err := s.verifyLoginToken(p, in.AccessToken, now)
	if err != nil {
		return nil, err
	}
	if subject != it.Document {
		return nil, ErrWrongUser
	}
	out := &Outcome{ByDisplayName: !p.NamedBySlug(clientName)}
	err = s.db.Write(ctx, func(tx *sql.Tx) error {
		it, err := s.open(ctx, tx, id, now)
		if err != nil {
			return err
		}
		cust, err := customers.CustomerTx(ctx, tx, it.ApplicationID, subject)
		if err != nil {
			return ErrWrongUser // the partner does not serve this user
		}
		if it.Status == InteractionAuthenticated && it.CustomerID != cust.ID {
			return ErrWrongUser
		}
		if out.Accounts, err = customers.AccountsTx(ctx, tx, it.ApplicationID, subject); err != nil {
			return err
		}
		it.Status, it.CustomerID, it.UpdatedAt = InteractionAuthenticated, cust.ID, now
		if err := updateInteraction(ctx, tx, it); err != nil {
			return err
		}
		out.Interaction = it
		if err := insertStep(ctx, tx, it.ID, StepLogin, in.Device, now); err != nil {
			return err
		}
		return s.record(ctx, tx, it, PCMAuthenticated, "", "", in.Device, now)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// verifyLoginToken checks a partner's accessToken and returns its subject
// (the user's CPF): signed by one of the partner's keys, issued by the
// partner's client_id to Ponte, unexpired and short-lived.
func (s *Interactions) verifyLoginToken(p *Partner, raw string, now time.Time) (string, error) {
	tok, err := jwt.ParseSigned(raw, LoginTokenAlgorithms)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrLoginToken, err)
	}
	if len(tok.Headers) != 1 {
		return "", ErrLoginToken
	}
	keys := p.Keys.Keys
	if kid := tok.Headers[0].KeyID; kid != "" {
		keys = p.Keys.Key(kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != tok.Headers[0].Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return "", fmt.Errorf("%w: signature not made by a key registered for the partner", ErrLoginToken)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: p.ClientID, AnyAudience: jwt.Audience{s.issuer}, Time: now}, loginTokenLeeway); err != nil {
		return "", fmt.Errorf("%w: %v", ErrLoginToken, err)
	}
	if claims.Expiry == nil || claims.IssuedAt == nil || claims.Expiry.Time().Sub(claims.IssuedAt.Time()) > MaxLoginTokenLifetime {
		return "", fmt.Errorf("%w: iat and exp are required, at most %s apart", ErrLoginToken, MaxLoginTokenLifetime)
	}
	if err := ofb.ValidateDocument(claims.Subject); err != nil || len(claims.Subject) != 11 {
		return "", fmt.Errorf("%w: sub must be the user's CPF", ErrLoginToken)
	}
	return claims.Subject, nil
}
