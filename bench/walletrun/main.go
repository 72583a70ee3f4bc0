// Command walletrun measures Apple Pay payload generation against the raw
// cost of the same cryptography done directly, in one run on one machine:
//
//   - raw: fresh P-256 key, ECDH, SHA-256 KDF, AES-256-GCM seal of the same
//     plaintext: the floor any implementation pays;
//   - in-process: applepay.BuildData, Ponte's encryption path (validation,
//     JSON, KDF, GCM, the base64 envelope), with the same leaf key;
//   - HTTP: the whole endpoint over loopback — token check, card lookup, card
//     number unsealing, TAV signature (RSA-2048), payload, sealed idempotency
//     record committed to SQLite — each request with a fresh nonce.
//
// It prints operations per second and each as a ratio of raw. Target:
// in-process ≥ 0.8 of raw. Usage: go run ./bench/walletrun [-d 5s] [-c 8] [-json]
package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/cards/applepay"
	"github.com/ponte-ofb/ponte/internal/config"
)

type result struct {
	Name   string  `json:"name"`
	OpsSec float64 `json:"ops_per_second"`
	Ratio  float64 `json:"ratio_to_raw"`
	Errors int64   `json:"errors,omitempty"`
}

func main() {
	dur := flag.Duration("d", 5*time.Second, "duration of each phase")
	conc := flag.Int("c", runtime.GOMAXPROCS(0)*4, "concurrent HTTP clients")
	asJSON := flag.Bool("json", false, "print JSON")
	flag.Parse()
	if err := run(*dur, *conc, *asJSON, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "walletrun:", err)
		os.Exit(1)
	}
}

func run(dur time.Duration, conc int, asJSON bool, out io.Writer) error {
	dir, err := os.MkdirTemp("", "ponte-walletrun-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	now := time.Now()
	root, rootKey, err := applepay.LoadOrCreateTestRoot(dir, now)
	if err != nil {
		return err
	}
	leafPEM, keyPEM, err := applepay.IssueTestDevice(rand.Reader, root, rootKey, now)
	if err != nil {
		return err
	}
	leafKey, err := leafPublicKey(leafPEM)
	if err != nil {
		return err
	}
	_ = keyPEM
	pass := applepay.PassData{PrimaryAccountNumber: "5204247750001471", Expiration: "12/30", Name: "MARIA DA SILVA",
		Nonce: "0a1b2c3d4e5f", NonceSignature: strings.Repeat("ab", 64)}
	plaintext, _ := json.Marshal(map[string]string{"primaryAccountNumber": pass.PrimaryAccountNumber, "expiration": pass.Expiration,
		"name": pass.Name, "nonce": pass.Nonce, "nonceSignature": pass.NonceSignature})
	tav := strings.Repeat("A", 480) // the size of a real TAV string

	fmt.Fprintln(os.Stderr, "walletrun: raw cryptography…")
	raw := measure(dur, runtime.GOMAXPROCS(0), func() error { return rawSeal(leafKey, plaintext) })
	fmt.Fprintln(os.Stderr, "walletrun: applepay.BuildData…")
	inproc := measure(dur, runtime.GOMAXPROCS(0), func() error {
		_, err := applepay.BuildData(rand.Reader, leafKey, pass, tav)
		return err
	})
	fmt.Fprintln(os.Stderr, "walletrun: HTTP end to end…")
	httpRes, err := httpPhase(dir, string(leafPEM), dur, conc)
	if err != nil {
		return err
	}
	results := []result{
		{Name: "raw ECDH+KDF+AES-GCM", OpsSec: raw.rate},
		{Name: "in-process applepay.BuildData", OpsSec: inproc.rate, Ratio: inproc.rate / raw.rate, Errors: inproc.errors},
		{Name: "HTTP end to end (SQLite, durable)", OpsSec: httpRes.rate, Ratio: httpRes.rate / raw.rate, Errors: httpRes.errors},
	}
	results[0].Ratio = 1
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	fmt.Fprintf(out, "Apple Pay payload generation, %d CPUs, %s per phase\n", runtime.GOMAXPROCS(0), dur)
	for _, r := range results {
		fmt.Fprintf(out, "  %-36s %10.0f ops/s   ratio %.2f", r.Name, r.OpsSec, r.Ratio)
		if r.Errors > 0 {
			fmt.Fprintf(out, "   (%d errors)", r.Errors)
		}
		fmt.Fprintln(out)
	}
	verdict := "met"
	if results[1].Ratio < 0.8 {
		verdict = "MISSED"
	}
	fmt.Fprintf(out, "  target in-process ≥ 0.80 of raw: %s\n", verdict)
	return nil
}

// rawSeal is the floor: the primitives alone, no validation, no encoding.
func rawSeal(leaf *ecdh.PublicKey, plaintext []byte) error {
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	z, err := eph.ECDH(leaf)
	if err != nil {
		return err
	}
	h := sha256.New()
	h.Write([]byte{0, 0, 0, 1})
	h.Write(z)
	h.Write([]byte("\x0did-aes256-GCMApple"))
	h.Write(eph.PublicKey().Bytes())
	block, err := aes.NewCipher(h.Sum(nil))
	if err != nil {
		return err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, 16)
	if err != nil {
		return err
	}
	_ = gcm.Seal(nil, make([]byte, 16), plaintext, nil)
	return nil
}

type measurement struct {
	rate   float64
	errors int64
}

func measure(dur time.Duration, workers int, op func() error) measurement {
	var ops, errs atomic.Int64
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := op(); err != nil {
					errs.Add(1)
					continue
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	return measurement{rate: float64(ops.Load()) / time.Since(start).Seconds(), errors: errs.Load()}
}

func httpPhase(dir, leafPEM string, dur time.Duration, conc int) (measurement, error) {
	srv := httptest.NewUnstartedServer(nil)
	cfg := config.Config{Addr: srv.Listener.Addr().String(), DataDir: filepath.Join(dir, "data"), Mode: config.Sandbox,
		PublicURL: "http://" + srv.Listener.Addr().String(), TokenTTL: time.Hour, LogFormat: "json",
		ShutdownTimeout: 5 * time.Second, SweepInterval: time.Hour}
	if err := cfg.Finish(); err != nil {
		return measurement{}, err
	}
	// The sandbox trust root must be the one the device certificate chains to.
	for _, f := range []string{applepay.TestRootCertFile, applepay.TestRootKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return measurement{}, err
		}
		os.MkdirAll(cfg.DataDir, 0o700)
		if err := os.WriteFile(filepath.Join(cfg.DataDir, f), b, 0o600); err != nil {
			return measurement{}, err
		}
	}
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return measurement{}, err
	}
	defer a.Close()
	srv.Config.Handler = a.Handler()
	srv.Start()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {a.Demo.ClientID}, "client_secret": {a.DemoSecret}}
	resp, err := client.PostForm(srv.URL+"/oauth/token", form)
	if err != nil {
		return measurement{}, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	var seq atomic.Int64
	return measure(dur, conc, func() error {
		nonce := fmt.Sprintf("%016x", seq.Add(1))
		body, _ := json.Marshal(map[string]string{"nonce": nonce, "nonceSignature": hex.EncodeToString([]byte(nonce)), "appleCertificate": leafPEM})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/cards-pci/sandbox-card-active/wallet/ApplePay/brand/Mastercard", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("api-version", "1.0")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}), nil
}

func leafPublicKey(leafPEM []byte) (*ecdh.PublicKey, error) {
	block, _ := pem.Decode(leafPEM)
	if block == nil {
		return nil, fmt.Errorf("device certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("device key is not ECDSA")
	}
	return pub.ECDH()
}
