package main

import (
	"context"
	"io"
)

var keysGroup = group{
	name:    "keys",
	summary: "the key set every instance of one database shares: generate, check, rotate",
	about: `Every key and secret a Ponte instance needs — token signing, the data
key sealing card numbers and secrets, the admin token, Ponte's organisation
id, the initiator's encryption key and the sandbox's keys — lives in one key
set. 'ponte keys init --dir DIR' generates a complete one; hand DIR to every
instance with --keys-dir DIR (PONTE_KEYS_DIR). The database records the
fingerprints of the keys it was first used with, and an instance whose keys
differ refuses to start, naming the key (docs/deployment.md).`,
	subs: []subcommand{
		{"init", "generate a complete key set into a new directory"},
		{"show", "list a key set's keys and fingerprints, and what the database recorded"},
		{"rotate-signing-key", "make a new token-signing key current; the old one keeps verifying"},
		{"rotate-data-key", "make a new data key current; the old one keeps opening what it sealed"},
		{"reseal", "re-seal every sealed value under the current data key"},
	},
}

func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, rest, done, err := keysGroup.dispatch(args, stdout, stderr)
	if done {
		return err
	}
	switch sub {
	case "init":
		return keysInit(ctx, rest, stdout, stderr)
	case "show":
		return keysShow(ctx, rest, stdout, stderr)
	case "rotate-signing-key":
		return keysRotateSigning(ctx, rest, stdout, stderr)
	case "rotate-data-key":
		return keysRotateData(ctx, rest, stdout, stderr)
	default: // "reseal"; dispatch refused anything else
		return keysReseal(ctx, rest, stdout, stderr)
	}
}
