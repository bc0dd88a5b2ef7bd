//go:build !unit

package lke_test

import (
	"context"
	"flag"
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
	flag.Parse()
	// As terraform-plugin-testing does: the TestAcc tests need a control
	// plane and run only with TF_ACC set; without it nothing is started.
	if os.Getenv("TF_ACC") == "" {
		skip := "^TestAcc"
		if s := flag.Lookup("test.skip").Value.String(); s != "" {
			skip = s + "|" + skip
		}
		_ = flag.Set("test.skip", skip)
		fmt.Println("fakelke: acceptance tests (TestAcc…, against a local LKE) not run: TF_ACC is unset; make test, or TF_ACC=1 go test, runs them")
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	env, err = fakelke.Start(ctx, fakelke.Options{Clusters: 2})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: TF_ACC is set but the local LKE these tests need cannot start: %v\n", err)
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
