package consentflow

import (
	"github.com/ponte-ofb/ponte/internal/httpx"
	"github.com/ponte-ofb/ponte/internal/ofb"
)

// The end user's device, as each interaction step reports it (seed 002).

// Device is the end user's device on an interaction step (seed 002).
type Device = ofb.Device

// Device platforms and operating systems (seed 002).
var (
	Platforms = ofb.Platforms
	OSes      = ofb.OSes
)

// osVersionPattern is the device osVersion pattern (seed 002).
var osVersionPattern = ofb.OSVersionPattern

// deviceFields reports every invalid device field under prefix.
func deviceFields(d *Device, prefix string) []httpx.FieldError {
	var out []httpx.FieldError
	for _, p := range d.Validate(prefix) {
		out = append(out, httpx.FieldError{Field: p.Field, Message: p.Message})
	}
	return out
}
