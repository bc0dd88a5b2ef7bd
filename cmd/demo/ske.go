package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	fakeske "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/ske"
)

// runSKE shows SKE's two-phase credentials rotation on the local SKE: the
// first apply starts it (PREPARED: the kubeconfig from before and the one
// handed over both work), the second completes it (the one from before is
// rejected, the one handed over still works).
func runSKE(ctx context.Context) error {
	start := time.Now()
	terraform, err := exec.LookPath("terraform")
	if err != nil {
		return errors.New("terraform is not on PATH (Terraform 1.10 or later is needed)")
	}
	work, err := os.MkdirTemp("", "kubecreds-demo-ske-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	step("starting the local SKE (real kube-apiserver whose CA and signing key rotate + SKE API emulator)")
	env, err := fakeske.Start(ctx, fakeske.Options{PrepareDuration: 3 * time.Second})
	if err != nil {
		return err
	}
	defer func() {
		env.Close()
		step("torn down: local SKE stopped, temporary files removed")
	}()
	api := env.API
	cluster, err := env.AddCluster(ctx, fakeske.ClusterSpec{ProjectID: "8b8d1a3e-5d3c-4d5c-9b8e-2f2a6c1d0e42", Region: "eu01", Name: "demo"})
	if err != nil {
		return err
	}
	key, err := api.ServiceAccountKey()
	if err != nil {
		return err
	}

	step("building the provider")
	cliConfig, err := buildProvider(ctx, work)
	if err != nil {
		return err
	}
	dir, report := filepath.Join(work, "config"), filepath.Join(work, "report")
	for _, d := range []string{dir, report} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := copyTF("examples/demo-ske", dir); err != nil {
		return err
	}
	before, _, err := cluster.Kubeconfig(time.Hour)
	if err != nil {
		return err
	}
	tfEnv := append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
		"STACKIT_SKE_CUSTOM_ENDPOINT="+api.URL, "STACKIT_SERVICE_ACCOUNT_KEY="+string(key), "SSL_CERT_FILE="+api.CAPath,
		"TF_VAR_project_id="+cluster.ProjectID, "TF_VAR_cluster_name="+cluster.Name, "TF_VAR_report_dir="+report)

	outputs := func() (phase string, err error) {
		var buf bytes.Buffer
		if err := terraformRun(ctx, terraform, dir, tfEnv, &buf, "output", "-json"); err != nil {
			return "", err
		}
		var out struct{ Phase struct{ Value string } }
		return out.Phase.Value, json.Unmarshal(buf.Bytes(), &out)
	}
	step("apply 1 (complete = false): start the rotation and wait until it is PREPARED")
	t1 := time.Now()
	if err := terraformRun(ctx, terraform, dir, append(tfEnv, "TF_VAR_complete=false"), os.Stdout, "apply", "-auto-approve", "-no-color"); err != nil {
		return fmt.Errorf("terraform apply: %w", err)
	}
	took1 := time.Since(t1)
	phase1, err := outputs()
	if err != nil {
		return err
	}
	handed, _ := os.ReadFile(filepath.Join(report, "new.kubeconfig"))
	nodes, _ := os.ReadFile(filepath.Join(report, "nodes"))
	beforeWorks1, handedWorks1 := listNodes(ctx, before) == nil, listNodes(ctx, handed) == nil

	step("apply 2 (complete = true): complete the rotation")
	t2 := time.Now()
	if err := terraformRun(ctx, terraform, dir, append(tfEnv, "TF_VAR_complete=true"), os.Stdout, "apply", "-auto-approve", "-no-color"); err != nil {
		return fmt.Errorf("terraform apply: %w", err)
	}
	took2 := time.Since(t2)
	phase2, err := outputs()
	if err != nil {
		return err
	}
	beforeWorks2, handedWorks2 := listNodes(ctx, before) == nil, listNodes(ctx, handed) == nil
	starts, completes := cluster.Rotations()

	ok := true
	mark := func(good bool) string {
		if good {
			return "ok  "
		}
		ok = false
		return "FAIL"
	}
	fmt.Printf("\n== kubecreds SKE demo: summary ==\n")
	fmt.Printf("apply 1 (%s): phase %s\n", took1.Round(100*time.Millisecond), phase1)
	fmt.Printf("  %s the rotation is PREPARED\n", mark(phase1 == "PREPARED"))
	fmt.Printf("  %s the kubeconfig from before the start still works\n", mark(beforeWorks1))
	fmt.Printf("  %s the kubeconfig handed over works (kubectl listed %d nodes with it)\n", mark(handedWorks1 && len(bytes.Fields(nodes)) > 0), len(bytes.Fields(nodes)))
	fmt.Printf("apply 2 (%s): phase %s\n", took2.Round(100*time.Millisecond), phase2)
	fmt.Printf("  %s the rotation is COMPLETED\n", mark(phase2 == "COMPLETED"))
	fmt.Printf("  %s the kubeconfig from before the start is rejected\n", mark(!beforeWorks2))
	fmt.Printf("  %s the kubeconfig handed over still works\n", mark(handedWorks2))
	fmt.Printf("  %s SKE was asked once to start and once to complete (%d, %d)\n", mark(starts == 1 && completes == 1), starts, completes)
	fmt.Printf("demo finished in %s\n", time.Since(start).Round(100*time.Millisecond))
	if !ok {
		return errors.New("a check above failed")
	}
	return nil
}
