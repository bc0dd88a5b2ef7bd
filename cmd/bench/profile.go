package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

// profileDeletion explains the deletion numbers: while 5 000 token secrets
// are deleted, once by the provider's step and once by its DeleteCollection
// requests alone, it takes a CPU profile of kube-apiserver (its /debug/pprof)
// and of this process (where the provider's step runs), and writes them with
// `go tool pprof -top` views to <out>/profile/.
func (b *bench) profileDeletion(ctx context.Context, out string) error {
	const n = 5000
	dir := filepath.Join(out, "profile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d, err := newDeletionSetup(ctx, b.env.Clusters()[1])
	if err != nil {
		return err
	}
	variants := []struct {
		name string
		del  func() error
	}{{"provider", d.providerStep}, {"requests-alone", d.floor}}
	var summary strings.Builder
	fmt.Fprintf(&summary, "# Where deleting %d token secrets spends its time\n\nWritten by `make bench` on %s (2-core machine; kube-apiserver, etcd and "+
		"kube-controller-manager of the local LKE share it with the client). CPU profiles taken while the deletion ran: kube-apiserver's "+
		"`/debug/pprof/profile` and, for the provider's step, the client process. Raw profiles: `*.pb.gz` (`go tool pprof -top <file>`).\n\n",
		n, time.Now().UTC().Format("2006-01-02"))
	for _, v := range variants {
		if err := makeTokenSecrets(ctx, d.cs, n, d.ca, 5*time.Minute); err != nil {
			return err
		}
		// The API server profiles for a whole number of seconds from the
		// request on; the deletion starts right after the request is sent.
		const seconds = 8
		type profile struct {
			raw []byte
			err error
		}
		done := make(chan profile, 1)
		go func() {
			raw, err := d.cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", fmt.Sprint(seconds)).
				Timeout((seconds + 30) * time.Second).Do(ctx).Raw()
			done <- profile{raw, err}
		}()
		time.Sleep(300 * time.Millisecond)
		var client bytes.Buffer
		if v.name == "provider" {
			if err := pprof.StartCPUProfile(&client); err != nil {
				return err
			}
		}
		took, err := timed(v.del)
		if v.name == "provider" {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return err
		}
		p := <-done
		if p.err != nil {
			return fmt.Errorf("kube-apiserver profile: %w", p.err)
		}
		heading := map[string]string{"provider": "the provider's deletion step", "requests-alone": "the provider's DeleteCollection requests alone"}[v.name]
		fmt.Fprintf(&summary, "## %s: %d secrets deleted in %.2f s\n\n", heading, n, took)
		files := map[string][]byte{"apiserver-" + v.name: p.raw}
		if v.name == "provider" {
			files["client-"+v.name] = client.Bytes()
		}
		for _, name := range []string{"apiserver-" + v.name, "client-" + v.name} {
			raw, ok := files[name]
			if !ok {
				continue
			}
			path := filepath.Join(dir, name+".pb.gz")
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				return err
			}
			top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=80", path).CombinedOutput()
			if err != nil {
				return fmt.Errorf("go tool pprof %s: %w: %s", path, err, top)
			}
			fmt.Fprintf(&summary, "`%s.pb.gz`:\n\n```\n%s```\n\n", name, stripPprofHeader(string(top)))
		}
	}
	fmt.Print(summary.String())
	return os.WriteFile(filepath.Join(dir, "README.md"), []byte(summary.String()), 0o644)
}

// stripPprofHeader keeps, of pprof's cumulative view, the duration and
// total-samples lines and the first 20 rows that are not the Go runtime or
// generic HTTP plumbing (the lines naming local paths go too).
func stripPprofHeader(top string) string {
	var keep []string
	rows := 0
	for _, line := range strings.Split(top, "\n") {
		switch {
		case strings.HasPrefix(line, "Duration:"), strings.HasPrefix(line, "      flat"):
			keep = append(keep, line)
		case strings.Contains(line, "%") && !strings.Contains(line, "runtime.") && !strings.Contains(line, "net/http.") &&
			!strings.Contains(line, "Showing") && !strings.Contains(line, "Dropped") && rows < 20:
			keep = append(keep, line)
			rows++
		}
	}
	return strings.Join(keep, "\n") + "\n"
}
