package fakecloud

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// BinaryEnv names the environment variable that points at the control-plane
// binary built from tools/controlplane.
const BinaryEnv = "KUBECREDS_CONTROLPLANE_BIN"

// FindBinary locates the control-plane binary: $KUBECREDS_CONTROLPLANE_BIN, or
// .cache/bin/controlplane at the root of this repository (where `make
// controlplane` puts it).
func FindBinary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinaryEnv, p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "tools", "controlplane", "go.mod")); err == nil {
				p := filepath.Join(dir, ".cache", "bin", "controlplane")
				if _, err := os.Stat(p); err != nil {
					return "", fmt.Errorf("control-plane binary not built (%s missing): run `make controlplane` or set %s", p, BinaryEnv)
				}
				return p, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("control-plane binary not found: set %s or run from inside the repository after `make controlplane`", BinaryEnv)
		}
		dir = parent
	}
}

// etcd is the single etcd an environment's API servers share, each under its
// own key prefix.
type etcd struct {
	url  string
	proc *Process
}

func startEtcd(ctx context.Context, bin, dir string) (*etcd, error) {
	clientPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	peerPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	proc, err := StartProcess(dir, "etcd", bin, "etcd",
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd-data"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		// Test data need not survive a power cut; fsync dominates start-up.
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	e := &etcd{url: clientURL, proc: proc}
	err = WaitHealthy(ctx, proc, 30*time.Second, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // etcd is not listening yet: keep polling until it is healthy
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		proc.Stop()
		return nil, fmt.Errorf("etcd did not become healthy: %w\n--- etcd log tail ---\n%s", err, proc.Tail(4096))
	}
	return e, nil
}

// WaitHealthy polls check until it is true, failing early if proc exits.
func WaitHealthy(ctx context.Context, proc *Process, timeout time.Duration, check wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if ok, err := proc.Exited(); ok {
			return false, fmt.Errorf("%s exited: %v", proc.Name, err) //nolint:errorlint // err is nil on a clean exit, and %w would print %!w(<nil>)
		}
		return check(ctx)
	})
}
