package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

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
		r := result{Case: "fleet: clusters rotated in one apply", Variant: fmt.Sprintf("%d clusters, -parallelism=%d", n, n),
			Baseline: n == 1, Unit: "s"}
		limited := 0
		for i := 0; i < b.runs; i++ {
			b.env.Emulator.ResetRequests()
			vars := map[string]string{"cluster_ids": string(idsJSON), "run": fmt.Sprintf("%d-%d", time.Now().UnixNano(), i)}
			s, err := timed(func() error {
				return b.terraform(ctx, dir, vars, "apply", "-auto-approve", "-no-color", fmt.Sprintf("-parallelism=%d", n))
			})
			if err != nil {
				return err
			}
			r.Samples = append(r.Samples, s)
			for _, req := range b.env.Emulator.Requests() {
				if req.Status == http.StatusTooManyRequests {
					limited++
				}
			}
		}
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
