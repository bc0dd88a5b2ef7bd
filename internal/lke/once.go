package lke

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/linode/linodego"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kube"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// actOnce sends a request that must not take effect twice (regenerate,
// recycle) with retry.ActOnce: a 429 is waited out and the request sent
// again, any other 4xx is returned; after a failure that may have come
// after the API acted (no answer, or a 5xx), tookEffect is asked for up to
// settleAfter(err), and the request is sent again only if the API shows no
// sign of having acted. When that cannot be told, it is not sent again.
func (r *run) actOnce(ctx context.Context, what string, send func(context.Context) error, tookEffect func(context.Context) (bool, error)) (map[string]any, error) {
	res, err := retry.ActOnce(ctx, retry.Act{
		Send:       send,
		TookEffect: tookEffect,
		Watch:      r.settleAfter,
		Policy:     r.opts.Retry,
		// The waits pass in real time even where a test moves r.Clock's
		// time by hand.
	})
	fields := map[string]any{"sent": res.Sent}
	if err == nil && res.Outcome == retry.AnswerLost {
		fields["answer_lost"] = true
		r.note(ctx, what+": the answer was lost, but the API had acted", map[string]any{"cluster_id": r.opts.ClusterID, "error": res.Lost.Error()})
	}
	return fields, err
}

// settleAfter is how long to watch for the effect of a request that failed
// with err. A 429 says the API did nothing: no watch. No answer at all, or
// a gateway's page (the gateway gave up waiting for the API, which may
// still act), is the classic lost answer: the whole ActSettle. The Linode
// API's own 5xx answer (its error list) says it handled the request and
// failed; a short watch covers the rare case where it acted anyway.
func (r *run) settleAfter(err error) time.Duration {
	if lerr, ok := LinodeError(err); ok && lerr.Code == http.StatusTooManyRequests {
		return 0
	}
	if IsLinodeAnswer(err) {
		return min(r.opts.ActSettle, answeredSettle)
	}
	return r.opts.ActSettle
}

// answeredSettle bounds the watch after the Linode API's own 5xx.
const answeredSettle = 10 * time.Second

// lkeTokenUIDs are the UIDs of the token secrets of LKE's own service
// accounts in kube-system: a regeneration replaces them, so a new UID is a
// sign that it happened.
func lkeTokenUIDs(ctx context.Context, k *kube.Clients) (map[string]bool, error) {
	secrets, err := kube.ListServiceAccountTokens(ctx, k, []string{"kube-system"})
	if err != nil {
		return nil, err
	}
	uids := map[string]bool{}
	for _, s := range secrets {
		if s.ServiceAccount == adminServiceAccount || isControlPlaneAccount(s.ServiceAccount) {
			uids[s.UID] = true
		}
	}
	return uids, nil
}

// regenerationTookEffect tells whether LKE acted on a regenerate whose
// answer was lost: the kubeconfig is "not yet available" or has changed, or
// LKE's own token secrets have been replaced.
func (r *run) regenerationTookEffect(ctx context.Context) (bool, error) {
	kc, err := r.Poll.GetLKEClusterKubeconfig(ctx, r.opts.ClusterID)
	switch {
	case isNotYetAvailable(err):
		return true, nil
	case err == nil && r.opts.RegenerateKubeconfig:
		// Only a kubeconfig that can be used counts: {} or a gateway's
		// page is no sign of anything.
		if raw, derr := decodeKubeconfig(kc, r.opts.ClusterID); derr == nil && kube.TokenOf(raw) != kube.TokenOf(r.oldKubeconfig) {
			return true, nil
		}
	}
	if r.lkeTokensBefore == nil {
		return false, err
	}
	now, lerr := lkeTokenUIDs(ctx, r.old)
	if lerr != nil {
		return false, lerr
	}
	for uid := range now {
		if !r.lkeTokensBefore[uid] {
			return true, nil
		}
	}
	return false, nil
}

// recycleTookEffect tells whether LKE acted on a recycle whose answer was
// lost: a node is no longer ready in the pools, or Kubernetes' nodes are
// not the ones from before.
func (r *run) recycleTookEffect(oldNames []string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		pools, err := r.Poll.ListLKENodePools(ctx, r.opts.ClusterID, nil)
		if err != nil {
			return false, err
		}
		for _, p := range pools {
			for _, n := range p.Linodes {
				if n.Status != linodego.LKELinodeReady {
					return true, nil
				}
			}
		}
		var nodes *corev1.NodeList
		err = r.new.Retry.Do(ctx, func() (err error) {
			nodes, err = r.new.Core.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return err
		})
		if err != nil {
			return false, err
		}
		if len(nodes.Items) != len(oldNames) {
			return true, nil
		}
		for _, n := range nodes.Items {
			if !slices.Contains(oldNames, n.Name) {
				return true, nil
			}
		}
		return false, nil
	}
}
