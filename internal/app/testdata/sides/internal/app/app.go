package app

import (
	_ "example.com/sides/internal/holder"
	_ "example.com/sides/internal/itp"
	_ "example.com/sides/internal/oidc"
)
