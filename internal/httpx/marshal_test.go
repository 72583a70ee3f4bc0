package httpx

import (
	"net/http/httptest"
	"testing"
)

// TestWriteJSONKeepsURLs: answers carry URLs people copy from a terminal;
// "&", "<" and ">" stay as written (encoding/json's default writes \u0026,
// and a pasted journeySessionUrl then fails as "Link inválido").
func TestWriteJSONKeepsURLs(t *testing.T) {
	v := map[string]string{"url": "https://p.example/j?api=X&id=1&token=<t>", "s": "a\"b\\c\u2028"}
	want := `{"s":"a\"b\\c\u2028","url":"https://p.example/j?api=X&id=1&token=<t>"}`
	b, err := Marshal(v)
	if err != nil || string(b) != want {
		t.Errorf("Marshal = %s, %v; want %s", b, err, want)
	}
	w := httptest.NewRecorder()
	WriteJSON(w, httptest.NewRequest("GET", "/", nil), 200, v)
	if got := w.Body.String(); got != want {
		t.Errorf("WriteJSON body = %s; want %s", got, want)
	}
}
