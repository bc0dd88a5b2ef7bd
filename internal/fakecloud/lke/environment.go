// Package lke runs a local stand-in for Linode Kubernetes Engine: real
// kube-apiserver and kube-controller-manager processes (built from the Go
// module proxy, see tools/controlplane; started with fakecloud) sharing one
// etcd, and an emulator of the Linode API's LKE endpoints in front of them.
// It starts no SKE. Tests, benchmarks and the demo use it; it has nothing to
// do with Terraform. Importers alias it (fakelke): internal/lke is the
// provider's LKE client.
package lke

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// Options configure an Environment.
type Options struct {
	// Clusters is how many emulated clusters to start (default 1).
	Clusters int
	// KubeconfigDelay is how long GET /kubeconfig answers 503 after a
	// regeneration (LKE takes tens of seconds; tests use less).
	KubeconfigDelay time.Duration
	// RecycleDelay is how long a node recycle takes before the new nodes appear.
	RecycleDelay time.Duration
	// ReuseAdminSecret makes regenerating the kubeconfig rebuild it from the
	// existing lke-admin token secret (Cluster.SetReuseAdminSecret), for
	// every cluster.
	ReuseAdminSecret bool
	// ServiceTokenOutage is how long, after the service token of a standard
	// (not high-availability) cluster is regenerated, its API endpoint
	// answers 503 while LKE restarts the control-plane components (the API
	// reference warns of "brief control plane downtime"). Zero takes 2s;
	// negative: none.
	ServiceTokenOutage time.Duration
	// StaleWindow is how long, after a regeneration, GET /kubeconfig still
	// serves the kubeconfig from before it (caches behind the API), before
	// it answers 503 "not yet available" and then the new one. Off by
	// default: the recordings of the real API show the 503 at once.
	StaleWindow time.Duration
	// MaxTokenExpiration is the API servers' --service-account-max-token-expiration:
	// longer TokenRequests are shortened to it. Zero takes 24h (LKE does not
	// publish its value; 24h is what this emulator assumes); negative: no cap.
	MaxTokenExpiration time.Duration
	// NoCSRSigning runs every cluster without the controller that signs
	// CertificateSigningRequests (ClusterSpec.NoCSRSigning for one cluster).
	NoCSRSigning bool
	// ExtraSystemTokens adds this many more auto-generated token secrets to
	// kube-system beyond the four of the LKE guide's listing (the guide
	// notes that 1.26 clusters have more, without naming them).
	ExtraSystemTokens int
	// RateLimits are the Linode API's per-token limits; zero fields take
	// the real API's (1600 requests a minute, 200 for paginated collection
	// GETs); negative turns a limit off.
	RateLimits RateLimits
	// HighAvailability makes every cluster's control plane highly
	// available (Cluster.SetHighAvailability): no outage when its service
	// token is regenerated.
	HighAvailability bool
	// Maintenance puts the Linode API under maintenance for this long from
	// the start (Emulator.StartMaintenance).
	Maintenance time.Duration
	// Faults are queued at the start, per endpoint (Emulator.InjectFaults).
	Faults map[string][]Fault
	// Dir holds certificates, etcd data and logs; default a new temporary
	// directory, removed by Close.
	Dir string
	// Token is the Linode API token the emulator accepts; default random.
	Token string
	// BinaryPath is the control-plane binary; default fakecloud.FindBinary().
	BinaryPath string
	// FirstClusterID numbers the clusters (default 100001).
	FirstClusterID int
}

// Environment is a running local LKE.
type Environment struct {
	Dir      string
	Emulator *Emulator

	opts      Options
	base      *fakecloud.Base
	mu        sync.Mutex
	cluster   map[int]*Cluster
	closeOnce sync.Once
	nextID    int
}

