package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func customersCmdArgs(group, sub, dir string, args ...string) []string {
	return append(append([]string{group, sub}, storage(dir)...), args...)
}

// TestCLICustomersAndAccounts adds customers and accounts, lists them as a
// table and as JSON, and checks that every mistake names its field.
func TestCLICustomersAndAccounts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app := createApp(t, dir)
	cust := func(sub string, args ...string) cliResult {
		return ponteCLI(t, customersCmdArgs("customers", sub, dir, append([]string{"--app", app.clientID}, args...)...)...)
	}
	acct := func(sub string, args ...string) cliResult {
		return ponteCLI(t, customersCmdArgs("accounts", sub, dir, append([]string{"--app", app.clientID}, args...)...)...)
	}
	if r := cust("add", "--document", "47742663023", "--name", "Maria da Silva"); r.code != 0 || !strings.Contains(r.stdout, "47742663023") {
		t.Fatalf("customers add: %s", r)
	}
	if r := cust("add", "--document", "11222333000181", "--name", "Empresa Ltda"); r.code != 0 {
		t.Fatalf("customers add CNPJ: %s", r)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"bad check digit": {[]string{"--document", "47742663024", "--name", "X"}, "document has invalid check digits"},
		"formatted":       {[]string{"--document", "477.426.630-23", "--name", "X"}, "document must contain digits only"},
		"duplicate":       {[]string{"--document", "47742663023", "--name", "X"}, "document is already registered"},
		"blank name":      {[]string{"--document", "12345678909", "--name", " "}, "name is required"},
	} {
		if r := cust("add", tc.args...); r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("customers add, %s: %s", name, r)
		}
	}
	if r := ponteCLI(t, customersCmdArgs("customers", "list", dir, "--app", "no-such-client")...); r.code != 1 || !strings.Contains(r.stderr, "no-such-client") {
		t.Errorf("unknown application: %s", r)
	}
	l := cust("list")
	if l.code != 0 || !strings.Contains(l.stdout, "Maria da Silva") || !strings.Contains(l.stdout, "11222333000181") {
		t.Errorf("customers list: %s", l)
	}
	var list []struct{ Document, Name string }
	if r := cust("list", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 2 || list[0].Name != "Maria da Silva" {
		t.Errorf("customers list --json: %s", r)
	}

	if r := acct("add", "--document", "47742663023", "--ispb", "37241230", "--issuer", "1", "--number", "1234567"); r.code != 0 || !strings.Contains(r.stdout, "37241230 0001 1234567 (CACC)") {
		t.Fatalf("accounts add: %s", r)
	}
	if r := acct("add", "--document", "47742663023", "--ispb", "37241230", "--number", "555", "--type", "TRAN"); r.code != 0 {
		t.Fatalf("accounts add TRAN: %s", r)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"ispb":         {[]string{"--document", "47742663023", "--ispb", "123", "--issuer", "0001", "--number", "1"}, "ispb must be 8 digits"},
		"no issuer":    {[]string{"--document", "47742663023", "--ispb", "37241230", "--number", "1"}, "issuer is required"},
		"number":       {[]string{"--document", "47742663023", "--ispb", "37241230", "--issuer", "0001", "--number", "12a"}, "number must be 1 to 20 digits"},
		"type":         {[]string{"--document", "47742663023", "--ispb", "37241230", "--issuer", "0001", "--number", "1", "--type", "SLRY"}, "accountType must be one of"},
		"duplicate":    {[]string{"--document", "11222333000181", "--ispb", "37241230", "--issuer", "0001", "--number", "1234567"}, "already registered"},
		"not customer": {[]string{"--document", "12345678909", "--ispb", "37241230", "--issuer", "0001", "--number", "2"}, "customer not found"},
	} {
		if r := acct("add", tc.args...); r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("accounts add, %s: %s", name, r)
		}
	}
	if r := acct("list", "--document", "47742663023"); r.code != 0 || !strings.Contains(r.stdout, "1234567") || !strings.Contains(r.stdout, "TRAN") {
		t.Errorf("accounts list: %s", r)
	}
	var accts []struct{ ISPB, Issuer, Number, AccountType, Currency, Status string }
	if r := acct("list", "--document", "47742663023", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &accts) != nil || len(accts) != 2 ||
		accts[0].Issuer != "0001" || accts[0].Currency != "BRL" || accts[0].Status != "ACTIVE" {
		t.Errorf("accounts list --json: %s", r)
	}
	if r := acct("list", "--document", "11222333000181", "--json"); r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty accounts list: %s", r)
	}
	if r := acct("list", "--document", "12345678909"); r.code != 1 || !strings.Contains(r.stderr, "customer not found") {
		t.Errorf("accounts of an unknown customer: %s", r)
	}
}

func TestCLICustomersHelpAndUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"customers", "accounts"}},
		{[]string{"customers", "--help"}, []string{"end users", "add", "list"}},
		{[]string{"accounts", "help"}, []string{"bank accounts", "add", "list"}},
		{[]string{"customers", "add", "--help"}, []string{"CPF", "-app", "-document", "-name", "-data-dir", "-database-url"}},
		{[]string{"customers", "list", "--help"}, []string{"-app", "-json", "-data-dir"}},
		{[]string{"accounts", "add", "--help"}, []string{"-ispb", "-issuer", "-number", "-type", "CACC", "-document", "-data-dir"}},
		{[]string{"accounts", "list", "--help"}, []string{"-document", "-json", "-database-url"}},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		args := tc.args
		if len(args) > 2 {
			args = append(append(append([]string{}, args[:2]...), storage(dir)...), args[2:]...)
		}
		r := ponteCLI(t, args...)
		if r.code != 0 {
			t.Errorf("exit code %d\n%s", r.code, r)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.output(), w) {
				t.Errorf("help does not mention %q\n%s", w, r)
			}
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v touched the data directory", tc.args)
		}
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"customers"}, "Commands:"},
		{[]string{"accounts", "frobnicate"}, `unknown command "frobnicate"`},
		{customersCmdArgs("customers", "add", dir, "--app", "x", "--name", "N"), "Usage: ponte customers add"},
		{customersCmdArgs("customers", "list", dir), "Usage: ponte customers list"},
		{customersCmdArgs("customers", "list", dir, "--app", "x", "extra"), "Usage: ponte customers list"},
		{customersCmdArgs("accounts", "add", dir, "--app", "x", "--document", "47742663023", "--ispb", "37241230"), "Usage: ponte accounts add"},
		{customersCmdArgs("accounts", "list", dir, "--app", "x"), "Usage: ponte accounts list"},
		{customersCmdArgs("accounts", "list", dir, "--frobnicate"), "frobnicate"},
	} {
		if r := ponteCLI(t, tc.args...); r.code != 2 || !strings.Contains(r.output(), tc.want) {
			t.Errorf("want exit 2 and %q\n%s", tc.want, r)
		}
	}
}
