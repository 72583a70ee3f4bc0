package pcm

import (
	_ "example.com/sides/internal/fapiclient"
	_ "example.com/sides/internal/store"
)
