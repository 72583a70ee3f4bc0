package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsFiles writes a self-signed certificate, its key, and a file that is
// not PEM, and returns their paths.
func tlsFiles(t *testing.T) (cert, key, garbage string) {
	t.Helper()
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ponte test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, garbage = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "garbage.pem")
	for path, b := range map[string][]byte{
		cert:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		garbage: []byte("not a certificate\n"),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key, garbage
}

func TestTLSSettings(t *testing.T) {
	cert, key, garbage := tlsFiles(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantErr   string // "" means valid
		wantURL   string
		wantMTLS  bool
		wantHTTPS bool
	}{
		{name: "plain HTTP", wantURL: "http://127.0.0.1:8080"},
		{name: "HTTPS", args: []string{"--tls-cert", cert, "--tls-key", key}, wantURL: "https://127.0.0.1:8080", wantHTTPS: true},
		{name: "mutual TLS", args: []string{"--tls-cert", cert, "--tls-key", key, "--client-ca", cert},
			wantURL: "https://127.0.0.1:8080", wantHTTPS: true, wantMTLS: true},
		{name: "mutual TLS from the environment", env: map[string]string{"PONTE_TLS_CERT": cert, "PONTE_TLS_KEY": key, "PONTE_CLIENT_CA": cert},
			wantURL: "https://127.0.0.1:8080", wantHTTPS: true, wantMTLS: true},
		{name: "explicit public URL wins", args: []string{"--tls-cert", cert, "--tls-key", key, "--public-url", "https://ponte.example/"},
			wantURL: "https://ponte.example", wantHTTPS: true},
		{name: "certificate without key", args: []string{"--tls-cert", cert}, wantErr: "--tls-cert needs --tls-key"},
		{name: "key without certificate", env: map[string]string{"PONTE_TLS_KEY": key}, wantErr: "--tls-key needs --tls-cert"},
		{name: "client CA without TLS", args: []string{"--client-ca", cert}, wantErr: "--client-ca needs --tls-cert"},
		{name: "unreadable certificate", args: []string{"--tls-cert", missing, "--tls-key", key}, wantErr: "--tls-cert " + missing},
		{name: "invalid key", args: []string{"--tls-cert", cert, "--tls-key", garbage}, wantErr: "--tls-key " + garbage},
		{name: "certificate is no certificate", args: []string{"--tls-cert", garbage, "--tls-key", key}, wantErr: "--tls-cert " + garbage},
		{name: "key of another certificate", args: []string{"--tls-cert", cert, "--tls-key", otherKey(t)}, wantErr: "--tls-cert"},
		{name: "unreadable client CA", args: []string{"--tls-cert", cert, "--tls-key", key, "--client-ca", missing}, wantErr: "--client-ca: open " + missing},
		{name: "client CA without certificates", args: []string{"--tls-cert", cert, "--tls-key", key, "--client-ca", garbage}, wantErr: "holds no PEM certificate"},
		{name: "client CA holding a key", args: []string{"--tls-cert", cert, "--tls-key", key, "--client-ca", key}, wantErr: `unexpected PEM block "PRIVATE KEY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.env, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.PublicURL != tt.wantURL || c.TLS() != tt.wantHTTPS || c.MutualTLS() != tt.wantMTLS {
				t.Errorf("public URL %s, TLS %v, mutual TLS %v", c.PublicURL, c.TLS(), c.MutualTLS())
			}
		})
	}
}

// otherKey writes a key that belongs to no certificate.
func otherKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
