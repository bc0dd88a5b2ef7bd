// Command lkelocal runs the local LKE by hand: a Linode API emulator backed by
// real Kubernetes control planes, for trying the provider, kubectl and curl
// without a Linode account. It prints what to export and stops cleanly on
// Ctrl-C, removing everything it started.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/lkelocal"
)

func main() {
	clusters := flag.Int("clusters", 1, "number of emulated LKE clusters")
	kubeconfigDelay := flag.Duration("kubeconfig-delay", 5*time.Second, "how long GET /kubeconfig answers 503 after a regeneration")
	recycleDelay := flag.Duration("recycle-delay", 5*time.Second, "how long a node recycle takes")
	reuse := flag.Bool("reuse-admin-secret", false, "regenerating the kubeconfig reuses the existing lke-admin token secret; a new token appears only once it is deleted")
	outage := flag.Duration("service-token-outage", 5*time.Second, "how long a standard cluster's API endpoint answers 503 after its service token is regenerated (negative: none)")
	stale := flag.Duration("stale-window", 0, "how long GET /kubeconfig still serves the previous kubeconfig after a regeneration (default none, as the recordings show)")
	token := flag.String("token", "", "Linode API token the emulator accepts (default: random)")
	envFile := flag.String("env-file", "", "also write the settings as JSON to this file (mode 0600), for scripts")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	fmt.Fprintf(os.Stderr, "starting local LKE with %d cluster(s)...\n", *clusters)
	env, err := lkelocal.Start(ctx, lkelocal.Options{
		Clusters: *clusters, KubeconfigDelay: *kubeconfigDelay, RecycleDelay: *recycleDelay, ReuseAdminSecret: *reuse, ServiceTokenOutage: *outage, StaleWindow: *stale, Token: *token,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "lkelocal: %v\n", err)
		os.Exit(1)
	}
	defer env.Close()

	settings := map[string]any{}
	for k, v := range env.LinodeEnv() {
		settings[k] = v
	}
	var ids []int
	kubeconfigs := map[string]string{}
	for _, c := range env.Clusters() {
		ids = append(ids, c.ID)
		kubeconfigs[fmt.Sprint(c.ID)] = c.AdminKubeconfigPath()
	}
	settings["cluster_ids"] = ids
	settings["admin_kubeconfigs"] = kubeconfigs

	fmt.Printf("local LKE ready in %s\n\n", time.Since(start).Round(100*time.Millisecond))
	fmt.Printf("export LINODE_URL=%s\n", env.Emulator.URL)
	fmt.Printf("export LINODE_TOKEN=%s\n", env.Emulator.Token)
	fmt.Printf("export LINODE_CA=%s\n\n", env.Emulator.CAPath)
	for _, c := range env.Clusters() {
		fmt.Printf("cluster %d: API server %s\n", c.ID, c.Host())
		fmt.Printf("  admin kubeconfig (client certificate, survives rotations): %s\n", c.AdminKubeconfigPath())
		fmt.Printf("  kubectl --kubeconfig %s get nodes\n", c.AdminKubeconfigPath())
		fmt.Printf("  curl --cacert \"$LINODE_CA\" -H \"Authorization: Bearer $LINODE_TOKEN\" $LINODE_URL/v4/lke/clusters/%d/kubeconfig\n", c.ID)
	}
	if *envFile != "" {
		b, _ := json.MarshalIndent(settings, "", "  ")
		if err := os.WriteFile(*envFile, b, 0o600); err != nil {
			fmt.Fprintf(os.Stderr, "lkelocal: %v\n", err)
			os.Exit(1)
		}
	}
	fmt.Printf("\nPress Ctrl-C to stop.\n")
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping local LKE...")
}
