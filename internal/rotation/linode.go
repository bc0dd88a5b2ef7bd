package rotation

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/linode/linodego"
	"k8s.io/apimachinery/pkg/util/wait"
)

// LinodeAPI is the part of the Linode API the runbook uses; *linodego.Client
// implements it.
type LinodeAPI interface {
	GetLKECluster(ctx context.Context, clusterID int) (*linodego.LKECluster, error)
	GetLKEClusterKubeconfig(ctx context.Context, clusterID int) (*linodego.LKEClusterKubeconfig, error)
	RegenerateLKECluster(ctx context.Context, clusterID int, opts linodego.LKEClusterRegenerateOptions) (*linodego.LKECluster, error)
	ListLKENodePools(ctx context.Context, clusterID int, opts *linodego.ListOptions) ([]linodego.LKENodePool, error)
	RecycleLKEClusterNodes(ctx context.Context, clusterID int) error
}

var _ LinodeAPI = (*linodego.Client)(nil)

// KubeconfigPoll says how FetchKubeconfig waits while the Linode API answers
// 503 "not yet available". The defaults keep the lag between the kubeconfig
// being served and us having it under half a second, at no more than two
// requests a second.
type KubeconfigPoll struct {
	Initial time.Duration // first wait (default 100ms)
	Max     time.Duration // longest wait between polls while polling fast (default 500ms)
	// FastFor is how long polling stays fast (default 10s); after it, one
	// poll every Slow (default 1s), so that a long wait stays well within
	// the Linode API's rate limits (1 600 requests a minute per token).
	FastFor time.Duration
	Slow    time.Duration
	// Retry bounds how many polls in a row may fail with other transient
	// errors (429, 5xx, no answer) before giving up.
	Retry Retry
}

func (p KubeconfigPoll) backoff() wait.Backoff {
	if p.Initial <= 0 {
		p.Initial = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 500 * time.Millisecond
	}
	// Once the cap is reached a Backoff's steps run out; DelayFunc().Until
	// keeps polling at the cap until the context ends, which is what we want.
	return wait.Backoff{Duration: p.Initial, Factor: 1.5, Jitter: 0.1, Steps: 1 << 30, Cap: p.Max}
}

// delays are the waits between polls: the fast backoff for FastFor from
// now, then Slow.
func (p KubeconfigPoll) delays() wait.DelayFunc {
	fast, start := p.backoff().DelayFunc(), time.Now()
	return func() time.Duration {
		if time.Since(start) < p.fastFor() {
			return fast()
		}
		return p.slow()
	}
}

func (p KubeconfigPoll) fastFor() time.Duration {
	if p.FastFor <= 0 {
		return 10 * time.Second
	}
	return p.FastFor
}

func (p KubeconfigPoll) slow() time.Duration {
	if p.Slow <= 0 {
		return time.Second
	}
	return p.Slow
}

// ErrKubeconfigNotReady is returned when the context ends while the Linode
// API still answers 503 for the kubeconfig.
var ErrKubeconfigNotReady = errors.New("kubeconfig not yet available")

// FetchKubeconfig returns the decoded kubeconfig the Linode API serves for the
// cluster, polling through 503 "not yet available" until ctx ends. api should
// not retry 503s itself, or it will hide how soon the kubeconfig appears.
func FetchKubeconfig(ctx context.Context, api LinodeAPI, clusterID int, poll KubeconfigPoll) ([]byte, error) {
	var (
		kubeconfig []byte
		polls      int
		failures   int // transient failures in a row, other than "not yet available"
		lastErr    error
	)
	maxFailures := poll.Retry.withDefaults().Max
	err := poll.delays().Until(ctx, true, true, func(ctx context.Context) (bool, error) {
		polls++
		kc, err := api.GetLKEClusterKubeconfig(ctx, clusterID)
		if isNotYetAvailable(err) {
			lastErr, failures = err, 0
			return false, nil
		}
		if IsMaintenance(err) {
			// Secrets may already be gone: wait the maintenance out, as
			// long as the context allows, at the pace the API asks.
			lastErr, failures = err, 0
			return false, sleep(ctx, max(RetryAfter(err), time.Second))
		}
		if IsTransient(err) && ctx.Err() == nil && failures < maxFailures {
			lastErr = err
			failures++
			if after := RetryAfter(err); after > 0 {
				return false, sleep(ctx, after)
			}
			return false, nil
		}
		if err != nil {
			return false, err
		}
		failures = 0
		if kubeconfig, err = base64.StdEncoding.DecodeString(kc.KubeConfig); err != nil {
			return false, fmt.Errorf("kubeconfig served for cluster %d is not base64", clusterID)
		}
		return true, nil
	})
	if err != nil {
		if lastErr != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("%w after %d polls: %w", ErrKubeconfigNotReady, polls, lastErr)
		}
		return nil, err
	}
	return kubeconfig, nil
}

// ServedKubeconfigSHA256 asks once, without polling, for the kubeconfig the
// Linode API serves for the cluster, and returns its SHA-256 (hex), as
// Result.KubeconfigSHA256 has it. A regeneration under way answers 503, an
// error like any other.
func ServedKubeconfigSHA256(ctx context.Context, api LinodeAPI, clusterID int) (string, error) {
	kc, err := api.GetLKEClusterKubeconfig(ctx, clusterID)
	if err != nil {
		return "", err
	}
	raw, err := base64.StdEncoding.DecodeString(kc.KubeConfig)
	if err != nil {
		return "", fmt.Errorf("kubeconfig served for cluster %d is not base64", clusterID)
	}
	return kubeconfigSHA256(raw), nil
}

func kubeconfigSHA256(kubeconfig []byte) string {
	sum := sha256.Sum256(kubeconfig)
	return hex.EncodeToString(sum[:])
}

// isNotYetAvailable is LKE's 503 while a kubeconfig is being made.
func isNotYetAvailable(err error) bool {
	lerr, ok := LinodeError(err)
	return ok && lerr.Code == http.StatusServiceUnavailable && strings.Contains(lerr.Message, "not yet available")
}
