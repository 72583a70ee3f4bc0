// Command baseline is the reference server of the load run (bench/loadrun): a
// bare net/http handler at Ponte's ticket path that decodes the same request
// JSON and encodes a response of the same shape as Ponte's 201, with no
// authentication, no idempotency, no logging and no storage. It is what "the
// same HTTP round trip with nothing behind it" costs on this machine.
//
//	go run ./bench/baseline --addr 127.0.0.1:0
//
// The first line on standard output is the URL it listens on. It serves until
// SIGINT or SIGTERM. Only loopback addresses are accepted.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ticketPath is the route Ponte serves ticket creation on.
const ticketPath = "/openfinance/consent-flow/ticket"

// createTicket is the request body, as Ponte's consentflow.CreateTicket.
type createTicket struct {
	RequestURI     string `json:"requestUri"`
	ClientID       string `json:"clientId"`
	DocumentNumber string `json:"documentNumber"`
}

// ticket is the 201 response body, field for field as Ponte's consentflow.TicketJSON.
type ticket struct {
	TicketID       string `json:"ticketId"`
	CompanyKey     string `json:"companyKey"`
	DocumentNumber string `json:"documentNumber"`
	RequestURI     string `json:"requestUri"`
	ClientID       string `json:"clientId"`
	Status         string `json:"status"`
	CreatedAt      string `json:"createdAt"`
	UpdatedAt      string `json:"updatedAt"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback listen address")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	if err := requireLoopback(addr); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ticketPath, create)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	fmt.Printf("http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(sctx)
		cancel()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func create(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, `{"errors":[{"code":"INVALID_PARAMETER","message":"could not read request body"}]}`, http.StatusBadRequest)
		return
	}
	var in createTicket
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, `{"errors":[{"code":"INVALID_PARAMETER","message":"malformed JSON"}]}`, http.StatusBadRequest)
		return
	}
	var id [16]byte
	_, _ = rand.Read(id[:]) // never fails on supported platforms
	now := time.Now().UTC().Format("2006-01-02T15:04:05")
	out, err := json.Marshal(ticket{
		TicketID: hex.EncodeToString(id[:]), CompanyKey: "DEMO", DocumentNumber: in.DocumentNumber,
		RequestURI: in.RequestURI, ClientID: in.ClientID, Status: "UNUSED", CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(out)
}

// requireLoopback refuses any listen address that is not a loopback one.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--addr %q: only loopback addresses (127.0.0.1, [::1], localhost) are allowed", addr)
	}
	return nil
}
