package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestKeysDir: with --keys-dir every key path defaults into it, in any
// mode, the organisation id may come from it, explicit per-key flags still
// win, and a key set that is not there is refused naming `ponte keys init`.
func TestKeysDir(t *testing.T) {
	keys := t.TempDir()
	cases := []struct {
		name          string
		env           map[string]string
		args          []string
		signing, data string
		itp           []string
		wantErr       string
	}{
		{"sandbox", nil, []string{"--keys-dir", keys, "--data-dir", "d"},
			filepath.Join(keys, SigningKeyFileName), filepath.Join(keys, DataKeyFileName), []string{filepath.Join(keys, ITPEncryptionKeyFileName)}, ""},
		{"production without --org-id", map[string]string{"PONTE_KEYS_DIR": keys}, []string{"--mode", "production", "--pcm-url", "https://pcm.example"},
			filepath.Join(keys, SigningKeyFileName), filepath.Join(keys, DataKeyFileName), []string{filepath.Join(keys, ITPEncryptionKeyFileName)}, ""},
		{"explicit flags win", nil, []string{"--keys-dir", keys, "--signing-key", "/k/s.pem", "--data-key", "/k/d.key", "--itp-encryption-key", "/k/e.pem"},
			"/k/s.pem", "/k/d.key", []string{"/k/e.pem"}, ""},
		{"without --keys-dir", nil, []string{"--data-dir", "d"}, "d/" + SigningKeyFileName, "d/" + DataKeyFileName, []string{"d/" + SandboxITPEncryptionKeyFile}, ""},
		{"no such key set", nil, []string{"--keys-dir", filepath.Join(keys, "nope")}, "", "", nil, "ponte keys init --dir " + filepath.Join(keys, "nope")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parse(t, c.env, c.args...)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.SigningKeyFile != c.signing || cfg.DataKeyPath() != c.data || !slices.Equal(cfg.ITPEncryptionKeyFiles, c.itp) {
				t.Errorf("signing %s, data %s, itp %q; want %s, %s, %q", cfg.SigningKeyFile, cfg.DataKeyPath(), cfg.ITPEncryptionKeyFiles, c.signing, c.data, c.itp)
			}
		})
	}
}
