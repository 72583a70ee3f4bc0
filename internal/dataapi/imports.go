package dataapi

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// MaxImportTransactions bounds one import.
const MaxImportTransactions = 50_000

// ImportData is one import for one account: any of its profile, balances and
// overdraft limits (replaced), and transactions (inserted, or updated when
// the account already has one with the same transactionId).
type ImportData struct {
	Profile         *Profile         `json:"account,omitempty"`
	Balances        *Balances        `json:"balances,omitempty"`
	OverdraftLimits *OverdraftLimits `json:"overdraftLimits,omitempty"`
	Transactions    []Transaction    `json:"transactions,omitempty"`
}

// ImportResult says what an import did.
type ImportResult struct {
	AccountID    string `json:"accountId"`
	Transactions int    `json:"transactions"`
	Profile      bool   `json:"profile"`
	Balances     bool   `json:"balances"`
	Limits       bool   `json:"overdraftLimits"`
}

// csvColumns are the CSV header names, the JSON names of a transaction.
var csvColumns = []string{"transactionId", "completedAuthorisedPaymentType", "creditDebitType", "transactionName", "type",
	"amount", "currency", "transactionDateTime", "partieCnpjCpf", "partiePersonType", "partieCompeCode",
	"partieBranchCode", "partieNumber", "partieCheckDigit"}

// ParseJSON decodes an import document.
func ParseJSON(r io.Reader) (*ImportData, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var d ImportData
	if err := dec.Decode(&d); err != nil {
		return nil, invalid([]FieldError{{Field: "body", Message: "is not a valid import document: " + err.Error()}})
	}
	if dec.More() {
		return nil, invalid([]FieldError{{Field: "body", Message: "has data after the JSON document"}})
	}
	return &d, nil
}

// ParseCSV decodes transactions from CSV: a header row naming columns among
// csvColumns (transactionId, type, creditDebitType,
// completedAuthorisedPaymentType, transactionName, amount and
// transactionDateTime are required), then one transaction per row.
func ParseCSV(r io.Reader) (*ImportData, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, invalid([]FieldError{{Field: "csv", Message: "is empty: the header row is missing"}})
	}
	if err != nil {
		return nil, invalid([]FieldError{{Field: "csv", Message: err.Error()}})
	}
	index := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if !slices.Contains(csvColumns, h) {
			return nil, invalid([]FieldError{{Field: "csv", Message: fmt.Sprintf("unknown column %q (known: %s)", h, strings.Join(csvColumns, ", "))}})
		}
		index[h] = i
	}
	for _, req := range []string{"transactionId", "completedAuthorisedPaymentType", "creditDebitType", "transactionName", "type", "amount", "transactionDateTime"} {
		if _, ok := index[req]; !ok {
			return nil, invalid([]FieldError{{Field: "csv", Message: "misses the required column " + req}})
		}
	}
	d := &ImportData{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, invalid([]FieldError{{Field: "csv", Message: err.Error()}})
		}
		col := func(name string) string {
			if i, ok := index[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		at, err := time.Parse(time.RFC3339Nano, col("transactionDateTime"))
		if err != nil {
			return nil, invalid([]FieldError{{Field: fmt.Sprintf("line %d: transactionDateTime", line), Message: "must be an RFC 3339 date-time"}})
		}
		d.Transactions = append(d.Transactions, Transaction{
			TransactionID: col("transactionId"), CompletedAuthorisedPaymentType: col("completedAuthorisedPaymentType"),
			CreditDebitType: col("creditDebitType"), TransactionName: col("transactionName"), Type: col("type"),
			Amount: col("amount"), Currency: col("currency"), TransactionDateTime: at,
			PartieCnpjCpf: col("partieCnpjCpf"), PartiePersonType: col("partiePersonType"), PartieCompeCode: col("partieCompeCode"),
			PartieBranchCode: col("partieBranchCode"), PartieNumber: col("partieNumber"), PartieCheckDigit: col("partieCheckDigit"),
		})
		if len(d.Transactions) > MaxImportTransactions {
			return nil, invalid([]FieldError{{Field: "csv", Message: fmt.Sprintf("has more than %d transactions", MaxImportTransactions)}})
		}
	}
	return d, nil
}

