package itpflow

import (
	_ "example.com/sides/internal/fapiclient"
	_ "example.com/sides/internal/httpx"
)
