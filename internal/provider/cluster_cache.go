package provider

import (
	"context"
	"sync"
	"time"
)

// clusterLookups remembers, for a short while, whether each LKE cluster
// exists. Terraform refreshes every rotation resource in a plan, often many
// on one cluster and ten at a time; one Linode API call per cluster and run
// is enough. Concurrent lookups of the same cluster share one request.
type clusterLookups struct {
	mu      sync.Mutex
	entries map[int]*clusterLookup
	ttl     time.Duration
}

type clusterLookup struct {
	done chan struct{}
	at   time.Time
	err  error
}

// get returns the cached answer for id, or calls fetch (once, whoever asks).
func (c *clusterLookups) get(ctx context.Context, id int, now time.Time, fetch func(context.Context) error) error {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[int]*clusterLookup{}
	}
	e := c.entries[id]
	if e != nil {
		select {
		case <-e.done:
			if now.Sub(e.at) > c.ttl || e.err != nil {
				e = nil // stale, or failed: ask again
			}
		default: // in flight: wait for it below
		}
	}
	if e == nil {
		e = &clusterLookup{done: make(chan struct{}), at: now}
		c.entries[id] = e
		c.mu.Unlock()
		e.err = fetch(ctx)
		close(e.done)
		return e.err
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
