package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	fakeske "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/ske"
)

// skeFlags shape the local SKE (-cloud ske).
type skeFlags struct {
	prepareDuration, completeDelay time.Duration
	project, region                string
}

func registerSKEFlags() *skeFlags {
	f := &skeFlags{}
	flag.DurationVar(&f.prepareDuration, "ske-prepare-duration", 10*time.Second, "how long a started SKE credentials rotation takes to be PREPARED (the node roll)")
	flag.DurationVar(&f.completeDelay, "ske-complete-delay", 0, "how long an SKE rotation's completion takes after the control plane restarts")
	flag.StringVar(&f.project, "ske-project", "8b8d1a3e-5d3c-4d5c-9b8e-2f2a6c1d0e42", "STACKIT project id of the SKE clusters")
	flag.StringVar(&f.region, "ske-region", "eu01", "STACKIT region of the SKE clusters")
	return f
}

// startSKE starts the local SKE with clusters named local1, local2, …,
// prints what to export and adds it to settings (for -env-file); the caller
// closes it.
func startSKE(ctx context.Context, clusters int, f *skeFlags, settings map[string]any) (*fakeske.Environment, error) {
	start := time.Now()
	fmt.Fprintf(os.Stderr, "starting local SKE with %d cluster(s)...\n", clusters)
	env, err := fakeske.Start(ctx, fakeske.Options{PrepareDuration: f.prepareDuration, CompleteDelay: f.completeDelay})
	if err != nil {
		return nil, err
	}
	var names []string
	kubeconfigs := map[string]string{}
	for i := range clusters {
		c, err := env.AddCluster(ctx, fakeske.ClusterSpec{ProjectID: f.project, Region: f.region, Name: fmt.Sprintf("local%d", i+1)})
		if err != nil {
			env.Close()
			return nil, err
		}
		kc, _, err := c.Kubeconfig(24 * time.Hour)
		if err != nil {
			env.Close()
			return nil, err
		}
		path := filepath.Join(env.Dir, c.Name+".kubeconfig")
		if err := os.WriteFile(path, kc, 0o600); err != nil {
			env.Close()
			return nil, err
		}
		names = append(names, c.Name)
		kubeconfigs[c.Name] = path
	}
	key, err := env.API.ServiceAccountKey()
	if err != nil {
		env.Close()
		return nil, err
	}
	keyPath := filepath.Join(env.Dir, "service-account-key.json")
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		env.Close()
		return nil, err
	}
	settings["STACKIT_SKE_CUSTOM_ENDPOINT"] = env.API.URL
	settings["STACKIT_SERVICE_ACCOUNT_KEY_PATH"] = keyPath
	settings["SSL_CERT_FILE"] = env.API.CAPath
	settings["ske_project_id"] = f.project
	settings["ske_region"] = f.region
	settings["ske_clusters"] = names
	settings["ske_kubeconfigs"] = kubeconfigs

	fmt.Printf("local SKE ready in %s\n\n", time.Since(start).Round(100*time.Millisecond))
	fmt.Printf("export STACKIT_SKE_CUSTOM_ENDPOINT=%s\n", env.API.URL)
	fmt.Printf("export STACKIT_SERVICE_ACCOUNT_KEY_PATH=%s\n", keyPath)
	fmt.Printf("export SSL_CERT_FILE=%s  # the SKE API's CA (its token endpoint is the same server)\n\n", env.API.CAPath)
	for _, name := range names {
		fmt.Printf("cluster %s (project %s, region %s)\n", name, f.project, f.region)
		fmt.Printf("  kubeconfig (24h, from the CA of now: a completed rotation revokes it): %s\n", kubeconfigs[name])
		fmt.Printf("  kubectl --kubeconfig %s get nodes\n", kubeconfigs[name])
	}
	return env, nil
}
