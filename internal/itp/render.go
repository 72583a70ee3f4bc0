package itp

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ponte-ofb/ponte/internal/httpx"
)

// The create and GET-by-id responses are written here byte for byte as
// httpx.Marshal(SessionJSON) writes them (render_test.go holds them equal),
// without decoding the stored settings, tags and statusHistory only to encode
// them again: decoding and re-encoding them was most of a GET's own CPU.
// The stored JSON columns are httpx.Marshal's own output (see encodeSession,
// historySuffix), which encoding again leaves unchanged.

// sessionView is what a session response is made of.
type sessionView struct {
	id, journeyID, url, clientID, applicationID, tokenID, status string
	redirectURL, brandID, externalID, consentID                  string
	settings, tags, history                                      []byte // stored JSON
	createdAt, updatedAt                                         time.Time
}

func appendSessionJSON(b []byte, v *sessionView) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, v.id)
	b = append(b, `,"journeyId":`...)
	b = appendJSONString(b, v.journeyID)
	if v.url != "" {
		b = append(b, `,"journeySessionUrl":`...)
		b = appendJSONString(b, v.url)
	}
	b = append(b, `,"applicationClientId":`...)
	b = appendJSONString(b, v.clientID)
	b = append(b, `,"applicationId":`...)
	b = appendJSONString(b, v.applicationID)
	b = append(b, `,"tokenId":`...)
	b = appendJSONString(b, v.tokenID)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, v.status)
	b = append(b, `,"paymentInitiationApi":"`+PaymentInitiationAPI+`"`...)
	for _, f := range [...]struct{ name, value string }{
		{`,"redirectUrl":`, v.redirectURL}, {`,"brandId":`, v.brandID}, {`,"externalId":`, v.externalID}, {`,"consentId":`, v.consentID},
	} {
		if f.value != "" {
			b = append(b, f.name...)
			b = appendJSONString(b, f.value)
		}
	}
	b = append(b, `,"settings":`...)
	b = append(b, v.settings...)
	b = append(b, `,"tags":`...)
	b = append(b, v.tags...)
	b = append(b, `,"statusHistory":`...)
	b = append(b, v.history...)
	b = append(b, `,"createdAt":"`...)
	b = v.createdAt.UTC().AppendFormat(b, TimeLayout)
	b = append(b, `","updatedAt":"`...)
	b = v.updatedAt.UTC().AppendFormat(b, TimeLayout)
	return append(b, `"}`...)
}

// appendJSONString appends s as httpx.Marshal writes a string (no HTML
// escaping: journeySessionUrl's "&" stays "&"); anything beyond printable
// ASCII goes through it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := httpx.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// createdJSON is the create response.
func (c *Created) createdJSON() []byte {
	s := c.Session
	if c.enc == nil {
		enc, err := encodeSession(s)
		if err != nil {
			out := sessionResponse(s)
			out.JourneySessionURL = c.URL
			b, _ := httpx.Marshal(out)
			return b
		}
		c.enc = enc
	}
	v := sessionView{id: s.ID, journeyID: s.JourneyID, url: c.URL, clientID: s.ApplicationClientID, applicationID: s.ApplicationID,
		tokenID: s.TokenID, status: string(s.Status), redirectURL: s.RedirectURL, brandID: s.BrandID, externalID: s.ExternalID,
		consentID: s.ConsentID, settings: c.enc.settings, tags: c.enc.tags, history: c.enc.history,
		createdAt: s.CreatedAt, updatedAt: s.UpdatedAt}
	return appendSessionJSON(make([]byte, 0, 1024), &v)
}

// selectSessionViewSQL reads what a GET by id shows, and expires_at.
const selectSessionViewSQL = `SELECT application_id, application_client_id, journey_id, token_id, status,
	redirect_url, brand_id, external_id, consent_id, settings, tags, status_history, expires_at, created_at, updated_at
	FROM itp_journey_sessions WHERE id = $1`

// sessionJSON is Session's answer as the GET response body: session id of
// application applicationID (another application's is ErrNotFound),
// expired first when past its time-to-live and still expirable.
func (s *Service) sessionJSON(ctx context.Context, applicationID, id string) ([]byte, error) {
	out, due, err := s.readSessionJSON(ctx, applicationID, id)
	if err != nil || !due {
		return out, err
	}
	sess, err := s.expireAndRead(ctx, id)
	if err != nil {
		return nil, err
	}
	return httpx.Marshal(sessionResponse(sess))
}

func (s *Service) readSessionJSON(ctx context.Context, applicationID, id string) (out []byte, due bool, err error) {
	st, err := s.DB.ReadStmt(ctx, selectSessionViewSQL)
	if err != nil {
		return nil, false, err
	}
	rows, err := st.QueryContext(ctx, id)
	if err != nil {
		return nil, false, fmt.Errorf("itp: read journey session: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, false, fmt.Errorf("itp: read journey session: %w", err)
		}
		return nil, false, ErrNotFound
	}
	var (
		app, client, journey, tokenID, status sql.RawBytes
		redirect, brand, external, consent    sql.RawBytes
		settings, tags, history               sql.RawBytes
		expires, created, updated             int64
	)
	if err := rows.Scan(&app, &client, &journey, &tokenID, &status, &redirect, &brand, &external, &consent,
		&settings, &tags, &history, &expires, &created, &updated); err != nil {
		return nil, false, fmt.Errorf("itp: read journey session: %w", err)
	}
	if string(app) != applicationID {
		return nil, false, ErrNotFound
	}
	if Status(status).Expirable() && !s.now().Before(ms(expires)) {
		return nil, true, nil
	}
	v := sessionView{id: id, journeyID: string(journey), clientID: string(client), applicationID: applicationID,
		tokenID: string(tokenID), status: string(status), redirectURL: string(redirect), brandID: string(brand),
		externalID: string(external), consentID: string(consent), settings: settings, tags: tags, history: history,
		createdAt: ms(created), updatedAt: ms(updated)}
	return appendSessionJSON(make([]byte, 0, 768+len(settings)+len(tags)+len(history)), &v), false, nil
}
