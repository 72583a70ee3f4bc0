package ofb

import (
	_ "example.com/sides/internal/customers"
)
