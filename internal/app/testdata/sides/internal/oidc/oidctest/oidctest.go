package oidctest

import (
	_ "example.com/sides/internal/oidc"
)
