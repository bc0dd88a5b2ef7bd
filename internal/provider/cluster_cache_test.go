package provider

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestClusterLookupsShareOneRequestPerCluster(t *testing.T) {
	c := lookups[struct{}]{ttl: 30 * time.Second}
	now := time.Now()
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(context.Context) (struct{}, error) { calls.Add(1); <-release; return struct{}{}, nil }
	var wg, started sync.WaitGroup
	for range 10 {
		wg.Add(1)
		started.Add(1)
		go func() { defer wg.Done(); started.Done(); _, _ = c.get(context.Background(), 7, now, fetch) }()
	}
	// Every lookup is under way while the first request is held: lookups
	// that do not share would each call fetch now. Give them ample time to.
	started.Wait()
	deadline := time.Now().Add(500 * time.Millisecond)
	for calls.Load() <= 1 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("10 concurrent lookups of one cluster made %d requests, want 1", calls.Load())
	}
	if _, err := c.get(context.Background(), 7, now.Add(10*time.Second), fetch); err != nil || calls.Load() != 1 {
		t.Fatalf("a fresh answer was not reused (calls %d)", calls.Load())
	}
	if _, _ = c.get(context.Background(), 7, now.Add(31*time.Second), fetch); calls.Load() != 2 {
		t.Fatalf("a stale answer was reused (calls %d)", calls.Load())
	}
	if _, _ = c.get(context.Background(), 8, now, fetch); calls.Load() != 3 {
		t.Fatalf("another cluster shared the answer (calls %d)", calls.Load())
	}
}

func TestClusterLookupsDoNotKeepFailures(t *testing.T) {
	c := lookups[struct{}]{ttl: time.Minute}
	now := time.Now()
	boom := errors.New("503")
	calls := 0
	fail := func(context.Context) (struct{}, error) { calls++; return struct{}{}, boom }
	if _, err := c.get(context.Background(), 1, now, fail); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := c.get(context.Background(), 1, now, func(context.Context) (struct{}, error) { calls++; return struct{}{}, nil }); err != nil || calls != 2 {
		t.Fatalf("a failed lookup was cached: err %v, calls %d", err, calls)
	}
}
