//go:build !unit

package lke_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// env is the local LKE shared by this package's tests: starting a control
// plane takes seconds, so tests share one and leave it as they found it.
var env *fakelke.Environment

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	env, err = fakelke.Start(ctx, fakelke.Options{Clusters: 2})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the local LKE these tests need: %v\n", err)
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
