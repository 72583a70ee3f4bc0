package app

import (
	"net"
	"net/url"
	"os"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ponte-ofb/ponte/internal/config"
	"github.com/ponte-ofb/ponte/internal/store"
)

// WithVersion names the binary's version in ponte_build_info (default: the
// main module's version from the build information).
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// instanceName is this instance's name on its metrics and log lines:
// --instance, or the host name and the port it listens on ("host:8080"), so
// several instances behind one load balancer are told apart.
func instanceName(cfg config.Config) string {
	if cfg.Instance != "" {
		return cfg.Instance
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	_, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || port == "0" {
		// --addr HOST:0 picks a port when listening; the public URL names it.
		port = ""
		if u, err := url.Parse(cfg.PublicURL); err == nil {
			port = u.Port()
		}
	}
	if port == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}

// newMetrics returns the registry /metrics serves and the registerer every
// collector registers with: the registry wrapped so that every series Ponte
// exports carries instance, whichever package made it. It registers the Go
// and process collectors and ponte_build_info.
func newMetrics(instance string, engine store.Engine, version string) (*prometheus.Registry, prometheus.Registerer) {
	root := prometheus.NewRegistry()
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"instance": instance}, root)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if version == "" {
		version = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ponte_build_info",
		Help:        "Always 1: the version of the running binary and the database engine it uses.",
		ConstLabels: prometheus.Labels{"version": version, "engine": string(engine)}})
	build.Set(1)
	reg.MustRegister(build)
	return root, reg
}
