package ofb

import (
	"regexp"
	"strings"
)

var (
	uaAndroid = regexp.MustCompile(`Android (\d+(?:[._]\d+)*)`)
	uaIOS     = regexp.MustCompile(`(?:iPhone|iPad|iPod)[^)]*? OS (\d+(?:_\d+)*)`)
	uaWindows = regexp.MustCompile(`Windows NT (\d+(?:\.\d+)*)`)
	uaMac     = regexp.MustCompile(`Mac OS X (\d+(?:[._]\d+)*)`)
	uaLinux   = regexp.MustCompile(`Linux ([A-Za-z0-9_]+)`)
)

// DeviceFromUserAgent maps a browser's User-Agent to the PCM's device
// enums, for the steps a user takes on Ponte's own pages: the platform is
// BROWSER; an unknown system is OTHER and an unknown version "unknown".
func DeviceFromUserAgent(ua string) Device {
	d := Device{Platform: "BROWSER", OS: "OTHER", OSVersion: "unknown"}
	// Apple and Android write versions with underscores (17_5); Linux
	// names its architecture (x86_64).
	version := func(m []string) string {
		if len(m) < 2 {
			return "unknown"
		}
		v := m[1]
		if m[0] != "" && !strings.HasPrefix(m[0], "Linux") {
			v = strings.ReplaceAll(v, "_", ".")
		}
		if len(v) > 32 {
			v = v[:32]
		}
		return v
	}
	switch {
	case uaAndroid.MatchString(ua):
		d.OS, d.OSVersion = "ANDROID", version(uaAndroid.FindStringSubmatch(ua))
	case uaIOS.MatchString(ua):
		d.OS, d.OSVersion = "IOS", version(uaIOS.FindStringSubmatch(ua))
	case uaWindows.MatchString(ua):
		d.OS, d.OSVersion = "WINDOWS", version(uaWindows.FindStringSubmatch(ua))
	case uaMac.MatchString(ua):
		d.OS, d.OSVersion = "MACOS", version(uaMac.FindStringSubmatch(ua))
	case strings.Contains(ua, "CrOS") || strings.Contains(ua, "Linux"):
		d.OS = "LINUX"
		if m := uaLinux.FindStringSubmatch(ua); m != nil {
			d.OSVersion = version(m)
		}
	case strings.Contains(ua, "BSD") || strings.Contains(ua, "SunOS"):
		d.OS = "UNIX"
	}
	if !OSVersionPattern.MatchString(d.OSVersion) {
		d.OSVersion = "unknown"
	}
	return d
}
