package config

import (
	"slices"
	"strings"
	"testing"
)

// TestITPEncryptionKey: --itp-encryption-key defaults into the sandbox's
// data directory, is absent in production unless given, and lists files
// (the first encrypts, the rest only decrypt).
func TestITPEncryptionKey(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		want    []string
		wantErr string
	}{
		{"sandbox default", nil, []string{"--data-dir", "d"}, []string{"d/" + SandboxITPEncryptionKeyFile}, ""},
		{"production: none", map[string]string{"PONTE_ORG_ID": testOrgID}, []string{"--mode", "production"}, nil, ""},
		{"production: configured", map[string]string{"PONTE_ORG_ID": testOrgID},
			[]string{"--mode", "production", "--itp-encryption-key", "/k/enc-2.pem"}, []string{"/k/enc-2.pem"}, ""},
		{"rotation list", nil, []string{"--itp-encryption-key", "/k/enc-2.pem, /k/enc-1.pem"}, []string{"/k/enc-2.pem", "/k/enc-1.pem"}, ""},
		{"from the environment", map[string]string{"PONTE_ITP_ENCRYPTION_KEY": "/k/env.pem"}, nil, []string{"/k/env.pem"}, ""},
		{"an empty entry", nil, []string{"--itp-encryption-key", "/k/enc-2.pem,,/k/enc-1.pem"}, nil, "--itp-encryption-key"},
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
			if !slices.Equal(cfg.ITPEncryptionKeyFiles, c.want) {
				t.Errorf("ITPEncryptionKeyFiles = %q, want %q", cfg.ITPEncryptionKeyFiles, c.want)
			}
		})
	}
}
