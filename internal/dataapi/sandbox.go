package dataapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ponte-ofb/ponte/internal/customers"
)

// SandboxDocument is the sandbox customer whose accounts carry the demo data.
const SandboxDocument = "47742663023"

// SandboxInstitution is the sandbox's transmitting institution (a made-up
// brand; the CNPJ has valid check digits but belongs to no one in particular).
var SandboxInstitution = Institution{BrandName: "Ponte Sandbox", CompanyCNPJ: "11222333000181", CompeCode: "999"}

// sandboxAccount is one of the sandbox customer's accounts and the size of
// its statement.
type sandboxAccount struct {
	account      customers.Account
	transactions int
	balances     Balances
	limits       OverdraftLimits
}

// sandboxAccounts: the customers package's sandbox account plus a savings
// and a prepaid account. 2,200 transactions in all, 1,600 on the first.
var sandboxAccounts = []sandboxAccount{
	{account: customers.Account{ISPB: "37241230", Issuer: "0001", Number: "1234567", AccountType: customers.TypeCACC}, transactions: 1600,
		balances: Balances{AvailableAmount: "5320.47", BlockedAmount: "150.00", AutomaticallyInvestedAmount: "12750.00"},
		limits:   OverdraftLimits{ContractedAmount: "2000.00", UsedAmount: "0.00", UnarrangedAmount: "0.00"}},
	{account: customers.Account{ISPB: "37241230", Issuer: "0001", Number: "23456789", AccountType: customers.TypeSVGS}, transactions: 300,
		balances: Balances{AvailableAmount: "18400.00", BlockedAmount: "0.00", AutomaticallyInvestedAmount: "18400.00"}},
	{account: customers.Account{ISPB: "37241230", Number: "998877665", AccountType: customers.TypeTRAN}, transactions: 300,
		balances: Balances{AvailableAmount: "87.90", BlockedAmount: "0.00", AutomaticallyInvestedAmount: "87.90"}},
}

// SandboxAccounts are the sandbox customer's accounts (SandboxDocument), the
// customers package's one first, for the start-up banner.
func SandboxAccounts() []customers.Account {
	out := make([]customers.Account, len(sandboxAccounts))
	for i, sa := range sandboxAccounts {
		out[i] = sa.account
	}
	return out
}

// EnsureSandbox gives the sandbox customer of the demo application appID its
// three accounts and their data: profile, balances, limits and a statement
// spread over the last 11 months plus a few future entries. It is
// deterministic and idempotent, and safe when several instances start on one
// database at once: rows another instance wrote are kept as they are. The
// statement's dates are anchored on the day it is first written.
func (s *Service) EnsureSandbox(ctx context.Context, cs *customers.Service, appID string) error {
	for i, sa := range sandboxAccounts {
		if _, err := cs.AddAccount(ctx, appID, SandboxDocument, sa.account); err != nil && !errors.Is(err, customers.ErrAccountExists) {
			return fmt.Errorf("dataapi: sandbox account %s: %w", sa.account.Number, err)
		}
		err := s.db.Write(ctx, func(tx *sql.Tx) error {
			list, err := customerAccounts(ctx, tx, appID, SandboxDocument)
			if err != nil {
				return err
			}
			var acct *Account
			for _, a := range list {
				if a.ISPB == sa.account.ISPB && a.Number == sa.account.Number {
					acct = a
				}
			}
			if acct == nil {
				return fmt.Errorf("account %s belongs to another customer", sa.account.Number)
			}
			// Rows seeded before migration 00018 get their bodies now.
			if _, err := encodeMissing(ctx, tx, acct.ID); err != nil {
				return err
			}
			n, err := countTransactions(ctx, tx, acct.ID)
			if err != nil || n >= sa.transactions {
				return err
			}
			now := s.now()
			b, l := sa.balances, sa.limits
			b.Currency, l.Currency = customers.CurrencyBRL, customers.CurrencyBRL
			profile := Profile{CompeCode: SandboxInstitution.CompeCode, BrandName: SandboxInstitution.BrandName,
				CompanyCNPJ: SandboxInstitution.CompanyCNPJ, Subtype: "INDIVIDUAL"}
			d := &ImportData{Profile: &profile, Balances: &b, OverdraftLimits: &l, Transactions: sandboxStatement(i, sa, now)}
			if err := d.normalize(); err != nil {
				return err
			}
			return s.write(ctx, tx, acct.ID, d, now, false)
		})
		if err != nil {
			return fmt.Errorf("dataapi: sandbox data for account %s: %w", sa.account.Number, err)
		}
	}
	return nil
}

