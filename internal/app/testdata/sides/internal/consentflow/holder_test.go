package consentflow

import (
	_ "example.com/sides/internal/itp"
)
