package payments

import "fmt"

// brCodeCRC is CRC16-CCITT (0x1021, initial 0xFFFF) bit by bit, kept apart
// from internal/pixqr's table so the tests do not trust the code they test.
func brCodeCRC(s string) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range []byte(s) {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func emv(id, v string) string { return fmt.Sprintf("%s%02d%s", id, len(v), v) }

// BRCode builds a Pix BR Code for the tests of this directory: static with
// key when url is "", dynamic with url otherwise; amount and txid ("***"
// when "") are fields 54 and 62-05.
func BRCode(key, url, amount, txid string) string {
	account := emv("00", "br.gov.bcb.pix") + emv("01", key)
	head := emv("00", "01")
	if url != "" {
		account = emv("00", "br.gov.bcb.pix") + emv("25", url)
		head += emv("01", "12")
	}
	if txid == "" {
		txid = "***"
	}
	s := head + emv("26", account) + emv("52", "0000") + emv("53", "986")
	if amount != "" {
		s += emv("54", amount)
	}
	s += emv("58", "BR") + emv("59", "MARCO ANTONIO DE BRITO") + emv("60", "BRASILIA") + emv("62", emv("05", txid)) + "6304"
	return s + fmt.Sprintf("%04X", brCodeCRC(s))
}

// testDynamicURL is the payload location of the tests' dynamic codes.
const testDynamicURL = "pix.example.com/qr/v2/9d36b84fc70b478fb95c12729b90ca25"
