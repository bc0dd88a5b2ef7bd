// Package ske runs a local stand-in for STACKIT Kubernetes Engine: an
// emulator of the SKE API's cluster, kubeconfig and credentials-rotation
// endpoints, STACKIT's token endpoint and a trusted OIDC issuer for
// workload identity federation, and clusters backed by real kube-apiserver
// and kube-controller-manager processes (fakecloud) whose CA, signing key
// and encryption key a rotation really replaces. It starts no Linode
// emulator and no LKE cluster. Importers alias it (fakeske): internal/ske is
// the provider's SKE client.
package ske

import (
	"context"
	"sync"
	"time"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// Options configure an Environment.
type Options struct {
	// PrepareDuration is how long a started credentials rotation takes to
	// be PREPARED (the node roll); CompleteDelay how long a completion
	// takes after the control plane is restarted.
	PrepareDuration time.Duration
	CompleteDelay   time.Duration
	// Dir holds certificates, etcd data and logs; default a new temporary
	// directory, removed by Close.
	Dir string
	// BinaryPath is the control-plane binary; default fakecloud.FindBinary().
	BinaryPath string
}

// Environment is a running local SKE: the SKE API and the clusters added
// with AddCluster.
type Environment struct {
	Dir string
	// API is the SKE API emulator (with the token endpoint and OIDC issuer).
	API *API

	opts      Options
	base      *fakecloud.Base
	mu        sync.Mutex
	clusters  []*Cluster
	seq       int // numbers clusters: their directory and etcd prefix
	closeOnce sync.Once
}

// Fault is one programmed answer of an endpoint (fakecloud.Fault).
type Fault = fakecloud.Fault

// RequestRecord is one request the SKE API received (fakecloud.RequestRecord).
type RequestRecord = fakecloud.RequestRecord

// Start brings up etcd and the SKE API, without clusters (AddCluster adds
// them). On error everything started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Environment, err error) {
	env := &Environment{opts: opts}
	defer func() {
		if err != nil {
			env.Close()
		}
	}()
	if env.base, err = fakecloud.StartBase(ctx, opts.Dir, opts.BinaryPath); err != nil {
		return nil, err
	}
	env.Dir = env.base.Dir
	if env.API, err = startAPI(env); err != nil {
		return nil, err
	}
	return env, nil
}

// LogTail returns the end of every process log, to print when a test fails.
func (env *Environment) LogTail() string { return fakecloud.LogTails(env.base, env.Clusters()) }

// CloseOnSignal closes the environment and exits when the process is
// interrupted (Ctrl-C during `go test`), so nothing is left behind.
func (env *Environment) CloseOnSignal() {
	fakecloud.CloseOnSignal("the local SKE", env.Close)
}

// Close stops every process the environment started and removes its
// temporary directory. It is safe to call more than once, and from a signal
// handler while a deferred Close runs: every call returns once it is done.
func (env *Environment) Close() {
	env.closeOnce.Do(env.close)
}

func (env *Environment) close() {
	fakecloud.Shutdown(env.base, func() {
		if env.API != nil {
			close(env.API.closing)
			_ = env.API.server.Close()
		}
	}, func() []*Cluster {
		env.mu.Lock()
		defer env.mu.Unlock()
		clusters := env.clusters
		env.clusters = nil
		return clusters
	}, (*Cluster).stop)
}
