package lke

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/linode/linodego"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// recycleNodes recycles every node through the Linode API and waits until
// the pools report ready and Kubernetes has Ready nodes in place of the old ones.
func (r *run) recycleNodes(ctx context.Context) (map[string]any, error) {
	var before *corev1.NodeList
	err := r.new.Retry.Do(ctx, func() (err error) {
		before, err = r.new.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes before recycling: %w", err)
	}
	var oldNames []string
	for _, n := range before.Items {
		oldNames = append(oldNames, n.Name)
	}
	if _, err := r.actOnce(ctx, StepRecycleNodes, func(ctx context.Context) error {
		return r.Poll.RecycleLKEClusterNodes(ctx, r.opts.ClusterID)
	}, r.recycleTookEffect(oldNames)); err != nil {
		return nil, err
	}
	r.done = append(r.done, "node recycle requested")
	start := r.Clock.Now()
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 1.5, Jitter: 0.1, Steps: math.MaxInt32, Cap: r.opts.NodePollMax}
	var replaced, failures int
	err = backoff.DelayFunc().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		pools, err := r.Linode.ListLKENodePools(ctx, r.opts.ClusterID, nil)
		if err != nil {
			return false, err
		}
		want := 0
		for _, p := range pools {
			for _, n := range p.Linodes {
				if n.Status != linodego.LKELinodeReady {
					return false, nil
				}
				want++
			}
		}
		nodes, err := r.new.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			// The control plane may be briefly busy while nodes churn.
			if failures++; IsTransient(err) && failures <= r.opts.Retry.Retries() {
				return false, nil
			}
			return false, fmt.Errorf("list nodes: %w", err)
		}
		failures = 0
		ready := 0
		for _, n := range nodes.Items {
			if slices.Contains(oldNames, n.Name) {
				return false, nil
			}
			if nodeReady(&n) {
				ready++
			}
		}
		replaced = ready
		return ready >= want && ready > 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for recycled nodes to be Ready: %w", err)
	}
	r.result.RecycledNodes = replaced
	r.done = append(r.done, "nodes recycled")
	return map[string]any{"old_nodes": len(oldNames), "new_ready_nodes": replaced, "waited_ms": r.Clock.Since(start).Milliseconds()}, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
