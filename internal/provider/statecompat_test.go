//go:build !unit

package provider

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// baselineVersion is the version the baseline provider is installed as,
// from a local filesystem mirror: terraform needs one to tell it from the
// provider under test.
const baselineVersion = "0.0.1"

// A state written by the previous release (the provider built at
// STATE_BASELINE, see GNUmakefile) is read by this provider unchanged: the
// plan is empty, and nothing rotates. Keep this for every schema change;
// one that cannot pass it needs a schema version and a state upgrader.
func TestAccStateCompatibility_previousReleasesStateReadsUnchanged(t *testing.T) {
	baseline := os.Getenv("KUBECREDS_BASELINE_PROVIDER")
	if baseline == "" {
		t.Fatal("KUBECREDS_BASELINE_PROVIDER is not set: it names the provider of the previous release (make baseline-provider builds it; make test does)")
	}
	if _, err := os.Stat(baseline); err != nil {
		t.Fatalf("the baseline provider %s is missing (make baseline-provider builds it): %v", baseline, err)
	}
	// terraform installs the baseline from a filesystem mirror, packed (a
	// zip, which it extracts: terraform-plugin-testing copies the working
	// directory between steps and cannot copy the symlinks an unpacked
	// mirror leaves). The CLI configuration that says so is process-wide,
	// so this test is not parallel.
	mirror := t.TempDir()
	dir := filepath.Join(mirror, "registry.terraform.io", "kubecreds", "kubecreds")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := zipProvider(baseline, filepath.Join(dir, "terraform-provider-kubecreds_"+baselineVersion+"_linux_amd64.zip"),
		"terraform-provider-kubecreds_v"+baselineVersion); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(t.TempDir(), "terraformrc")
	cliConfig := fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/kubecreds/kubecreds"]
  }
}
`, mirror)
	if err := os.WriteFile(rc, []byte(cliConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TF_CLI_CONFIG_FILE", rc)

	lkeCluster := takeCluster(t)
	ske := newSKECluster(t, "state-v0")
	config := rotationConfig(lkeCluster.ID, `  verify = false`) + skeRotationConfig(ske, "")
	// The cluster may have been rotated by tests before this one.
	before := lkeCluster.Regenerations()
	var regenerations int
	resource.Test(t, resource.TestCase{
		Steps: []resource.TestStep{
			{
				ExternalProviders: map[string]resource.ExternalProvider{
					"kubecreds": {Source: "registry.terraform.io/kubecreds/kubecreds", VersionConstraint: baselineVersion},
				},
				Config: config,
				Check: func(*terraform.State) error {
					regenerations = lkeCluster.Regenerations()
					if starts, _ := ske.Rotations(); regenerations-before != 1 || starts != 1 {
						return fmt.Errorf("the baseline provider regenerated %d times and started %d SKE rotations; want 1 and 1", regenerations-before, starts)
					}
					return nil
				},
			},
			{
				ProtoV6ProviderFactories: testProviders,
				Config:                   config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				Check: func(*terraform.State) error {
					if starts, completes := ske.Rotations(); lkeCluster.Regenerations() != regenerations || starts != 1 || completes != 0 {
						return fmt.Errorf("after the new provider read the old state: %d regenerations (want %d), %d SKE starts and %d completions (want 1, 0)",
							lkeCluster.Regenerations(), regenerations, starts, completes)
					}
					return nil
				},
			},
		},
	})
}

// zipProvider packs the provider binary at bin as a release zip holding it
// under name.
func zipProvider(bin, zipPath, name string) error {
	in, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(zipPath)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(out)
	h := &zip.FileHeader{Name: name, Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err == nil {
		_, err = io.Copy(w, in)
	}
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
