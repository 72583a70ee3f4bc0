package ofb

import "testing"

func TestDeviceFromUserAgent(t *testing.T) {
	cases := []struct{ ua, os, version string }{
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "IOS", "17.5"},
		{"Mozilla/5.0 (iPad; CPU OS 16_1_2 like Mac OS X) AppleWebKit/605.1.15", "IOS", "16.1.2"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36", "ANDROID", "14"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36", "WINDOWS", "10.0"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", "MACOS", "10.15.7"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36", "LINUX", "x86_64"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36", "LINUX", "unknown"},
		{"Mozilla/5.0 (X11; FreeBSD amd64; rv:109.0) Gecko/20100101 Firefox/115.0", "UNIX", "unknown"},
		{"curl/8.5.0", "OTHER", "unknown"},
		{"", "OTHER", "unknown"},
	}
	for _, c := range cases {
		d := DeviceFromUserAgent(c.ua)
		if d.Platform != "BROWSER" || d.OS != c.os || d.OSVersion != c.version {
			t.Errorf("%q → %+v, want %s %s", c.ua, d, c.os, c.version)
		}
		if problems := d.Validate("device"); len(problems) > 0 {
			t.Errorf("%q → invalid device %+v", c.ua, problems)
		}
	}
}

func FuzzDeviceFromUserAgent(f *testing.F) {
	f.Add("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)")
	f.Add("Android 1_2_3_4_5_6_7_8_9_0_1_2_3_4_5_6_7_8_9_0_1_2_3_4_5")
	f.Fuzz(func(t *testing.T, ua string) {
		d := DeviceFromUserAgent(ua)
		if problems := d.Validate("device"); len(problems) > 0 {
			t.Fatalf("%q → invalid device %+v", ua, problems)
		}
	})
}
