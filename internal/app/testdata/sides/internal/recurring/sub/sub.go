package sub

import (
	_ "example.com/sides/internal/itp"
)
