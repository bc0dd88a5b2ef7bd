package lke

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
	"k8s.io/utils/clock"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
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

// KubeconfigPollFor is how a kubeconfig is polled under the retry policy p:
// with max_retries = 0 (retry.NoRetry), the first failure other than "not
// yet available" ends a fetch; otherwise the defaults apply. (The
// rotation's wait for the new kubeconfig rides failures out whatever this
// says.)
func KubeconfigPollFor(p retry.Policy) KubeconfigPoll {
	if p.Max < 0 {
		return KubeconfigPoll{FailFor: time.Nanosecond}
	}
	return KubeconfigPoll{}
}

// KubeconfigPoll says how FetchKubeconfig waits while the Linode API answers
// 503 "not yet available", and how long it rides out other failures. The
// defaults keep the lag between the kubeconfig being served and us having it
// under half a second, at no more than two requests a second.
type KubeconfigPoll struct {
	Initial time.Duration // first wait (default 100ms)
	Max     time.Duration // longest wait between polls while polling fast (default 500ms)
	// FastFor is how long polling stays fast (default 10s); after it, one
	// poll every Slow (default 1s), so that a long wait stays well within
	// the Linode API's rate limits (1 600 requests a minute per token).
	FastFor time.Duration
	Slow    time.Duration
	// FailFor is how long other failures may go on in a row before the
	// fetch gives up: 5xx answers, a gateway's or CDN's pages, dropped
	// connections, 429s, and kubeconfigs that cannot be used (default 1m).
	// It is counted in time, not in requests, so that a gateway answering
	// fast cannot use it up in a second. Negative: as long as ctx lasts,
	// for the wait after the secrets are gone, when giving up is worst.
	FailFor time.Duration
	// FailWait is the first wait after a failure (default 1s); it doubles
	// with each failure in a row up to FailWaitMax (default 15s), or is
	// what the answer's Retry-After asks when that is longer.
	FailWait, FailWaitMax time.Duration
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

// failBackoff is the wait between failed polls.
func (p KubeconfigPoll) failBackoff() *wait.Backoff {
	if p.FailWait <= 0 {
		p.FailWait = time.Second
	}
	if p.FailWaitMax <= 0 {
		p.FailWaitMax = 15 * time.Second
	}
	return &wait.Backoff{Duration: p.FailWait, Factor: 2, Jitter: 0.1, Steps: 1 << 30, Cap: p.FailWaitMax}
}

// failFor is FailFor with its default; negative means no limit.
func (p KubeconfigPoll) failFor() time.Duration {
	if p.FailFor == 0 {
		return time.Minute
	}
	return p.FailFor
}

// ErrKubeconfigNotReady is returned when the context ends while the Linode
// API still answers 503 for the kubeconfig (or keeps failing).
var ErrKubeconfigNotReady = errors.New("kubeconfig not yet available")

// ErrUnusableKubeconfig is a kubeconfig answer that cannot be used: empty,
// not base64, not a kubeconfig, or without a current context. It is never
// taken as a cluster's kubeconfig, old or new.
var ErrUnusableKubeconfig = errors.New("the Linode API answered with a kubeconfig that cannot be used")

// FetchKubeconfig returns the decoded kubeconfig the Linode API serves for the
// cluster, polling through 503 "not yet available" until ctx ends, and
// through other failures for as long as poll.FailFor allows. api should not
// retry 503s itself, or it will hide how soon the kubeconfig appears.
func FetchKubeconfig(ctx context.Context, api LinodeAPI, clusterID int, poll KubeconfigPoll) ([]byte, error) {
	var (
		polls        int
		failures     int       // failures in a row, other than "not yet available"
		failingSince time.Time // when they began
		lastErr      error
	)
	pending, failing := poll.delays(), poll.failBackoff()
	for {
		polls++
		kubeconfig, err := fetchKubeconfigOnce(ctx, api, clusterID)
		var wait time.Duration
		switch {
		case err == nil:
			return kubeconfig, nil
		case isNotYetAvailable(err):
			lastErr, failures, failingSince, failing = err, 0, time.Time{}, poll.failBackoff()
			wait = pending()
		case isRateLimited(err):
			// Pacing, not an outage: waited out as asked, not counted.
			lastErr = err
			wait = max(RetryAfter(err), failing.Step())
		case IsMaintenance(err):
			// Secrets may already be gone: wait the maintenance out, as
			// long as the context allows, at the pace the API asks.
			lastErr, failures, failingSince = err, 0, time.Time{}
			wait = max(RetryAfter(err), time.Second)
		case ctx.Err() == nil && (IsTransient(err) || errors.Is(err, ErrUnusableKubeconfig)):
			if failures == 0 {
				failingSince = time.Now()
			}
			failures++
			lastErr = err
			if limit := poll.failFor(); limit >= 0 && time.Since(failingSince) >= limit {
				return nil, fmt.Errorf("%d polls failed in a row over %s, the last with: %w", failures, time.Since(failingSince).Round(time.Second), err)
			}
			wait = max(failing.Step(), RetryAfter(err))
		default:
			return nil, err
		}
		if retry.Sleep(ctx, clock.RealClock{}, wait) != nil {
			if lastErr != nil {
				return nil, fmt.Errorf("%w after %d polls: %w", ErrKubeconfigNotReady, polls, lastErr)
			}
			return nil, ctx.Err()
		}
	}
}

// fetchKubeconfigOnce asks once for the kubeconfig and decodes it.
func fetchKubeconfigOnce(ctx context.Context, api LinodeAPI, clusterID int) ([]byte, error) {
	kc, err := api.GetLKEClusterKubeconfig(ctx, clusterID)
	if err != nil {
		return nil, err
	}
	return decodeKubeconfig(kc, clusterID)
}

// decodeKubeconfig decodes the API's base64 kubeconfig and checks that it is
// one that can be used: an answer of {} (which linodego takes for an empty
// kubeconfig) or a gateway's page must never be taken for a new kubeconfig,
// nor recorded as a rotation made elsewhere.
func decodeKubeconfig(kc *linodego.LKEClusterKubeconfig, clusterID int) ([]byte, error) {
	if kc == nil || kc.KubeConfig == "" {
		return nil, fmt.Errorf("%w: cluster %d's answer holds no kubeconfig", ErrUnusableKubeconfig, clusterID)
	}
	raw, err := base64.StdEncoding.DecodeString(kc.KubeConfig)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster %d's kubeconfig is not base64", ErrUnusableKubeconfig, clusterID)
	}
	if _, err := kubeconfig.ParseServed(raw); errors.Is(err, kubeconfig.ErrRefused) {
		// Not a kubeconfig that is not ready yet: asking again would get
		// the same, so it is not retried.
		return nil, fmt.Errorf("cluster %d: the Linode API served a kubeconfig that was refused: %w", clusterID, err)
	} else if err != nil {
		return nil, fmt.Errorf("%w: cluster %d: %w", ErrUnusableKubeconfig, clusterID, err)
	}
	return raw, nil
}

// ServedKubeconfigSHA256 asks once, without polling, for the kubeconfig the
// Linode API serves for the cluster, and returns its SHA-256 (hex), as
// Result.KubeconfigSHA256 has it. A regeneration under way answers 503, an
// error like any other; so is a kubeconfig that cannot be used.
func ServedKubeconfigSHA256(ctx context.Context, api LinodeAPI, clusterID int) (string, error) {
	raw, err := fetchKubeconfigOnce(ctx, api, clusterID)
	if err != nil {
		return "", err
	}
	return kubeconfigSHA256(raw), nil
}

func kubeconfigSHA256(kubeconfig []byte) string {
	sum := sha256.Sum256(kubeconfig)
	return hex.EncodeToString(sum[:])
}

func isRateLimited(err error) bool {
	lerr, ok := LinodeError(err)
	return ok && lerr.Code == http.StatusTooManyRequests
}

// isNotYetAvailable is LKE's 503 while a kubeconfig is being made.
func isNotYetAvailable(err error) bool {
	lerr, ok := LinodeError(err)
	return ok && lerr.Code == http.StatusServiceUnavailable && strings.Contains(lerr.Message, "not yet available")
}
