//go:build !unit

package provider

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
	fakeske "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/ske"
)

// testEnv is what this package's acceptance tests run against: the local
// LKE (embedded: testEnv.Emulator, testEnv.Clusters(), …) and the local SKE
// beside it (testEnv.SKE(), testEnv.AddSKECluster).
var testEnv *testClouds

type testClouds struct {
	*fakelke.Environment
	ske *fakeske.Environment
}

// SKE returns the local SKE API.
func (c *testClouds) SKE() (*fakeske.API, error) { return c.ske.API, nil }

// AddSKECluster starts an emulated SKE cluster.
func (c *testClouds) AddSKECluster(ctx context.Context, spec fakeske.ClusterSpec) (*fakeske.Cluster, error) {
	return c.ske.AddCluster(ctx, spec)
}

// Close stops both clouds.
func (c *testClouds) Close() {
	if c.ske != nil {
		c.ske.Close()
	}
	if c.Environment != nil {
		c.Environment.Close()
	}
}

// CloseOnSignal stops both clouds when the process is interrupted.
func (c *testClouds) CloseOnSignal() { fakecloud.CloseOnSignal("the local LKE and SKE", c.Close) }

// LogTail returns the end of both clouds' process logs.
func (c *testClouds) LogTail() string {
	s := c.Environment.LogTail()
	if c.ske != nil {
		s += c.ske.LogTail()
	}
	return s
}

// testProviders serves the provider in-process to the real terraform binary.
var testProviders = map[string]func() (tfprotov6.ProviderServer, error){
	"kubecreds": providerserver.NewProtocol6WithError(New("test")()),
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	// The tiers, as terraform-plugin-testing has them: without TF_ACC only
	// the tests not named TestAcc… run, and nothing they do not need starts
	// (no local LKE/SKE, no terraform). TestTiersAreNamedSo checks that
	// every test that needs them is named so.
	flag.Parse()
	if off, err := fakecloud.AcceptanceOff("real terraform against the local LKE and SKE"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	} else if off {
		return portableRan(m.Run())
	}
	if err := prepareTerraform(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	var err error
	if leaks, err = startLeakCapture(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	testEnv = &testClouds{}
	defer testEnv.Close()
	// The pool takeCluster hands out, as many as make test's -parallel:
	// eight for the whole suite, whose tests mostly wait (token caches,
	// polls; the CPU is about half busy with six), four for the portable
	// subset, which OpenTofu and Terraform 1.14 run side by side.
	clusters := 8
	if os.Getenv(portableEnv) == "1" {
		clusters = 4
	}
	if testEnv.Environment, err = fakelke.Start(ctx, fakelke.Options{Clusters: clusters, RecycleDelay: time.Second}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the local LKE the acceptance tests need: %v\n", err)
		return 1
	}
	testEnv.CloseOnSignal()
	for k, v := range testEnv.LinodeEnv() {
		os.Setenv(k, v)
	}
	// The SKE client trusts the system's roots, which Go reads from
	// SSL_CERT_FILE (as a user behind a TLS-inspecting proxy would set it):
	// here the local SKE API's own CA, and only it (so that the Linode
	// emulator's certificate stays untrusted without LINODE_CA). Go reads
	// the roots once, at their first use: set before any test runs.
	if testEnv.ske, err = fakeske.Start(ctx, fakeske.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the local SKE API: %v\n", err)
		return 1
	}
	skeAPI = testEnv.ske.API
	os.Setenv("SSL_CERT_FILE", skeAPI.CAPath)
	code := portableRan(m.Run())
	if scan := finishLeakScan(leaks, testEnv.Environment); scan != 0 {
		code = scan
	}
	if code != 0 {
		fmt.Fprint(os.Stderr, testEnv.LogTail())
	}
	return code
}

// portableRan fails a run for another CLI (KUBECREDS_PORTABLE=1) in which
// TestAccPortable ran none of its tests: a -run that matches nothing passes.
func portableRan(code int) int {
	if os.Getenv(portableEnv) == "1" && portableRuns.Load() == 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %s=1 but TestAccPortable ran none of its tests (TF_ACC unset, or -run matched nothing)\n", portableEnv)
		return 1
	}
	return code
}

// prepareTerraform points terraform-plugin-testing at the installed
// terraform. With TF_ACC set (make test sets it) the acceptance tests are
// the proof that the provider works: a missing terraform is a failure, not
// a skip.
func prepareTerraform() error {
	if os.Getenv("TF_ACC_TERRAFORM_VERSION") != "" {
		return fmt.Errorf("TF_ACC_TERRAFORM_VERSION is set: it makes terraform-plugin-testing download terraform, which cannot work here; set TF_ACC_TERRAFORM_PATH instead")
	}
	if os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		p, err := exec.LookPath("terraform")
		if err != nil {
			return fmt.Errorf("terraform not found on PATH and TF_ACC_TERRAFORM_PATH unset: the acceptance tests need a terraform binary")
		}
		os.Setenv("TF_ACC_TERRAFORM_PATH", p)
	}
	out, err := exec.Command(os.Getenv("TF_ACC_TERRAFORM_PATH"), "version").Output()
	if err != nil {
		return fmt.Errorf("%s version: %w", os.Getenv("TF_ACC_TERRAFORM_PATH"), err)
	}
	// A run meant for OpenTofu must really use it.
	if os.Getenv("TF_ACC_PROVIDER_HOST") == "registry.opentofu.org" && !strings.HasPrefix(string(out), "OpenTofu v") {
		return fmt.Errorf("TF_ACC_PROVIDER_HOST is registry.opentofu.org but %s is not OpenTofu (%q)", os.Getenv("TF_ACC_TERRAFORM_PATH"), firstLine(out))
	}
	fmt.Fprintf(os.Stderr, "acceptance tests run under %s\n", firstLine(out))
	if f := os.Getenv("TF_CLI_CONFIG_FILE"); f == "" || !fileExists(f) {
		dir, err := os.MkdirTemp("", "kubecreds-tfcli-")
		if err != nil {
			return err
		}
		empty := filepath.Join(dir, "terraformrc")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			return err
		}
		os.Setenv("TF_CLI_CONFIG_FILE", empty)
	}
	return nil
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
