//go:build !unit

package provider

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// fleetSize is how many clusters TestAccFleetRotation rotates in one apply.
const fleetSize = 10

// TestAccFleetRotation rotates ten clusters in one `terraform apply
// -parallelism=10` under the Linode API's rate limits (1 600 requests a
// minute per token, 200 for paginated collections) and, stricter, 400 a
// minute for each operation on its own, as the API reference gives "all
// commands" and the recordings' X-RateLimit-Limit shows: every rotation
// succeeds, no request fails for good, every old admin token is rejected
// and every served kubeconfig works. It logs the 429s seen, the wall time
// and the control planes' memory per cluster.
//
// Not parallel with other tests: it needs ten clusters at once. It starts
// those missing and stops them again at the end.
func TestAccFleetRotation(t *testing.T) {
	var (
		added []int
		mu    sync.Mutex
		wg    sync.WaitGroup
		errs  = make(chan error, fleetSize)
	)
	for range max(fleetSize-len(testEnv.Clusters()), 0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := testEnv.AddCluster(t.Context(), fakelke.ClusterSpec{})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			added = append(added, c.ID)
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, id := range added {
			if err := testEnv.DeleteCluster(id); err != nil {
				t.Error(err)
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("cannot start the fleet's clusters: %v", err)
	}
	clusters := testEnv.Clusters()[:fleetSize]
	var ids []string
	old := map[int][]byte{}
	regens := map[int]int{}
	for _, c := range clusters {
		ids = append(ids, strconv.Itoa(c.ID))
		old[c.ID] = servedKubeconfig(t, c)
		regens[c.ID] = c.Regenerations()
	}
	var rss int64
	for _, c := range clusters {
		m, err := c.MemoryBytes()
		if err != nil {
			t.Fatalf("cluster %d: memory: %v", c.ID, err)
		}
		rss += m
	}

	// A token of its own, so that the stricter limits meet no other test.
	token := testEnv.Emulator.ScopedToken(fakelke.ScopeLKEReadWrite)
	testEnv.Emulator.SetTokenRateLimits(token, fakelke.RateLimits{PerOperation: 400})
	dir := t.TempDir()
	writeConfig(t, dir, withKubecreds(fmt.Sprintf(`
provider "kubecreds" {
  linode_token = %q
}

resource "kubecreds_lke_secret_rotation" "fleet" {
  for_each   = toset([%s])
  cluster_id = tonumber(each.key)
}
`, token, `"`+strings.Join(ids, `", "`)+`"`)))
	logFile := filepath.Join(dir, "trace.log")
	before := len(testEnv.Emulator.Requests())
	start := time.Now()
	out, err := terraformCmd(t, dir, map[string]string{"TF_LOG": "INFO", "TF_LOG_PATH": logFile},
		"apply", "-auto-approve", "-input=false", "-no-color", "-parallelism="+strconv.Itoa(fleetSize))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("terraform apply -parallelism=%d: %v\n%s", fleetSize, err, out)
	}

	byStatus := map[int]int{}
	var failed []string
	for _, r := range testEnv.Emulator.Requests()[before:] {
		byStatus[r.Status]++
		switch {
		case r.Status >= 200 && r.Status < 300, r.Status == http.StatusTooManyRequests:
		case r.Status == http.StatusServiceUnavailable && r.Endpoint == fakelke.EndpointGetKubeconfig:
			// "not yet available" while LKE makes the new kubeconfig
		default:
			failed = append(failed, fmt.Sprintf("%s %s: %d", r.Method, r.Path, r.Status))
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d Linode API requests failed: %v", len(failed), failed)
	}
	for _, c := range clusters {
		if n := c.Regenerations() - regens[c.ID]; n != 1 {
			t.Errorf("cluster %d: LKE regenerated %d times; want 1", c.ID, n)
		}
		if err := kubeconfigWorks(t, servedKubeconfig(t, c)); err != nil {
			t.Errorf("cluster %d: the served kubeconfig does not work: %v", c.ID, err)
		}
		if err := oldTokenRejected(t, old[c.ID]); err != nil {
			t.Errorf("cluster %d: %v", c.ID, err)
		}
	}
	trace, _ := os.ReadFile(logFile)
	t.Logf("fleet: %d clusters rotated in one apply (-parallelism=%d) in %s; %d Linode API requests, %d answered 429 "+
		"(%d 'rate limited' log lines); control planes' RSS %.0f MiB per cluster; answers by status %v",
		fleetSize, fleetSize, took.Round(100*time.Millisecond), len(testEnv.Emulator.Requests())-before,
		byStatus[http.StatusTooManyRequests], strings.Count(string(trace), "rate limited by the linode API"),
		float64(rss)/float64(fleetSize)/(1<<20), byStatus)
}
