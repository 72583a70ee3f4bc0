package recurring

import (
	_ "example.com/sides/internal/consentflow"
	_ "example.com/sides/internal/payments"
)
