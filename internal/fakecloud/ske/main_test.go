//go:build !unit

package ske_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"

	fakeske "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/ske"
)

// env is the local SKE shared by this package's tests: starting a control
// plane takes seconds, so tests share one and each adds its own clusters.
var env *fakeske.Environment

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	// The TestAcc tests need a control plane and run only with TF_ACC set.
	if off, err := fakecloud.AcceptanceOff("against a local SKE"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	} else if off {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	env, err = fakeske.Start(ctx, fakeske.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: TF_ACC is set but the local SKE these tests need cannot start: %v\n", err)
		return 1
	}
	defer env.Close()
	env.CloseOnSignal()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "%s", env.LogTail())
	}
	return code
}
