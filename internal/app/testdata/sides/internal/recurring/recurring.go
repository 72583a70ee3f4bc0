package recurring

import (
	_ "example.com/sides/internal/holder"
	_ "example.com/sides/internal/payments"
)
