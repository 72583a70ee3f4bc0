package consentflow

import "testing"

// desktop decides between the QR hand-off and a redirect to the partner's
// app, so a phone or tablet must never be taken for a desktop.
func TestDesktop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ua string
		want     bool
	}{
		{"desktop Chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", true},
		{"Android phone", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36", false},
		{"iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", false},
		{"iPad", "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)", false},
		{"Android tablet", "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", false},
		{"no User-Agent", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := desktop(tt.ua); got != tt.want {
				t.Errorf("desktop(%q) = %v, want %v", tt.ua, got, tt.want)
			}
		})
	}
}

// deepLink adds the two values seed 000 says the partner's app collects,
// keeping the partner's own query and replacing stale copies of them.
func TestDeepLink(t *testing.T) {
	t.Parallel()
	it := &Interaction{RequestURI: "urn:ietf:params:oauth:request_uri:abc", ClientID: "initiator-1"}
	tests := []struct {
		name, base, want string
	}{
		{"custom scheme", "bancox://openfinance", "bancox://openfinance?client_id=initiator-1&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aabc"},
		{"https with a query", "https://app.example/of?src=ponte", "https://app.example/of?client_id=initiator-1&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aabc&src=ponte"},
		{"stale values replaced", "https://app.example/of?client_id=old&request_uri=old", "https://app.example/of?client_id=initiator-1&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aabc"},
		{"unparsable kept as it is", "%zz", "%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deepLink(tt.base, it); got != tt.want {
				t.Errorf("deepLink(%q) = %q, want %q", tt.base, got, tt.want)
			}
		})
	}
}
