package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDirectory: the --directory-* flags (and their environment variables)
// are validated, and an empty value stays empty for app to default by mode.
func TestDirectory(t *testing.T) {
	jwks := filepath.Join(t.TempDir(), "directory.jwks")
	if err := os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env      map[string]string
		args     []string
		wantErr  string
		jwks     string
		keystore string
	}{
		{},
		{args: []string{"--directory-jwks", "https://keystore.sandbox.directory.openbankingbrasil.org.br/openbanking.jwks",
			"--directory-keystore", "https://keystore.sandbox.directory.openbankingbrasil.org.br/", "--directory-issuer", "Open Banking Open Banking Brasil sandbox SSA issuer"},
			jwks: "https://keystore.sandbox.directory.openbankingbrasil.org.br/openbanking.jwks", keystore: "https://keystore.sandbox.directory.openbankingbrasil.org.br"},
		{env: map[string]string{"PONTE_DIRECTORY_JWKS": jwks}, jwks: jwks},
		{args: []string{"--directory-jwks", filepath.Join(t.TempDir(), "missing.jwks")}, wantErr: "--directory-jwks: neither an http(s) URL nor a readable file"},
		{args: []string{"--directory-jwks", "https://"}, wantErr: `--directory-jwks "https://" is not an absolute http(s) URL`},
		{args: []string{"--directory-keystore", "keystore.example"}, wantErr: "--directory-keystore \"keystore.example\" must be an absolute http(s) URL"},
		{env: map[string]string{"PONTE_DIRECTORY_ISSUER": " issuer "}, wantErr: "--directory-issuer must not start or end with spaces"},
	} {
		t.Run(fmt.Sprint(tc.env, tc.args), func(t *testing.T) {
			c, err := parse(t, tc.env, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DirectoryJWKS != tc.jwks || c.DirectoryKeystore != tc.keystore {
				t.Fatalf("jwks %q keystore %q, want %q %q", c.DirectoryJWKS, c.DirectoryKeystore, tc.jwks, tc.keystore)
			}
		})
	}
}
