package main

import (
	"context"
	"errors"
	"io"
)

// Being written (issue 17 §1): replaced by the rotation's owner.
func keysRotateSigning(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("keys rotate-signing-key: not built yet")
}

func keysRotateData(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("keys rotate-data-key: not built yet")
}

func keysReseal(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("keys reseal: not built yet")
}
