package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

const (
	lockCase          = "rotation lock"
	variantLockSingle = "one rotation, nobody else (terraform apply)"
	variantLockPair   = "two applies of the same rotation at once, until both finished"
	variantLockOwn    = "taking the lock, uncontended (from the provider's log)"
)

// lockStepLine is the check-access step's line, with the lock's own time.
var lockStepLine = regexp.MustCompile(`rotation step: ` + regexp.QuoteMeta(lke.StepCheckAccess) + `: .*\block_ms=(\d+)`)

// Case: what the rotation lock costs. One rotation alone, with the time the
// lock took read from the provider's log; and two applies of the same
// rotation (two workspaces) at once: one rotates, the other waits and
// adopts, so both finish soon after one rotation would.
func (b *bench) rotationLock(ctx context.Context) error {
	c := b.env.Clusters()[0]
	c.SetStaleWindow(0)
	c.SetKubeconfigDelay(2 * time.Second)
	defer c.SetKubeconfigDelay(0)
	dirs := make([]string, 2)
	for i := range dirs {
		dir, err := b.configDir(fmt.Sprintf("lock-%d", i), fmt.Sprintf(rotationConfig, ""))
		if err != nil {
			return err
		}
		dirs[i] = dir
	}
	single := result{Case: lockCase, Variant: variantLockSingle, Baseline: true, Unit: "s",
		Note: "kubecreds_lke_secret_rotation with verify, LKE serving the new kubeconfig 2 s after the regeneration"}
	pair := result{Case: lockCase, Variant: variantLockPair, Unit: "s",
		Note: "the same rotation in two workspaces started together: one rotates, the other waits for the lock and adopts the rotation; exactly one regeneration each time"}
	own := result{Case: lockCase, Variant: variantLockOwn, Unit: "s",
		Note: "reading the Lease and creating or updating it, in the check-access step; releasing it at the end is one more request"}
	apply := func(dir, run string, log string) error {
		vars := map[string]string{"cluster_id": strconv.Itoa(c.ID), "run": run}
		return b.terraformWith(ctx, dir, []string{"TF_LOG_PROVIDER=INFO", "TF_LOG_PATH=" + log}, vars, "apply", "-auto-approve", "-no-color")
	}
	for i := range b.runs {
		log := filepath.Join(dirs[0], fmt.Sprintf("single-%d.log", i))
		s, err := timed(func() error { return apply(dirs[0], fmt.Sprintf("single-%d-%d", i, time.Now().UnixNano()), log) })
		if err != nil {
			return err
		}
		single.Samples = append(single.Samples, s)
		raw, err := os.ReadFile(log)
		if err != nil {
			return err
		}
		m := lockStepLine.FindSubmatch(raw)
		if m == nil {
			return fmt.Errorf("%s logs no lock_ms", log)
		}
		ms, _ := strconv.Atoi(string(m[1]))
		own.Samples = append(own.Samples, float64(ms)/1000)

		time.Sleep(time.Second)
		before := c.Regenerations()
		run := fmt.Sprintf("pair-%d-%d", i, time.Now().UnixNano())
		errs := make([]error, 2)
		start := time.Now()
		var wg sync.WaitGroup
		for j, dir := range dirs {
			wg.Go(func() { errs[j] = apply(dir, run, filepath.Join(dir, fmt.Sprintf("pair-%d.log", i))) })
		}
		wg.Wait()
		pair.Samples = append(pair.Samples, time.Since(start).Seconds())
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		if n := c.Regenerations() - before; n != 1 {
			return fmt.Errorf("two applies at once made %d regenerations; want 1", n)
		}
		time.Sleep(time.Second)
	}
	b.add(single)
	b.add(pair)
	b.add(own)
	return nil
}

// lockFindings states the lock's targets from this run's numbers.
func (b *bench) lockFindings(s *strings.Builder, find func(c, prefix string) *result, verdict func(bool) string) {
	single, pair, own := find(lockCase, variantLockSingle), find(lockCase, variantLockPair), find(lockCase, variantLockOwn)
	if single == nil || pair == nil || own == nil {
		return
	}
	fmt.Fprintf(s, "- The rotation lock took %s ms at the median to take, uncontended (max %s ms; target ≤ 100 ms: %s).\n",
		trimFloat(own.median()*1000), trimFloat(maxOf(own.Samples)*1000), verdict(own.median() <= 0.1))
	fmt.Fprintf(s, "- Two applies of the same rotation at once both finished in %s s at the median, %.2f× one rotation alone "+
		"(%s s; target ≤ 1.2×: %s), with one regeneration each time.\n",
		trimFloat(pair.median()), pair.median()/single.median(), trimFloat(single.median()), verdict(pair.median() <= 1.2*single.median()))
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
