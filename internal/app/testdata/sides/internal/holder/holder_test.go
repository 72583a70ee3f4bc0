package holder

import (
	_ "example.com/sides/internal/itp"
)
