package app

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ponte-ofb/ponte/internal/pcm"
)

// PCMOrgIDFile is where the sandbox kept its generated PCM organisation id
// before Ponte had one organisation id (OrgIDFile), which now starts from it.
const PCMOrgIDFile = "pcm-org-id"

// SandboxPCMPrefix is where the sandbox mounts its PCM receiver.
const SandboxPCMPrefix = "/sandbox/pcm"

// sandboxPCMBase is the PCM base URL the sandbox forwarder uses: requests
// to it are served in process by the sandbox receiver, whatever address
// Ponte listens on.
const sandboxPCMBase = "http://sandbox-pcm.ponte.internal"

// wirePCMForward builds the forwarder Serve runs, which sends the steps
// the recorder put in the outbox (pcm.Recorder.Outbox) to the PCM. In the sandbox
// without --pcm-url it mounts Ponte's own PCM receiver at
// /sandbox/pcm/report-api/v2/hybrid-flow/... and forwards to it; the
// receiver is returned then, nil otherwise.
func wirePCMForward(b base, mux *http.ServeMux, reg prometheus.Registerer) (*pcm.Forwarder, *pcm.Receiver, error) {
	cfg := b.cfg
	orgID := cfg.PCMOrgID // organisationID set it (Ponte's own by default)
	opts := pcm.ForwarderOptions{DB: b.db, Clock: b.clock, Logger: b.logger.With("component", "pcm-forwarder"), BaseURL: cfg.PCMURL,
		OrgID: orgID, Metrics: pcm.NewForwardMetrics(reg), Lease: cfg.PCMLease}
	if cfg.PCMLease > 0 && cfg.PCMLease < 2*pcm.DefaultForwardTimeout {
		// A batch is sent only while a request's timeout fits in what is
		// left of its lease: a short lease takes a shorter timeout.
		opts.Timeout = cfg.PCMLease / 2
	}
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: pcm.DefaultForwardTimeout, ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	if cfg.PCMCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.PCMCertFile, cfg.PCMKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("app: --pcm-cert: %w", err)
		}
		transport.TLSClientConfig.Certificates = []tls.Certificate{cert}
	}
	var rt http.RoundTripper = transport
	var receiver *pcm.Receiver
	if cfg.PCMURL == "" && cfg.Sandbox() {
		receiver = &pcm.Receiver{Clock: b.clock}
		if cfg.PCMSpecFile != "" {
			v, err := pcm.LoadSpecValidator(cfg.PCMSpecFile)
			if err != nil {
				return nil, nil, fmt.Errorf("app: --pcm-spec: %w", err)
			}
			receiver.Validator = v
		}
		receiver.Register(mux, SandboxPCMPrefix)
		opts.BaseURL = sandboxPCMBase
		rt = inProcess{receiver}
	}
	client := &http.Client{Transport: rt, Timeout: pcm.DefaultForwardTimeout}
	opts.HTTP = client
	if cfg.PCMTokenURL != "" {
		opts.Token = &pcm.ClientCredentials{TokenURL: cfg.PCMTokenURL, ClientID: cfg.PCMClientID, ClientSecret: cfg.PCMClientSecret,
			HTTP: client, Clock: b.clock}
	}
	return pcm.NewForwarder(opts), receiver, nil
}

// inProcess serves requests with a handler in this process: the sandbox
// forwarder reaches the sandbox receiver without a network round trip.
type inProcess struct{ h http.Handler }

// RoundTrip implements http.RoundTripper.
func (p inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	w := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
	p.h.ServeHTTP(w, req)
	return &http.Response{StatusCode: w.code, Status: fmt.Sprintf("%d %s", w.code, http.StatusText(w.code)), Header: w.header,
		Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()), Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
}

type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.code, b.wrote = code, true
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