type sandboxKind struct {
	typ, name, direction string
	min, max             int // cents
}

var sandboxKinds = []sandboxKind{
	{"PIX", "PIX ENVIADO", "DEBITO", 500, 45000},
	{"PIX", "PIX RECEBIDO", "CREDITO", 1000, 60000},
	{"CARTAO", "COMPRA CARTAO DEBITO", "DEBITO", 350, 25000},
	{"BOLETO", "PAGAMENTO DE BOLETO", "DEBITO", 5000, 120000},
	{"TED", "TED RECEBIDA", "CREDITO", 20000, 300000},
	{"TRANSFERENCIA_MESMA_INSTITUICAO", "TRANSFERENCIA ENTRE CONTAS", "DEBITO", 1000, 100000},
	{"TARIFA_SERVICOS_AVULSOS", "TARIFA SAQUE EXTRA", "DEBITO", 250, 990},
	{"SAQUE", "SAQUE 24H", "DEBITO", 2000, 50000},
	{"FOLHA_PAGAMENTO", "CREDITO DE SALARIO", "CREDITO", 350000, 650000},
	{"CONVENIO_ARRECADACAO", "PAGAMENTO CONTA DE LUZ", "DEBITO", 8000, 35000},
	{"RENDIMENTO_APLIC_FINANCEIRA", "RENDIMENTO POUPANCA", "CREDITO", 100, 9000},
}

// sandboxStatement generates the account's statement: the same transactions
// (ids, amounts, kinds, offsets) every time, dated back from anchor.
func sandboxStatement(index int, sa sandboxAccount, anchor time.Time) []Transaction {
	r := rand.New(rand.NewPCG(0x706f6e7465, uint64(index)+1))
	const span = 330 * 24 * time.Hour
	const future = 4
	out := make([]Transaction, 0, sa.transactions)
	for i := range sa.transactions {
		k := sandboxKinds[r.IntN(len(sandboxKinds))]
		cents := k.min + r.IntN(k.max-k.min+1)
		status := "TRANSACAO_EFETIVADA"
		var at time.Time
		if i < future {
			at = anchor.Add(time.Duration(i+1)*24*time.Hour + time.Duration(r.IntN(3600))*time.Second)
			status = "LANCAMENTO_FUTURO"
		} else {
			step := span / time.Duration(sa.transactions)
			at = anchor.Add(-time.Duration(i-future)*step - time.Duration(r.IntN(int(step/time.Second)))*time.Second)
		}
		t := Transaction{
			TransactionID:                  fmt.Sprintf("SBX-%s-%05d", sa.account.Number, i+1),
			CompletedAuthorisedPaymentType: status, CreditDebitType: k.direction, TransactionName: k.name, Type: k.typ,
			Amount: fmt.Sprintf("%d.%02d", cents/100, cents%100), Currency: customers.CurrencyBRL,
			TransactionDateTime: at.UTC().Truncate(time.Millisecond),
		}
		switch k.typ {
		case "PIX", "TED", "TRANSFERENCIA_MESMA_INSTITUICAO":
			t.PartieCnpjCpf, t.PartiePersonType = "12345678909", "PESSOA_NATURAL"
			t.PartieCompeCode, t.PartieBranchCode, t.PartieNumber, t.PartieCheckDigit = "001", "1234", "00076543", "2"
		case "FOLHA_PAGAMENTO", "BOLETO", "CONVENIO_ARRECADACAO":
			t.PartieCnpjCpf, t.PartiePersonType = "11222333000181", "PESSOA_JURIDICA"
		}
		out = append(out, t)
	}
	return out
}
