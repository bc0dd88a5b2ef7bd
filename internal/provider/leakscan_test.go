//go:build !unit

package provider

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// The suite-wide leak scan. While the package's tests run, every terraform
// run leaves its traces in one directory: the acceptance tests' working
// directories are kept (states, saved plans, per-step copies) and their
// TRACE logs (terraform's and the in-process provider's) written there; runs
// of the built provider (terraformCmd) log at TRACE there and copy their state
// there. Afterwards every credential the local LKE handed out during the
// suite (from the API servers' audit logs: every TokenRequest answer and every
// token secret; the admin token of every kubeconfig the Linode API served)
// and the Linode API token are searched for in all of it, as are JWT-shaped
// strings and private keys of any origin. Zero hits are expected.
type leakCapture struct {
	dir   string
	runs  atomic.Int64
	mu    sync.Mutex
	state []string // copies of states of built-provider runs
}

var leaks *leakCapture

func startLeakCapture() (*leakCapture, error) {
	dir, err := os.MkdirTemp("", "kubecreds-leakscan-")
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"work", "cli"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	for k, v := range map[string]string{
		"TF_ACC_TEMP_DIR":            filepath.Join(dir, "work"),
		"TF_ACC_PERSIST_WORKING_DIR": "1",
		// terraform's and the in-process provider's logs, at TRACE.
		"TF_ACC_LOG_PATH": filepath.Join(dir, "acceptance-trace.log"),
	} {
		os.Setenv(k, v)
	}
	return &leakCapture{dir: dir}, nil
}

// cliEnv gives a built-provider terraform run a TRACE log in the capture
// directory (a caller's own TF_LOG_PATH file is copied there when the test
// ends; a caller that logs elsewhere keeps its choice) and keeps the run's
// state and saved plans when the test ends.
func (l *leakCapture) cliEnv(t *testing.T, dir string, env map[string]string) []string {
	if l == nil {
		return nil
	}
	n := l.runs.Add(1)
	name := strings.NewReplacer("/", "__", " ", "_").Replace(t.Name())
	l.mu.Lock()
	if !slices.Contains(l.state, dir) {
		l.state = append(l.state, dir)
		t.Cleanup(func() { l.keepState(name, dir) })
	}
	l.mu.Unlock()
	if path, own := env["TF_LOG_PATH"]; own {
		t.Cleanup(func() {
			if b, err := os.ReadFile(path); err == nil {
				_ = os.WriteFile(filepath.Join(l.dir, "cli", fmt.Sprintf("%s-%d-own.log", name, n)), b, 0o600)
			}
		})
		return nil
	}
	if _, own := env["TF_LOG"]; own {
		return nil
	}
	return []string{"TF_LOG=TRACE", "TF_LOG_PATH=" + filepath.Join(l.dir, "cli", fmt.Sprintf("%s-%d.log", name, n))}
}

func (l *leakCapture) keepState(name, dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "terraform.tfstate") || strings.HasSuffix(e.Name(), ".tfplan") || e.Name() == "tfplan" {
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
				_ = os.WriteFile(filepath.Join(l.dir, "cli", name+"-"+e.Name()), b, 0o600)
			}
		}
	}
}

type leakReport struct {
	values, files int
	bytes         int64
	hits          []string
	echoSkipped   int
}

