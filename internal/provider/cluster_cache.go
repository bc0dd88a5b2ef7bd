package provider

import (
	"context"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// clusterLookups remembers, for a short while, whether each LKE cluster
// exists. Terraform refreshes every rotation resource in a plan, often many
// on one cluster and ten at a time; one Linode API call per cluster and run
// is enough. Concurrent lookups of the same cluster share one request
// (singleflight); a failed lookup is not remembered.
type clusterLookups struct {
	ttl time.Duration

	group singleflight.Group
	mu    sync.Mutex
	found map[int]time.Time // when each cluster was last seen to exist
}

// get returns nil if the cluster was seen within ttl of now; otherwise it
// calls fetch (once, whoever asks meanwhile) and remembers a success.
func (c *clusterLookups) get(ctx context.Context, id int, now time.Time, fetch func(context.Context) error) error {
	c.mu.Lock()
	at, ok := c.found[id]
	c.mu.Unlock()
	if ok && now.Sub(at) <= c.ttl {
		return nil
	}
	ch := c.group.DoChan(strconv.Itoa(id), func() (any, error) {
		if err := fetch(ctx); err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.found == nil {
			c.found = map[int]time.Time{}
		}
		c.found[id] = now
		return nil, nil
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}
