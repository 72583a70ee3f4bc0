package config

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterServe(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return &c, c.Finish()
}

func TestDefaults(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.Mode != Sandbox || c.PublicURL != "http://127.0.0.1:8080" ||
		c.TokenTTL != 300*time.Second || c.LogFormat != "text" || c.SigningKeyFile != "data/signing-key.pem" ||
		c.DataKeyPath() != "data/data.key" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestFlagsWinOverEnv(t *testing.T) {
	c, err := parse(t, map[string]string{"PONTE_ADDR": "127.0.0.1:9000", "PONTE_MODE": "production", "PONTE_ORG_ID": testOrgID}, "--addr", "127.0.0.1:9100")
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9100" || c.Mode != Production || c.LogFormat != "json" {
		t.Errorf("got %+v", c)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--mode", "staging"}, "--mode"},
		{nil, []string{"--addr", "nonsense"}, "--addr"},
		{nil, []string{"--public-url", "ftp://x"}, "--public-url"},
		{nil, []string{"--token-ttl", "0s"}, "--token-ttl"},
		{nil, []string{"--log-format", "xml"}, "--log-format"},
		{map[string]string{"PONTE_TOKEN_TTL": "five minutes"}, nil, "PONTE_TOKEN_TTL"},
	}
	for _, tt := range tests {
		_, err := parse(t, tt.env, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v %v: error %v, want one naming %s", tt.env, tt.args, err, tt.want)
		}
	}
}

// TestSettlement: the ledger is the sandbox's default, the partner
// production's; either can be chosen; anything else is refused.
func TestSettlement(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		args     []string
		want     string
		deadline time.Duration
	}{
		{nil, nil, SettlementLedger, 15 * time.Minute},
		{map[string]string{"PONTE_MODE": "production", "PONTE_ORG_ID": testOrgID}, nil, SettlementPartner, 15 * time.Minute},
		{map[string]string{"PONTE_SETTLEMENT": "partner", "PONTE_SETTLEMENT_DEADLINE": "2m"}, nil, SettlementPartner, 2 * time.Minute},
		{map[string]string{"PONTE_MODE": "production", "PONTE_ORG_ID": testOrgID}, []string{"--settlement", "ledger", "--settlement-deadline", "1h"}, SettlementLedger, time.Hour},
	} {
		c, err := parse(t, tc.env, tc.args...)
		if err != nil {
			t.Fatalf("%v %v: %v", tc.env, tc.args, err)
		}
		if c.Settlement != tc.want || c.SettlementDeadline != tc.deadline {
			t.Errorf("%v %v: settlement %q, deadline %s; want %q, %s", tc.env, tc.args, c.Settlement, c.SettlementDeadline, tc.want, tc.deadline)
		}
	}
	for _, args := range [][]string{{"--settlement", "bank"}, {"--settlement-deadline", "10s"}, {"--settlement-deadline", "200h"}} {
		if _, err := parse(t, nil, args...); err == nil || !strings.Contains(err.Error(), "--settlement") {
			t.Errorf("%v: error %v, want one naming --settlement", args, err)
		}
	}
}

// TestLedgerPixLimit: --ledger-pix-limit is an amount with two decimal
// places, kept in cents; empty is no limit.
func TestLedgerPixLimit(t *testing.T) {
	for _, tc := range []struct {
		env   map[string]string
		args  []string
		cents int64
	}{
		{nil, nil, 0},
		{nil, []string{"--ledger-pix-limit", "1000.00"}, 100000},
		{map[string]string{"PONTE_LEDGER_PIX_LIMIT": "0.01"}, nil, 1},
	} {
		c, err := parse(t, tc.env, tc.args...)
		if err != nil {
			t.Fatalf("%v %v: %v", tc.env, tc.args, err)
		}
		if c.LedgerPixLimitCents != tc.cents {
			t.Errorf("%v %v: %d cents, want %d", tc.env, tc.args, c.LedgerPixLimitCents, tc.cents)
		}
	}
	for _, v := range []string{"1000", "10.5", "-1.00", "1e3.00", "12345678901234567.00"} {
		if _, err := parse(t, nil, "--ledger-pix-limit", v); err == nil || !strings.Contains(err.Error(), "--ledger-pix-limit") {
			t.Errorf("%q: error %v, want one naming --ledger-pix-limit", v, err)
		}
	}
}

func TestInitiatorIdentity(t *testing.T) {
	for _, tc := range []struct {
		env              map[string]string
		args             []string
		wantCNPJ, wantIS string
	}{
		{nil, nil, "", ""},
		{map[string]string{"PONTE_ITP_CNPJ": "11222333000181"}, nil, "11222333000181", "11222333"},
		{nil, []string{"--itp-cnpj", "11222333000181", "--itp-ispb", "99999999"}, "11222333000181", "99999999"},
	} {
		c, err := parse(t, tc.env, tc.args...)
		if err != nil {
			t.Fatalf("%v %v: %v", tc.env, tc.args, err)
		}
		if c.ITPCNPJ != tc.wantCNPJ || c.ITPISPB != tc.wantIS {
			t.Errorf("%v %v: cnpj %q ispb %q; want %q %q", tc.env, tc.args, c.ITPCNPJ, c.ITPISPB, tc.wantCNPJ, tc.wantIS)
		}
	}
	for _, args := range [][]string{{"--itp-cnpj", "1122233300018"}, {"--itp-cnpj", "11.222.333/0001-81"}, {"--itp-ispb", "1234567a"}} {
		if _, err := parse(t, nil, args...); err == nil || !strings.Contains(err.Error(), "--itp-") {
			t.Errorf("%v: error %v, want one naming the flag", args, err)
		}
	}
}

const testOrgID = "5b1e2a8c-3f4d-4e6a-9b7c-1d2e3f4a5b6c"

// TestOrganisationID: Ponte's organisation id is a UUID, required outside
// the sandbox, and the PCM's organisation id unless --pcm-org-id says otherwise.
func TestOrganisationID(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		args    []string
		wantErr string
		wantPCM string
	}{
		{env: nil, wantPCM: ""},
		{env: map[string]string{"PONTE_ORG_ID": testOrgID}, wantPCM: testOrgID},
		{env: map[string]string{"PONTE_ORG_ID": testOrgID}, args: []string{"--pcm-org-id", "0f0e0d0c-0b0a-4908-8706-050403020100"},
			wantPCM: "0f0e0d0c-0b0a-4908-8706-050403020100"},
		{env: map[string]string{"PONTE_MODE": "production"}, wantErr: "--org-id (PONTE_ORG_ID) is required outside the sandbox"},
		{args: []string{"--org-id", "ponte"}, wantErr: "--org-id must be a UUID"},
	} {
		t.Run(fmt.Sprint(tc.env, tc.args), func(t *testing.T) { // subtests: t.Setenv lasts until each ends
			c, err := parse(t, tc.env, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.PCMOrgID != tc.wantPCM {
				t.Errorf("PCM org id %q, want %q", c.PCMOrgID, tc.wantPCM)
			}
		})
	}
}
