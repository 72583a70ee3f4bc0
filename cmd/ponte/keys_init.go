package main

import (
	"context"
	"errors"
	"io"
)

// Being written (issue 17 §1): replaced by the key set's owner.
func keysInit(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("keys init: not built yet")
}

func keysShow(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("keys show: not built yet")
}
