package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ponte-ofb/ponte/internal/auth"
	"github.com/ponte-ofb/ponte/internal/clock"
	"github.com/ponte-ofb/ponte/internal/store"
)

// Helpers shared by the command groups (apps, cards, initiators, customers, accounts).

// groupHelp prints a command group's usage for no subcommand or help; done
// reports that the command is finished.
func groupHelp(args []string, usage string, stdout io.Writer) (done bool, err error) {
	if len(args) > 0 && args[0] != "-h" && args[0] != "--help" && args[0] != "help" {
		return false, nil
	}
	fmt.Fprint(stdout, usage)
	if len(args) == 0 {
		return true, errUsage
	}
	return true, nil
}

// applicationID resolves a partner application's client_id (or id) to its id.
func applicationID(ctx context.Context, db *store.DB, clientID string) (string, error) {
	a, err := auth.NewApplications(db, clock.System{}).Get(ctx, clientID)
	if err != nil {
		return "", fmt.Errorf("application %s: %w", clientID, err)
	}
	return a.ID, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func orEmpty[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
