package consentflow

import (
	_ "example.com/sides/internal/customers"
	_ "example.com/sides/internal/itpflow"
)
