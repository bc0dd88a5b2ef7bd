// Package fakecloud holds what the local stand-ins for the clouds kubecreds
// rotates credentials on share: real Kubernetes control-plane processes
// (built from the Go module proxy, see tools/controlplane) and one etcd,
// certificate authorities, fault injection and the request log. Each
// emulated cloud is a package of its own on top of it (lke, ske), startable
// alone. Tests, benchmarks and the demo use them; they have nothing to do
// with Terraform.
package fakecloud

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Base is what an emulated cloud runs on: a directory for certificates,
// etcd data and logs, the control-plane binary, and the single etcd its API
// servers share, each under its own key prefix.
type Base struct {
	// Dir holds certificates, etcd data and logs.
	Dir string
	// Binary is the control-plane binary.
	Binary string

	etcd   *etcd
	ownDir bool
	ctx    context.Context
	cancel context.CancelFunc
}

// StartBase finds the control-plane binary (binaryPath, default
// FindBinary()), makes dir (default a new temporary directory, removed by
// Close) and starts etcd in it. On error everything started is stopped
// again.
func StartBase(ctx context.Context, dir, binaryPath string) (_ *Base, err error) {
	bin := binaryPath
	if bin == "" {
		if bin, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	b := &Base{Binary: bin}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			b.Cancel()
			b.Close()
		}
	}()
	if dir == "" {
		sweepStaleDirs()
		if b.Dir, err = os.MkdirTemp("", tempPrefix); err != nil {
			return nil, err
		}
		b.ownDir = true
		if err := os.WriteFile(filepath.Join(b.Dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			return nil, err
		}
	} else {
		b.Dir = dir
		if err := os.MkdirAll(b.Dir, 0o700); err != nil {
			return nil, err
		}
	}
	if b.etcd, err = startEtcd(ctx, bin, b.Dir); err != nil {
		return nil, err
	}
	return b, nil
}

// Context ends when Cancel is called: what runs on the base (background
// work of clusters) stops with it.
func (b *Base) Context() context.Context { return b.ctx }

// EtcdURL is the client URL of the shared etcd.
func (b *Base) EtcdURL() string { return b.etcd.url }

// LogTail returns the end of the etcd log, to print when a test fails.
func (b *Base) LogTail() string {
	if b.etcd == nil {
		return ""
	}
	return fmt.Sprintf("--- etcd log tail ---\n%s\n", b.etcd.proc.Tail(2048))
}

// Cancel ends Context. A cloud calls it first when it closes, then stops
// its servers and clusters, then calls Close.
func (b *Base) Cancel() {
	if b.cancel != nil {
		b.cancel()
	}
}

// LogTails returns the end of the shared etcd's log, then of each part's
// (a cloud's clusters), to print when a test fails.
func LogTails[P interface{ LogTail() string }](b *Base, parts []P) string {
	var s strings.Builder
	if b != nil {
		s.WriteString(b.LogTail())
	}
	for _, p := range parts {
		s.WriteString(p.LogTail())
	}
	return s.String()
}

// Shutdown stops a cloud in the order every cloud needs: its context ends,
// its servers stop, then its clusters (take hands them over, after the
// servers stopped, so that none is added meanwhile) stop side by side, then
// etcd and the directory go.
func Shutdown[P any](b *Base, stopServers func(), take func() []P, stop func(P)) {
	if b != nil {
		b.Cancel()
	}
	stopServers()
	var wg sync.WaitGroup
	for _, c := range take() {
		wg.Add(1)
		go func() { defer wg.Done(); stop(c) }()
	}
	wg.Wait()
	if b != nil {
		b.Close()
	}
}

// Close stops etcd and removes the directory if StartBase made it.
func (b *Base) Close() {
	if b.etcd != nil {
		b.etcd.proc.Stop()
		b.etcd = nil
	}
	if b.ownDir && b.Dir != "" {
		_ = os.RemoveAll(b.Dir)
	}
}

const (
	tempPrefix = "fakecloud-"
	ownerFile  = "owner.pid"
)

// sweepStaleDirs removes temporary directories left by environments whose
// process died without closing them (a panicking test, a SIGKILL). Their
// control-plane processes are already gone: they die with their parent.
func sweepStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}

// CloseOnSignal calls closeAll and exits when the process is interrupted
// (Ctrl-C during `go test`), so nothing is left behind; what names what is
// stopped ("the local LKE").
func CloseOnSignal(what string, closeAll func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "fakecloud: %v: stopping %s\n", sig, what)
		closeAll()
		os.Exit(130)
	}()
}
