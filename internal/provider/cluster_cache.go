package provider

import (
	"context"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// lookups remembers, for a short while, what the Linode API said about each
// LKE cluster. Terraform refreshes every rotation resource in a plan, often
// many on one cluster and ten at a time; one Linode API call per cluster and
// run is enough. Concurrent lookups of the same cluster share one request
// (singleflight); a failed lookup is not remembered.
type lookups[T any] struct {
	ttl time.Duration

	group singleflight.Group
	mu    sync.Mutex
	found map[int]lookup[T]
}

type lookup[T any] struct {
	value T
	at    time.Time
}

// get returns the value seen within ttl of now; otherwise it calls fetch
// (once, whoever asks meanwhile) and remembers a success.
func (c *lookups[T]) get(ctx context.Context, id int, now time.Time, fetch func(context.Context) (T, error)) (T, error) {
	c.mu.Lock()
	l, ok := c.found[id]
	c.mu.Unlock()
	if ok && now.Sub(l.at) <= c.ttl {
		return l.value, nil
	}
	ch := c.group.DoChan(strconv.Itoa(id), func() (any, error) {
		v, err := fetch(ctx)
		if err != nil {
			return v, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.found == nil {
			c.found = map[int]lookup[T]{}
		}
		c.found[id] = lookup[T]{value: v, at: now}
		return v, nil
	})
	select {
	case r := <-ch:
		v, _ := r.Val.(T)
		return v, r.Err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
