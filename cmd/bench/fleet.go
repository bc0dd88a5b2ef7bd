package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// fleetCase names the fleet case in the results.
const fleetCase = "fleet: clusters rotated in one apply"

// fleetMax is the largest fleet rotated in one apply: 20 control planes
// (about 300 MiB each) fit this 2-core, 24 GiB machine with room to spare.
const fleetMax = 20

const fleetConfig = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}
variable "cluster_ids" { type = list(number) }
variable "run" { type = string }
resource "kubecreds_lke_secret_rotation" "fleet" {
  for_each   = toset([for id in var.cluster_ids : tostring(id)])
  cluster_id = tonumber(each.key)
  keepers    = { run = var.run }
}
`

// Case: a fleet of clusters rotated in one apply (-parallelism = fleet
// size), under the Linode API's real rate limits. The baseline is one
// cluster; the ratio shows how much longer a fleet takes than one.
func (b *bench) fleet(ctx context.Context) error {
	if err := b.growFleet(ctx, fleetMax); err != nil {
		return err
	}
	dir, err := b.configDir("fleet", fleetConfig)
	if err != nil {
		return err
	}
	for _, n := range []int{1, 10, fleetMax} {
		clusters := b.env.Clusters()[:n]
		ids := make([]int, 0, n)
		var rss int64
		for _, c := range clusters {
			ids = append(ids, c.ID)
			m, err := c.MemoryBytes()
			if err != nil {
				return err
			}
			rss += m
		}
		idsJSON, _ := json.Marshal(ids)
		r := result{Case: fleetCase, Variant: fmt.Sprintf("%d clusters, -parallelism=%d", n, n),
			Baseline: n == 1, Unit: "s"}
		limited := 0
		steps := map[string][]float64{}
		for i := 0; i < b.runs; i++ {
			b.env.Emulator.ResetRequests()
			vars := map[string]string{"cluster_ids": string(idsJSON), "run": fmt.Sprintf("%d-%d", time.Now().UnixNano(), i)}
			// The provider logs each step with its duration: the profile of
			// where a fleet's extra time goes.
			logPath := filepath.Join(dir, fmt.Sprintf("fleet-%d-%d.log", n, i))
			s, err := timed(func() error {
				return b.terraformWith(ctx, dir, []string{"TF_LOG_PROVIDER=INFO", "TF_LOG_PATH=" + logPath}, vars,
					"apply", "-auto-approve", "-no-color", fmt.Sprintf("-parallelism=%d", n))
			})
			if err != nil {
				return err
			}
			raw, err := os.ReadFile(logPath)
			if err != nil {
				return err
			}
			_ = os.Remove(logPath)
			for name, ms := range stepDurations(raw) {
				steps[name] = append(steps[name], ms...)
			}
			r.Samples = append(r.Samples, s)
			for _, req := range b.env.Emulator.Requests() {
				if req.Status == http.StatusTooManyRequests {
					limited++
				}
			}
		}
		r.Steps = medianSteps(steps)
		r.Note = fmt.Sprintf("%d answers 429 over %d runs; control planes %.0f MiB RSS per cluster", limited, b.runs, float64(rss)/float64(n)/(1<<20))
		b.add(r)
	}
	return nil
}

// growFleet starts clusters (a few at a time) until there are n.
func (b *bench) growFleet(ctx context.Context, n int) error {
	missing := n - len(b.env.Clusters())
	if missing <= 0 {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, missing)
	sem := make(chan struct{}, 4)
	for i := range missing {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, errs[i] = b.env.AddCluster(ctx, fakelke.ClusterSpec{})
		}()
	}
	wg.Wait()
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("cannot start the fleet: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// stepTime is one rotation step's median duration.
type stepTime struct {
	Step string  `json:"step"`
	MS   float64 `json:"ms"`
}

// stepDurations reads the steps' durations (ms) from a provider log
// (stepLine).
func stepDurations(log []byte) map[string][]float64 {
	out := map[string][]float64{}
	for _, m := range stepLine.FindAllSubmatch(log, -1) {
		ms, err := strconv.ParseFloat(string(m[2]), 64)
		if err == nil {
			out[string(m[1])] = append(out[string(m[1])], ms)
		}
	}
	return out
}

// medianSteps is each step's median, slowest first.
func medianSteps(steps map[string][]float64) []stepTime {
	var out []stepTime
	for name, ms := range steps {
		out = append(out, stepTime{Step: name, MS: result{Samples: ms}.median()})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].MS > out[j].MS || out[i].MS == out[j].MS && out[i].Step < out[j].Step
	})
	return out
}

// fleetFindings states the fleet target (≤ 1.3× one rotation at 20
// clusters) and, from the steps' durations, where the fleet's extra time
// goes.
func (b *bench) fleetFindings(s *strings.Builder, find func(c, prefix string) *result, verdict func(bool) string) {
	one, many := find(fleetCase, "1 clusters"), find(fleetCase, fmt.Sprintf("%d clusters", fleetMax))
	if one == nil || many == nil || one.median() == 0 {
		return
	}
	ratio := many.median() / one.median()
	fmt.Fprintf(s, "- %d clusters rotated in one apply took %s s at the median, %.2f× one cluster (%s s; target ≤ 1.3×: %s).",
		fleetMax, trimFloat(many.median()), ratio, trimFloat(one.median()), verdict(ratio <= 1.3))
	if len(one.Steps) == 0 || len(many.Steps) == 0 {
		s.WriteString("\n")
		return
	}
	before := map[string]float64{}
	sumOne, sumMany := 0.0, 0.0
	for _, st := range one.Steps {
		before[st.Step] = st.MS
		sumOne += st.MS
	}
	for _, st := range many.Steps {
		sumMany += st.MS
	}
	grown := slices.Clone(many.Steps)
	sort.Slice(grown, func(i, j int) bool { return grown[i].MS-before[grown[i].Step] > grown[j].MS-before[grown[j].Step] })
	fmt.Fprintf(s, " Where the time goes (the provider's logged step durations, median per cluster, 1 cluster → %d): the steps sum to %s s → %s s;",
		fleetMax, trimFloat(sumOne/1000), trimFloat(sumMany/1000))
	var parts []string
	for _, st := range grown[:min(6, len(grown))] {
		parts = append(parts, fmt.Sprintf("%s %s → %s ms", st.Step, trimFloat(before[st.Step]), trimFloat(st.MS)))
	}
	fmt.Fprintf(s, " most grown: %s. The rest (%s s → %s s) is terraform's start-up, plan and state, and the spread between the "+
		"fleet's slowest cluster and its median one.\n", strings.Join(parts, "; "),
		trimFloat(one.median()-sumOne/1000), trimFloat(many.median()-sumMany/1000))
}