// Start brings up etcd, the Linode API emulator and opts.Clusters clusters
// (in parallel), and returns when every API server is ready and bootstrapped.
// On error everything started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Environment, err error) {
	if opts.Clusters == 0 {
		opts.Clusters = 1
	}
	if opts.ServiceTokenOutage == 0 {
		opts.ServiceTokenOutage = 2 * time.Second
	}
	if opts.MaxTokenExpiration == 0 {
		opts.MaxTokenExpiration = DefaultMaxTokenExpiration
	}
	opts.RateLimits = opts.RateLimits.withDefaults()
	if opts.FirstClusterID == 0 {
		opts.FirstClusterID = 100001
	}
	env := &Environment{opts: opts, cluster: map[int]*Cluster{}, nextID: opts.FirstClusterID}
	defer func() {
		if err != nil {
			env.Close()
		}
	}()
	if env.base, err = fakecloud.StartBase(ctx, opts.Dir, opts.BinaryPath); err != nil {
		return nil, err
	}
	env.Dir = env.base.Dir
	ca, err := fakecloud.NewAuthority(env.Dir, "linode-api-ca")
	if err != nil {
		return nil, err
	}
	certPath, keyPath, err := ca.Issue(env.Dir, "linode-api", fakecloud.Leaf{CommonName: "linode-api-emulator", Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		return nil, err
	}
	token := opts.Token
	if token == "" {
		token = fakecloud.RandomHex(32)
	}
	if env.Emulator, err = newEmulator(env, token, certPath, keyPath, ca.CertPath); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make([]error, opts.Clusters)
	for i := range opts.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = env.AddCluster(ctx, ClusterSpec{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, c := range env.Clusters() {
		c.SetHighAvailability(opts.HighAvailability)
	}
	if opts.Maintenance > 0 {
		env.Emulator.StartMaintenance(opts.Maintenance)
	}
	for endpoint, faults := range opts.Faults {
		env.Emulator.InjectFaults(endpoint, faults...)
	}
	return env, nil
}

// AddCluster starts one more emulated cluster.
func (env *Environment) AddCluster(ctx context.Context, spec ClusterSpec) (*Cluster, error) {
	env.mu.Lock()
	id := env.nextID
	env.nextID++
	env.mu.Unlock()
	c, err := env.newCluster(ctx, id, spec)
	if err != nil {
		return nil, err
	}
	env.mu.Lock()
	env.cluster[id] = c
	env.mu.Unlock()
	return c, nil
}

// DeleteCluster removes a cluster as if deleted out of band: the API answers
// 404 for it from now on and its control plane stops.
func (env *Environment) DeleteCluster(id int) error {
	env.mu.Lock()
	c, ok := env.cluster[id]
	delete(env.cluster, id)
	env.mu.Unlock()
	if !ok {
		return fmt.Errorf("no cluster %d", id)
	}
	c.stop()
	return nil
}

// Cluster returns the cluster with id, or nil.
func (env *Environment) Cluster(id int) *Cluster {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.cluster[id]
}

// Clusters returns the clusters ordered by id.
func (env *Environment) Clusters() []*Cluster {
	env.mu.Lock()
	defer env.mu.Unlock()
	out := make([]*Cluster, 0, len(env.cluster))
	for _, c := range env.cluster {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LinodeEnv returns the environment variables that point linodego (and the
// provider) at the emulator.
func (env *Environment) LinodeEnv() map[string]string {
	return map[string]string{
		"LINODE_URL":   env.Emulator.URL,
		"LINODE_TOKEN": env.Emulator.Token,
		"LINODE_CA":    env.Emulator.CAPath,
	}
}

// LogTail returns the end of every process log, to print when a test fails.
func (env *Environment) LogTail() string { return fakecloud.LogTails(env.base, env.Clusters()) }

// CloseOnSignal closes the environment and exits when the process is
// interrupted (Ctrl-C during `go test`), so nothing is left behind.
func (env *Environment) CloseOnSignal() {
	fakecloud.CloseOnSignal("the local LKE", env.Close)
}

// Close stops every process the environment started and removes its
// temporary directory. It is safe to call more than once, and from a signal
// handler while a deferred Close runs: every call returns once it is done.
func (env *Environment) Close() {
	env.closeOnce.Do(env.close)
}

func (env *Environment) close() {
	fakecloud.Shutdown(env.base, func() {
		if env.Emulator != nil {
			env.Emulator.close()
			env.Emulator = nil
		}
	}, func() []*Cluster {
		env.mu.Lock()
		defer env.mu.Unlock()
		clusters := make([]*Cluster, 0, len(env.cluster))
		for _, c := range env.cluster {
			clusters = append(clusters, c)
		}
		env.cluster = map[int]*Cluster{}
		return clusters
	}, (*Cluster).stop)
}