var (
	unsignedAmount = regexp.MustCompile(`^\d{1,15}\.\d{2,4}$`)
	signedAmount   = regexp.MustCompile(`^-?\d{1,15}\.\d{2,4}$`)
	currencyCode   = regexp.MustCompile(`^[A-Z]{3}$`)
	idPattern      = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-]{0,99}$`)
	compePattern   = regexp.MustCompile(`^\d{3}$`)
	branchPattern  = regexp.MustCompile(`^\d{4}$`)
	numberPattern  = regexp.MustCompile(`^\d{8,20}$`)
	cpfCnpjPattern = regexp.MustCompile(`^\d{11}$|^\d{14}$`)
	cnpjPattern    = regexp.MustCompile(`^\d{14}$`)
)

// maxFieldErrors caps the problems one refused import lists.
const maxFieldErrors = 20

// normalize fills defaults (currency BRL, subtype INDIVIDUAL) and checks the
// import against the Accounts API's formats, returning every problem (up to
// maxFieldErrors) at once.
func (d *ImportData) normalize() error {
	var fields []FieldError
	add := func(field, msg string) {
		if len(fields) < maxFieldErrors {
			fields = append(fields, FieldError{Field: field, Message: msg})
		}
	}
	if d.Profile == nil && d.Balances == nil && d.OverdraftLimits == nil && len(d.Transactions) == 0 {
		add("body", "must hold account, balances, overdraftLimits or transactions")
	}
	if len(d.Transactions) > MaxImportTransactions {
		add("transactions", fmt.Sprintf("must hold at most %d transactions", MaxImportTransactions))
	}
	if p := d.Profile; p != nil {
		if p.Subtype == "" {
			p.Subtype = subtypes[0]
		}
		if !compePattern.MatchString(p.CompeCode) {
			add("account.compeCode", "must be 3 digits")
		}
		if p.BrandName == "" || len(p.BrandName) > 80 {
			add("account.brandName", "must have 1 to 80 characters")
		}
		if !cnpjPattern.MatchString(p.CompanyCNPJ) {
			add("account.companyCnpj", "must be 14 digits")
		}
		if !slices.Contains(subtypes, p.Subtype) {
			add("account.subtype", "must be one of "+strings.Join(subtypes, ", "))
		}
	}
	if b := d.Balances; b != nil {
		if b.Currency == "" {
			b.Currency = "BRL"
		}
		if !signedAmount.MatchString(b.AvailableAmount) {
			add("balances.availableAmount", "must be a decimal with 2 to 4 places")
		}
		if !unsignedAmount.MatchString(b.BlockedAmount) {
			add("balances.blockedAmount", "must be a non-negative decimal with 2 to 4 places")
		}
		if !signedAmount.MatchString(b.AutomaticallyInvestedAmount) {
			add("balances.automaticallyInvestedAmount", "must be a decimal with 2 to 4 places")
		}
		if !currencyCode.MatchString(b.Currency) {
			add("balances.currency", "must be an ISO 4217 code")
		}
	}
	if l := d.OverdraftLimits; l != nil {
		if l.Currency == "" {
			l.Currency = "BRL"
		}
		for name, v := range map[string]string{"overdraftContractedLimit": l.ContractedAmount, "overdraftUsedLimit": l.UsedAmount,
			"unarrangedOverdraftAmount": l.UnarrangedAmount} {
			if v != "" && !unsignedAmount.MatchString(v) {
				add("overdraftLimits."+name, "must be a non-negative decimal with 2 to 4 places")
			}
		}
		if !currencyCode.MatchString(l.Currency) {
			add("overdraftLimits.currency", "must be an ISO 4217 code")
		}
	}
	seen := make(map[string]bool, len(d.Transactions))
	for i := range d.Transactions {
		t := &d.Transactions[i]
		f := fmt.Sprintf("transactions[%d].", i)
		if t.Currency == "" {
			t.Currency = "BRL"
		}
		switch {
		case !idPattern.MatchString(t.TransactionID):
			add(f+"transactionId", "must match ^[a-zA-Z0-9][a-zA-Z0-9-]{0,99}$")
		case seen[t.TransactionID]:
			add(f+"transactionId", "is repeated in this import")
		}
		seen[t.TransactionID] = true
		if !slices.Contains(transactionStatuses, t.CompletedAuthorisedPaymentType) {
			add(f+"completedAuthorisedPaymentType", "must be one of "+strings.Join(transactionStatuses, ", "))
		}
		if !slices.Contains(creditDebitTypes, t.CreditDebitType) {
			add(f+"creditDebitType", "must be CREDITO or DEBITO")
		}
		if t.TransactionName == "" || len([]rune(t.TransactionName)) > 200 {
			add(f+"transactionName", "must have 1 to 200 characters")
		}
		if !slices.Contains(transactionTypes, t.Type) {
			add(f+"type", "must be one of the Accounts API transaction types")
		}
		if !unsignedAmount.MatchString(t.Amount) {
			add(f+"amount", "must be a non-negative decimal with 2 to 4 places")
		}
		if !currencyCode.MatchString(t.Currency) {
			add(f+"currency", "must be an ISO 4217 code")
		}
		if t.TransactionDateTime.IsZero() || t.TransactionDateTime.Year() < 1970 || t.TransactionDateTime.Year() > 9999 {
			add(f+"transactionDateTime", "is required (RFC 3339)")
		}
		if t.PartieCnpjCpf != "" && !cpfCnpjPattern.MatchString(t.PartieCnpjCpf) {
			add(f+"partieCnpjCpf", "must be 11 or 14 digits")
		}
		if t.PartiePersonType != "" && !slices.Contains(personTypes, t.PartiePersonType) {
			add(f+"partiePersonType", "must be PESSOA_NATURAL or PESSOA_JURIDICA")
		}
		if t.PartieCompeCode != "" && !compePattern.MatchString(t.PartieCompeCode) {
			add(f+"partieCompeCode", "must be 3 digits")
		}
		if t.PartieBranchCode != "" && !branchPattern.MatchString(t.PartieBranchCode) {
			add(f+"partieBranchCode", "must be 4 digits")
		}
		if t.PartieNumber != "" && !numberPattern.MatchString(t.PartieNumber) {
			add(f+"partieNumber", "must be 8 to 20 digits")
		}
		if len([]rune(t.PartieCheckDigit)) > 1 {
			add(f+"partieCheckDigit", "must be one character")
		}
	}
	if len(fields) > 0 {
		return invalid(fields)
	}
	return nil
}

func invalid(fields []FieldError) error {
	return &ValidationError{Fields: fields}
}

// FieldError names one invalid field of an import and what is wrong with it.
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists every problem of a refused import (up to maxFieldErrors).
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid account data")
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + " " + f.Message)
	}
	return b.String()
}

// Errors of the import.
var (
	ErrAccountNotFound   = errors.New("the customer has no account with this number")
	ErrAccountAmbiguous  = errors.New("the customer has several accounts with this number (at different institutions or agencies)")
	ErrUnsupportedFormat = errors.New("send application/json or text/csv")
)

// Decode reads an import body: JSON for application/json (or a .json name),
// CSV transactions for text/csv (or a .csv name).
func Decode(r io.Reader, contentTypeOrName string) (*ImportData, error) {
	ct := strings.ToLower(contentTypeOrName)
	switch {
	case strings.HasPrefix(ct, "text/csv"), strings.HasSuffix(ct, ".csv"):
		return ParseCSV(r)
	case strings.HasPrefix(ct, "application/json"), strings.HasSuffix(ct, ".json"):
		return ParseJSON(r)
	}
	return nil, ErrUnsupportedFormat
}
