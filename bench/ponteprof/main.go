// Command ponteprof is `ponte serve` with a CPU profile, for bench/loadrun
// only. It wires Ponte exactly as cmd/ponte's serve does (config, listener,
// app.New, app.Serve) and prints the same banner lines the load run parses;
// when PONTE_CPUPROFILE names a file it profiles the whole process and writes
// the profile there on shutdown (SIGINT/SIGTERM).
//
// Ponte itself has no profiling hook on purpose; use this through
//
//	PONTE_CPUPROFILE=/tmp/ponte.cpu go run ./bench/loadrun
//	go tool pprof -top /tmp/ponte.cpu
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/ponte-ofb/ponte/internal/app"
	"github.com/ponte-ofb/ponte/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ponteprof:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "serve" {
		return errors.New("usage: ponteprof serve [ponte serve flags]")
	}
	if path := os.Getenv("PONTE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	var cfg config.Config
	fs := flag.NewFlagSet("ponteprof serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.RegisterServe(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := cfg.Finish(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if cfg.PublicURL == "http://"+cfg.Addr {
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	a, err := app.New(ctx, cfg, app.NewLogger(stderr, cfg.LogFormat))
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintf(stdout, "Ponte is running in %s mode on %s (%s, CPU profile: %q)\n", cfg.Mode, cfg.PublicURL, a.DB.Engine(), os.Getenv("PONTE_CPUPROFILE"))
	if a.Demo != nil {
		fmt.Fprintf(stdout, "  client_id:     %s\n", a.Demo.ClientID)
		fmt.Fprintf(stdout, "  client_secret: %s\n", a.DemoSecret)
	}
	return a.Serve(ctx, ln)
}
