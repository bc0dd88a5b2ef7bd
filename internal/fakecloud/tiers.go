package fakecloud

import (
	"flag"
	"fmt"
	"os"
)

// AcceptanceOff gates a test binary's acceptance tier as
// terraform-plugin-testing gates it: when TF_ACC is unset it adds ^TestAcc
// to -test.skip (keeping a -skip the user gave: a top-level | is an
// alternation of whole patterns), says so in one line on stderr naming
// what, and returns true; the caller then starts nothing. Call it from
// TestMain after flag.Parse.
func AcceptanceOff(what string) (bool, error) {
	if os.Getenv("TF_ACC") != "" {
		return false, nil
	}
	skip := "^TestAcc"
	if user := flag.Lookup("test.skip").Value.String(); user != "" {
		skip = user + "|" + skip
	}
	if err := flag.Set("test.skip", skip); err != nil {
		return true, err
	}
	fmt.Fprintf(os.Stderr, "TF_ACC is not set: the acceptance tests (TestAcc…, %s) were not run; make test, or TF_ACC=1 go test, runs them\n", what)
	return true, nil
}
