package cards

import (
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
	"github.com/ponte-ofb/ponte/internal/store/storetest"
	"github.com/ponte-ofb/ponte/internal/vault"
)

// TestEnsureSandboxCardsConcurrentStarts: several instances starting together
// on one database all start, and the sandbox cards exist once.
func TestEnsureSandboxCardsConcurrentStarts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := clock.NewFake(time.Date(2024, 10, 15, 18, 55, 15, 0, time.UTC))
		app, _, err := auth.NewApplications(db, c).Create(t.Context(), auth.NewApplication{Name: "Demo", CompanyKey: "DEMO", Scopes: []string{"card.admin.read"}})
		if err != nil {
			t.Fatal(err)
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			t.Fatal(err)
		}
		v, err := vault.New(key)
		if err != nil {
			t.Fatal(err)
		}
		const instances = 6
		errs := make([]error, instances)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range instances {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = NewService(db, c, v, Wallets{}, nil, nil).EnsureSandboxCards(t.Context(), app.ID)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
		}
		list, err := NewService(db, c, v, Wallets{}, nil, nil).List(t.Context(), app.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(sandboxCards) {
			t.Errorf("%d cards, want %d", len(list), len(sandboxCards))
		}
	})
}
