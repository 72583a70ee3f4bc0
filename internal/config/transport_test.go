package config

import (
	"strings"
	"testing"
)

// TestTransportCertificate: --transport-cert and --transport-key go
// together and must load; --transport-ca must hold a PEM certificate.
func TestTransportCertificate(t *testing.T) {
	cert, key, garbage := tlsFiles(t)
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"none", nil, nil, ""},
		{"pair", nil, []string{"--transport-cert", cert, "--transport-key", key}, ""},
		{"pair and CA from the environment", map[string]string{"PONTE_TRANSPORT_CERT": cert, "PONTE_TRANSPORT_KEY": key, "PONTE_TRANSPORT_CA": cert}, nil, ""},
		{"cert alone", nil, []string{"--transport-cert", cert}, "--transport-cert and --transport-key go together"},
		{"key alone", nil, []string{"--transport-key", key}, "--transport-cert and --transport-key go together"},
		{"not a pair", nil, []string{"--transport-cert", garbage, "--transport-key", key}, "--transport-cert"},
		{"CA not PEM", nil, []string{"--transport-ca", garbage}, "--transport-ca"},
		{"CA missing", nil, []string{"--transport-ca", garbage + ".absent"}, "--transport-ca"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parse(t, c.env, c.args...)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.name == "pair and CA from the environment" && (cfg.TransportCertFile != cert || cfg.TransportKeyFile != key || cfg.TransportCAFile != cert) {
				t.Errorf("cfg = %+v", cfg)
			}
		})
	}
}