// scan searches everything captured for the credentials of env and the
// Linode token.
func (l *leakCapture) scan(env *fakelke.Environment) (*leakReport, error) {
	secrets := map[string]string{env.Emulator.Token: "the Linode API token"}
	if skeAPI != nil {
		secrets[skeAPI.Token] = "the STACKIT service-account token"
		// The service account's key (a PEM private key) is found by its
		// shape, and so are access tokens (JWTs).
	}
	for _, c := range env.Clusters() {
		creds, err := c.Credentials()
		if err != nil {
			return nil, err
		}
		for _, tok := range creds {
			secrets[tok] = fmt.Sprintf("a token of cluster %d", c.ID)
		}
	}
	registeredSecrets.Range(func(k, v any) bool {
		secrets[k.(string)] = v.(string)
		return true
	})
	// The configurations the tests wrote hold what the user typed: a
	// proxy password there is the test's, not a leak. Everything else is
	// searched for every secret.
	shaped := map[string]string{}
	for k, v := range secrets {
		if !slices.Contains(freeForm(secrets), k) {
			shaped[k] = v
		}
	}
	r := &leakReport{values: len(secrets)}
	echoDirs := map[string]bool{}
	_ = filepath.WalkDir(filepath.Join(l.dir, "work"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".tf") {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(`provider "echo"`)) {
				echoDirs[filepath.Dir(path)] = true
			}
		}
		return nil
	})
	err := filepath.WalkDir(l.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			if err == nil && d.IsDir() && d.Name() == "providers" && strings.Contains(path, ".terraform") {
				return filepath.SkipDir
			}
			return err
		}
		rel, _ := filepath.Rel(l.dir, path)
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		r.files++
		r.bytes += int64(len(raw))
		echo := echoDirs[filepath.Dir(path)]
		switch {
		case strings.HasPrefix(d.Name(), "terraform.tfstate") || strings.Contains(d.Name(), "terraform.tfstate"):
			// The echo provider stores what the test hands it (the
			// ephemeral results) in its own resource: that is the test
			// looking, not a leak. Everything else of the state is scanned.
			raw = withoutEchoResources(raw)
		case d.Name() == "tfplan" || strings.HasSuffix(d.Name(), ".tfplan"):
			if echo {
				r.echoSkipped++
				return nil
			}
			raw = unzipAll(raw)
		}
		if strings.HasSuffix(d.Name(), ".tf") || strings.HasSuffix(d.Name(), ".tfvars") {
			r.hits = append(r.hits, findLeaks(rel, raw, shaped)...)
			return nil
		}
		r.hits = append(r.hits, findLeaks(rel, raw, secrets)...)
		return nil
	})
	return r, err
}

func withoutEchoResources(raw []byte) []byte {
	var state map[string]any
	if json.Unmarshal(raw, &state) != nil {
		return raw
	}
	resources, _ := state["resources"].([]any)
	kept := resources[:0]
	for _, r := range resources {
		if m, ok := r.(map[string]any); ok && m["type"] == "echo" {
			continue
		}
		kept = append(kept, r)
	}
	state["resources"] = kept
	out, _ := json.MarshalIndent(state, "", "  ")
	return out
}

// unzipAll is the contents of every file in a saved plan (a zip archive),
// one after the other; the raw bytes when it is not one.
func unzipAll(raw []byte) []byte {
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return raw
	}
	var out bytes.Buffer
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			continue
		}
		_, _ = io.Copy(&out, rc)
		rc.Close()
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// finishLeakScan scans and prints the outcome; it returns a non-zero exit
// code on any hit.
func finishLeakScan(l *leakCapture, env *fakelke.Environment) int {
	if l == nil {
		return 0
	}
	r, err := l.scan(env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: leak scan: %v\n", err)
		return 1
	}
	fmt.Printf("leak scan: %d credentials (every token the local LKE issued or stored during the suite, and the Linode API token) "+
		"searched for in %d files (%.1f MiB: states, saved plans, TRACE logs of terraform and the provider); "+
		"%d saved plans of echo-provider tests skipped; hits: %d\n",
		r.values, r.files, float64(r.bytes)/(1<<20), r.echoSkipped, len(r.hits))
	if len(r.hits) == 0 {
		_ = os.RemoveAll(l.dir)
		return 0
	}
	sort.Strings(r.hits)
	for i, h := range r.hits {
		if i == 50 {
			fmt.Fprintf(os.Stderr, "  … and %d more\n", len(r.hits)-50)
			break
		}
		fmt.Fprintf(os.Stderr, "  LEAK %s\n", h)
	}
	fmt.Fprintf(os.Stderr, "FAIL: leak scan found %d hits; the captured files are kept in %s\n", len(r.hits), l.dir)
	return 1
}
