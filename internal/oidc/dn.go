package oidc

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// dnDescriptors are the attribute types a tls_client_auth_subject_dn may
// name by descriptor: those of RFC 4514 §3 (DCR-BR, "Certificate
// Distinguished Name Parsing"), and SERIALNUMBER and POSTALCODE, which Go
// prints (the stored subject is Go's, and a client may send it back).
// Every other type is written as its OID.
var dnDescriptors = map[string]string{
	"CN": "2.5.4.3", "L": "2.5.4.7", "ST": "2.5.4.8", "O": "2.5.4.10", "OU": "2.5.4.11", "C": "2.5.4.6",
	"STREET": "2.5.4.9", "DC": "0.9.2342.19200300.100.1.25", "UID": "0.9.2342.19200300.100.1.1",
	"SERIALNUMBER": "2.5.4.5", "POSTALCODE": "2.5.4.17",
}

// dnAttr is one attribute of a distinguished name, as compared: its OID
// and its value folded for caseIgnoreMatch.
type dnAttr struct{ oid, value string }

// parseDN parses an RFC 4514 string (descriptors of dnDescriptors or dotted
// OIDs; values as strings with \-escapes or #hex of their DER encoding) into
// its attributes, in any order.
func parseDN(dn string) ([]dnAttr, error) {
	var out []dnAttr
	for _, rdn := range splitUnescaped(dn, ",") {
		for _, ava := range splitUnescaped(rdn, "+") {
			typ, value, ok := strings.Cut(ava, "=")
			typ = strings.TrimSpace(typ)
			if !ok || typ == "" {
				return nil, fmt.Errorf("%q is not type=value", ava)
			}
			oid, known := dnDescriptors[strings.ToUpper(typ)]
			if !known {
				if !isOID(typ) {
					return nil, fmt.Errorf("attribute type %q is neither an RFC 4514 descriptor nor an OID", typ)
				}
				oid = typ
			}
			v, err := dnValue(strings.TrimSpace(value))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", typ, err)
			}
			out = append(out, dnAttr{oid, fold(v)})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty distinguished name")
	}
	return out, nil
}

// splitUnescaped splits s at each sep not escaped with a backslash.
func splitUnescaped(s, sep string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case strings.HasPrefix(s[i:], sep):
			parts = append(parts, s[start:i])
			start = i + len(sep)
		}
	}
	return append(parts, s[start:])
}

func isOID(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// dnValue decodes an RFC 4514 value: #hex is the DER of a string type,
// anything else a string with \-escapes (\, or \2C).
func dnValue(v string) (string, error) {
	if hexDER, ok := strings.CutPrefix(v, "#"); ok {
		der, err := hex.DecodeString(hexDER)
		if err != nil {
			return "", fmt.Errorf("#%s is not hex", hexDER)
		}
		var raw asn1.RawValue
		if rest, err := asn1.Unmarshal(der, &raw); err != nil || len(rest) > 0 || raw.Class != asn1.ClassUniversal {
			return "", errors.New("the #hex value is not one DER-encoded string")
		}
		return string(raw.Bytes), nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' || i+1 == len(v) {
			b.WriteByte(v[i])
			continue
		}
		if i+2 < len(v) {
			if h, err := hex.DecodeString(v[i+1 : i+3]); err == nil {
				b.Write(h)
				i += 2
				continue
			}
		}
		b.WriteByte(v[i+1])
		i++
	}
	return b.String(), nil
}

// fold is caseIgnoreMatch's comparison form: case folded, inner spaces
// collapsed.
func fold(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// subjectMatches is distinguishedNameMatch (RFC 4517) between dn and cert's
// subject: the same attributes with the same values, ignoring case and order.
func subjectMatches(dn string, cert *x509.Certificate) (bool, error) {
	want, err := parseDN(dn)
	if err != nil {
		return false, err
	}
	var have []dnAttr
	for _, n := range cert.Subject.Names {
		v, ok := n.Value.(string)
		if !ok {
			return false, nil
		}
		have = append(have, dnAttr{n.Type.String(), fold(v)})
	}
	less := func(a, b dnAttr) int {
		if c := strings.Compare(a.oid, b.oid); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	}
	slices.SortFunc(want, less)
	slices.SortFunc(have, less)
	return slices.Equal(want, have), nil
}
