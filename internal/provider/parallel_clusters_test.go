//go:build !unit

package provider

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// TestAccParallelClusters rotates five clusters in one `terraform apply
// -parallelism=5` with the built provider. Each cluster holds a different
// number of its own token secrets, so that any mix-up shows: every resource
// must record exactly its cluster's secrets, every cluster must serve a new
// kubeconfig matching its resource, and every log line of a rotation step
// must carry the counts of the cluster it names.
//
// Not parallel with other tests: it needs five clusters at once (it starts
// the fifth; it stays for the tests that follow).
func TestAccParallelClusters(t *testing.T) {
	const n = 5
	for len(testEnv.Clusters()) < n {
		if _, err := testEnv.AddCluster(t.Context(), fakelke.ClusterSpec{}); err != nil {
			t.Fatalf("cannot start another cluster: %v", err)
		}
	}
	clusters := testEnv.Clusters()[:n]
	var ids []string
	want := map[int][]string{} // cluster -> namespace/name of the secrets its rotation must delete
	oldKubeconfigs := map[int][]byte{}
	for i, c := range clusters {
		ids = append(ids, strconv.Itoa(c.ID))
		for k := range i + 1 {
			want[c.ID] = append(want[c.ID], createTokenSecret(t, c, "team", fmt.Sprintf("c%d-bot-%d", c.ID, k)))
		}
		for name := range tokenSecrets(t, c, "kube-system", "team") {
			if !slices.Contains(want[c.ID], name) {
				want[c.ID] = append(want[c.ID], name)
			}
		}
		slices.Sort(want[c.ID])
		oldKubeconfigs[c.ID] = servedKubeconfig(t, c)
	}

	dir := t.TempDir()
	config := fmt.Sprintf(`
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

resource "kubecreds_lke_secret_rotation" "c" {
  for_each   = toset([%s])
  cluster_id = tonumber(each.key)
  namespaces = ["kube-system", "team"]
}

output "rotations" {
  value = { for id, r in kubecreds_lke_secret_rotation.c : id => {
    deleted = r.deleted_secrets
    sha     = r.kubeconfig_sha256
  } }
}
`, `"`+strings.Join(ids, `", "`)+`"`)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "trace.log")
	start := time.Now()
	out, err := terraformCmd(t, dir, map[string]string{"TF_LOG": "TRACE", "TF_LOG_PATH": logFile},
		"apply", "-auto-approve", "-input=false", "-parallelism=5")
	if err != nil {
		t.Fatalf("terraform apply -parallelism=5: %v\n%s", err, out)
	}
	t.Logf("five rotations (verify = true) in one apply: %s", time.Since(start).Round(100*time.Millisecond))

	raw, err := terraformCmd(t, dir, nil, "output", "-json", "rotations")
	if err != nil {
		t.Fatalf("terraform output: %v\n%s", err, raw)
	}
	var got map[string]struct {
		Deleted []string `json:"deleted"`
		SHA     string   `json:"sha"`
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("output: %v\n%s", err, raw)
	}
	trace, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clusters {
		r := got[strconv.Itoa(c.ID)]
		if !slices.Equal(r.Deleted, want[c.ID]) {
			t.Errorf("cluster %d: deleted_secrets = %v, want its own %v", c.ID, r.Deleted, want[c.ID])
		}
		if kc := servedKubeconfig(t, c); sha256Hex(kc) != r.SHA {
			t.Errorf("cluster %d: kubeconfig_sha256 does not match the kubeconfig the cluster serves", c.ID)
		} else if err := kubeconfigWorks(t, kc); err != nil {
			t.Errorf("cluster %d: new kubeconfig does not work: %v", c.ID, err)
		}
		if err := oldTokenRejected(t, oldKubeconfigs[c.ID]); err != nil {
			t.Errorf("cluster %d: %v", c.ID, err)
		}
		if n := testEnv.Emulator.CountClusterRequests(c.ID, fakelke.EndpointRegenerate); n < 1 {
			t.Errorf("cluster %d: regenerated %d times", c.ID, n)
		}
		// The deletion step's log line for this cluster reports this
		// cluster's count (all but the old kubeconfig's own secret, which
		// goes after the new kubeconfig is served).
		line := regexp.MustCompile(`rotation step: ` + regexp.QuoteMeta("delete service-account-token secrets") + `:[^\n]*cluster_id=` + strconv.Itoa(c.ID) + `[^\n]*`).Find(trace)
		if line == nil {
			t.Errorf("cluster %d: no deletion step in the log", c.ID)
			continue
		}
		if m := regexp.MustCompile(`\bdeleted=(\d+)`).FindSubmatch(line); m == nil || string(m[1]) != strconv.Itoa(len(want[c.ID])-1) {
			t.Errorf("cluster %d: its deletion log line says %q; want deleted=%d", c.ID, line, len(want[c.ID])-1)
		}
	}
	// The rotations ran at the same time: each one's span (its first to
	// its last kubeconfig request: the fetch of the current kubeconfig,
	// the polls for the new one) overlaps every other's.
	var latestStart, earliestEnd time.Time
	for _, c := range clusters {
		var first, last time.Time
		for _, r := range testEnv.Emulator.Requests() {
			if r.ClusterID == c.ID && r.Endpoint == fakelke.EndpointGetKubeconfig && r.At.After(start) {
				if first.IsZero() {
					first = r.At
				}
				last = r.At
			}
		}
		if first.IsZero() {
			t.Fatalf("cluster %d: no kubeconfig request during the apply", c.ID)
		}
		if first.After(latestStart) {
			latestStart = first
		}
		if earliestEnd.IsZero() || last.Before(earliestEnd) {
			earliestEnd = last
		}
	}
	if !latestStart.Before(earliestEnd) {
		t.Errorf("the five rotations did not all run at once: the last one started %s after the first one ended",
			latestStart.Sub(earliestEnd).Round(time.Millisecond))
	}
}
