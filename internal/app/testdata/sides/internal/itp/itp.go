package itp

import (
	_ "example.com/sides/internal/itpflow"
	_ "example.com/sides/internal/oidc/oidctest"
	_ "example.com/sides/internal/store"
)
