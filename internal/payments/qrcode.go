package payments

import (
	"errors"
	"fmt"

	"github.com/ponte-ofb/ponte/internal/pixqr"
)

// qrFacts is what a QR-code payment is held to, from the consent's or the
// payment's own fields.
type qrFacts struct {
	instrument string  // QRES or QRDN
	qrField    string  // the field name of qrCode in errors
	proxyField string  // the field name of proxy in errors
	proxy      *string // the Pix key the initiator sent
}

// checkQRCode reads a QRES or QRDN payment's qrCode (already known to be
// present and at most 512 bytes) and checks it against its localInstrument
// and proxy: a payload that is not a Pix BR Code or whose CRC fails is a
// format error (PARAMETRO_INVALIDO); a dynamic code for QRES, a static one
// for QRDN, or a static code whose key is not the proxy breaks the business
// rules (DETALHE_PAGAMENTO_INVALIDO). It returns the parsed code, nil when
// the payload is refused. The amount rule differs between consent and
// payment, so the callers apply it.
func checkQRCode(c *checker, qr string, f qrFacts) *pixqr.Code {
	code, err := pixqr.Parse(qr)
	if err != nil {
		why := "não é um BR Code Pix válido"
		if errors.Is(err, pixqr.ErrCRC) {
			why = "o CRC (campo 63) não confere com o conteúdo"
		}
		c.add(CodeParametroInvalido, "Parâmetro %s não obedece as regras de formatação esperadas: %s (%v).", f.qrField, why, err)
		return nil
	}
	switch {
	case f.instrument == "QRES" && code.Dynamic():
		c.business(f.qrField, "localInstrument QRES exige um QR Code estático, com a chave Pix no campo 26-01; o informado é dinâmico")
		return nil
	case f.instrument == "QRDN" && !code.Dynamic():
		c.business(f.qrField, "localInstrument QRDN exige um QR Code dinâmico, com a URL do payload no campo 26-25; o informado é estático")
		return nil
	case f.instrument == "QRES" && f.proxy != nil && *f.proxy != "" && *f.proxy != code.Key:
		c.business(f.proxyField, "difere da chave Pix do QR Code estático")
		return nil
	}
	return code
}

// qrAmountDiffers reports whether code fixes an amount other than amount (a
// validated "123.45"). A code without field 54 leaves the amount to the payer.
func qrAmountDiffers(code *pixqr.Code, amount string) bool {
	if code == nil || code.Amount == "" {
		return false
	}
	cents, err := amountCents(amount)
	return err != nil || cents != code.Cents
}

// qrAmountDetail names the amounts for a DETALHE_PAGAMENTO_INVALIDO.
func qrAmountDetail(code *pixqr.Code) string {
	return fmt.Sprintf("difere do valor estabelecido no QR Code (%d.%02d)", code.Cents/100, code.Cents%100)
}
