package customers

import (
	_ "example.com/sides/internal/store"
)
