package app

import (
	"os"
	"testing"

	"github.com/ponte-ofb/ponte/internal/config"
)

func TestInstanceName(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, instance, addr, publicURL, want string
	}{
		{"--instance as given", "web-2", "127.0.0.1:8080", "http://127.0.0.1:8080", "web-2"},
		{"host and listen port", "", "0.0.0.0:8081", "https://ponte.example", host + ":8081"},
		{"port 0: the public URL's port", "", "127.0.0.1:0", "http://127.0.0.1:40123", host + ":40123"},
		{"port 0, no port in the public URL: the host alone", "", "127.0.0.1:0", "https://ponte.example", host},
		{"IPv6 listen address", "", "[::1]:9090", "", host + ":9090"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := instanceName(config.Config{Instance: tt.instance, Addr: tt.addr, PublicURL: tt.publicURL})
			if got != tt.want {
				t.Errorf("instanceName = %q, want %q", got, tt.want)
			}
		})
	}
}
