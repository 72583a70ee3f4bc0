package pcm

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/ofb"
)

// The outbox's stored item with the forwarder's org member appended is byte
// for byte json.Marshal(ItemOf(e, org)), for every step and endpoint.
func TestStoredItemWithOrgMatchesItemOf(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 4, 5, 6, 7, 891e6, time.UTC)
	for _, org := range []string{"", "56411f7e-d58b-44a8-8a2b-ff326d3f2955", `we"ird<&>`} {
		for _, step := range Steps {
			e := &Event{ID: "id", ConsentID: "urn:x:1", Step: step, Type: "T", Error: "access_denied", URI: "https://a.example/cb?x=<1>&y",
				OccurredAt: at, Device: ofb.Device{Platform: "BROWSER", OS: "ANDROID", OSVersion: "14"}}
			item, err := encodeItem(e)
			if err != nil {
				t.Fatal(err)
			}
			got := string(batchBody([]claimedItem{{body: withOrg(nil, item, orgField(EndpointOf(step), org))}}))
			want, _ := json.Marshal([]Item{ItemOf(e, org)})
			if got != string(want) {
				t.Errorf("%s org %q:\n got %s\nwant %s", step, org, got, want)
			}
		}
	}
}
