package pcm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ponte-ofb/ponte/internal/clock"
)

// ClientCredentials gets the PCM's access token with the OAuth 2.0
// client_credentials grant at TokenURL and keeps it until shortly before it
// expires. The PCM's token endpoint authenticates the client by mutual TLS
// (tls_client_auth: the directory-issued certificate in HTTP's transport,
// ClientID in the form); with ClientSecret set it uses client_secret_basic
// instead (mocks, UAT set-ups).
type ClientCredentials struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scope        string
	// HTTP carries the client certificate when mutual TLS is configured.
	HTTP  *http.Client
	Clock clock.Clock

	mu      sync.Mutex
	token   string
	expires time.Time
}

// tokenMargin renews a token this long before it expires.
const tokenMargin = 30 * time.Second

// Token implements TokenSource.
func (c *ClientCredentials) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.Clock.Now()
	if c.token != "" && now.Before(c.expires) {
		return c.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}}
	if c.Scope != "" {
		form.Set("scope", c.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("pcm token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("pcm token: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("pcm token: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("pcm token: %s answered %d: %s", c.TokenURL, resp.StatusCode, trim(string(b)))
	}
	var t struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("pcm token: %s answered without an access_token", c.TokenURL)
	}
	life := time.Duration(t.ExpiresIn) * time.Second
	if life <= 0 {
		life = 5 * time.Minute
	}
	c.token, c.expires = t.AccessToken, now.Add(max(life-tokenMargin, life/2))
	return c.token, nil
}

// Invalidate implements TokenSource.
func (c *ClientCredentials) Invalidate() {
	c.mu.Lock()
	c.token = ""
	c.mu.Unlock()
}
