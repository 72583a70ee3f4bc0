package ofb

import (
	"regexp"
	"slices"
	"strings"
)

// Device is the end user's device on a journey step (seed 002), what the PCM
// reports: platform, operating system and its version.
type Device struct {
	Platform  string `json:"platform" required:"true"`
	OS        string `json:"os" required:"true"`
	OSVersion string `json:"osVersion" required:"true"`
}

// Device platforms and operating systems (seed 002, PCM).
var (
	Platforms = []string{"BROWSER", "APP"}
	OSes      = []string{"LINUX", "MACOS", "UNIX", "WINDOWS", "IOS", "ANDROID", "OTHER"}
)

// OSVersionPattern is what an osVersion may look like: 1-32 letters,
// digits, dots, dashes, underscores or spaces, starting with a letter or digit.
var OSVersionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._ -]{0,31}$`)

// DeviceProblem is one invalid field of a Device.
type DeviceProblem struct {
	Field, Message string
}

// Validate reports every invalid field, named under prefix ("device").
func (d *Device) Validate(prefix string) []DeviceProblem {
	var out []DeviceProblem
	if !slices.Contains(Platforms, d.Platform) {
		out = append(out, DeviceProblem{prefix + ".platform", "must be one of " + strings.Join(Platforms, ", ")})
	}
	if !slices.Contains(OSes, d.OS) {
		out = append(out, DeviceProblem{prefix + ".os", "must be one of " + strings.Join(OSes, ", ")})
	}
	if !OSVersionPattern.MatchString(d.OSVersion) {
		out = append(out, DeviceProblem{prefix + ".osVersion", "must be 1-32 letters, digits, dots, dashes, underscores or spaces"})
	}
	return out
}
