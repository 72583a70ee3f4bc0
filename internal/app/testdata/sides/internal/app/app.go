package app

import (
	_ "example.com/sides/internal/consentflow"
	_ "example.com/sides/internal/itp"
	_ "example.com/sides/internal/oidc"
)
