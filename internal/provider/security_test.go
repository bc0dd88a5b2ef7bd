//go:build !unit

package provider

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

const securityConfig = `
terraform {
  required_providers {
    kubecreds = { source = "kubecreds/kubecreds" }
  }
}

variable "cluster_id" { type = number }

resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = var.cluster_id
  verify     = false
}

ephemeral "kubecreds_short_lived_kubeconfig" "k" {
  lke_cluster_id = var.cluster_id
  ttl            = "10m"
  depends_on     = [kubecreds_lke_secret_rotation.r]
}

resource "terraform_data" "use" {
  provisioner "local-exec" {
    command     = "test -n \"$KC\""
    environment = { KC = ephemeral.kubecreds_short_lived_kubeconfig.k.kubeconfig }
  }
}
`

// TestAccSecurityDefaults runs the built provider as a user would and checks
// its defaults: it writes no file that others could read (any file that
// appears under HOME or TMPDIR must be 0600; none does), every request it
// sends names it and its version, TLS is verified (the emulator's
// certificate is refused without LINODE_CA), and a Linode token appears
// neither in errors nor in TRACE logs, even when the API rejects it.
// (kubernetes.insecure = true warning is TestAccKubernetesSettings_insecureWarns.)
func TestAccSecurityDefaults(t *testing.T) {
	c := takeCluster(t)
	home, tmp, work := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(securityConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TF_VAR_cluster_id": strconv.Itoa(c.ID), "HOME": home, "TMPDIR": tmp}
	start := time.Now()
	if out, err := terraformCmd(t, work, env, "apply", "-auto-approve", "-input=false", "-no-color"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}

	// Files: the provider keeps everything in memory, so nothing is left
	// under HOME or TMPDIR (and what is must at least be 0600).
	var files []string
	for _, root := range []string{home, tmp} {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			files = append(files, path)
			info, err := d.Info()
			if err == nil && info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s is %v; a file the provider writes must be 0600", path, info.Mode().Perm())
			}
			return nil
		})
	}
	t.Logf("files written under HOME and TMPDIR during a rotation and a short-lived kubeconfig: %d", len(files))
	if len(files) != 0 {
		t.Errorf("files left under HOME or TMPDIR after a rotation and a short-lived kubeconfig: %v; want none", files)
	}

	// User agent, on the Linode API and on the cluster's API endpoint.
	const ua = "terraform-provider-kubecreds/dev (+https://registry.terraform.io/providers/kubecreds/kubecreds) Terraform/"
	checkUA := func(api string, reqs []fakelke.RequestRecord) {
		n := 0
		for _, r := range reqs {
			if r.ClusterID != c.ID || r.At.Before(start) {
				continue
			}
			n++
			if !strings.HasPrefix(r.UserAgent, ua) {
				t.Errorf("%s request %s %s has user agent %q; want one starting %q", api, r.Method, r.Path, r.UserAgent, ua)
			}
		}
		if n == 0 {
			t.Errorf("no %s request of this run was recorded", api)
		}
		t.Logf("%s requests naming the provider and its version: %d", api, n)
	}
	checkUA("Linode API", testEnv.Emulator.Requests())
	checkUA("Kubernetes API", testEnv.Emulator.KubeRequests())

	// TLS: without the emulator's CA, its certificate is refused.
	out, err := terraformCmd(t, work, map[string]string{"TF_VAR_cluster_id": strconv.Itoa(c.ID), "LINODE_CA": ""},
		"apply", "-auto-approve", "-input=false", "-no-color", "-replace=kubecreds_lke_secret_rotation.r")
	if err == nil || !strings.Contains(out, "certificate signed by unknown authority") || !wrapped("set linode_ca_path (or LINODE_CA)").MatchString(out) {
		t.Errorf("without LINODE_CA the emulator's self-signed certificate must be refused, naming linode_ca_path; got (%v):\n%s", err, out)
	}

	// A rejected token: the error names the setting, never the token.
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	wrong := hex.EncodeToString(b)
	logPath := filepath.Join(t.TempDir(), "trace.log")
	out, err = terraformCmd(t, work, map[string]string{"TF_VAR_cluster_id": strconv.Itoa(c.ID), "LINODE_TOKEN": wrong,
		"TF_LOG": "TRACE", "TF_LOG_PATH": logPath}, "apply", "-auto-approve", "-input=false", "-no-color", "-replace=kubecreds_lke_secret_rotation.r")
	if err == nil || !wrapped("linode_token or the LINODE_TOKEN").MatchString(out) {
		t.Errorf("a rejected token must fail naming linode_token / LINODE_TOKEN; got (%v):\n%s", err, out)
	}
	trace, _ := os.ReadFile(logPath)
	if len(trace) == 0 {
		t.Fatal("no TRACE log written")
	}
	for what, token := range map[string]string{"rejected token": wrong, "Linode API token": testEnv.Emulator.Token} {
		for file, content := range map[string][]byte{"the error output": []byte(out), "the TRACE log": trace} {
			if bytes.Contains(content, []byte(token)) {
				t.Errorf("the %s appears in %s", what, file)
			}
		}
	}
}
