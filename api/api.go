// Package api embeds Ponte's public OpenAPI contract.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
