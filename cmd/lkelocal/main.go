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
	"sort"
	"strings"
	"syscall"
	"time"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

func main() {
	clusters := flag.Int("clusters", 1, "number of emulated LKE clusters")
	kubeconfigDelay := flag.Duration("kubeconfig-delay", 5*time.Second, "how long GET /kubeconfig answers 503 after a regeneration")
	recycleDelay := flag.Duration("recycle-delay", 5*time.Second, "how long a node recycle takes")
	reuse := flag.Bool("reuse-admin-secret", false, "regenerating the kubeconfig reuses the existing lke-admin token secret; a new token appears only once it is deleted")
	outage := flag.Duration("service-token-outage", 5*time.Second, "how long a standard cluster's API endpoint answers 503 after its service token is regenerated (negative: none)")
	stale := flag.Duration("stale-window", 0, "how long GET /kubeconfig still serves the previous kubeconfig after a regeneration (default none, as the recordings show)")
	rateLimit := flag.Int("rate-limit", fakelke.DefaultRatePerMinute, "Linode API requests a minute per token (paginated collection GETs excepted; negative: no limit)")
	collectionRateLimit := flag.Int("collection-rate-limit", fakelke.DefaultCollectionRatePerMinute, "paginated collection GETs a minute per token (negative: no limit)")
	maxTokenExpiration := flag.Duration("max-token-expiration", fakelke.DefaultMaxTokenExpiration, "the API servers' --service-account-max-token-expiration (negative: none)")
	noCSRSigning := flag.Bool("no-csr-signing", false, "run the clusters without the controller that signs CertificateSigningRequests")
	extraTokens := flag.Int("extra-kube-system-tokens", 0, "more auto-generated token secrets in kube-system beyond the four of the LKE guide")
	highAvailability := flag.Bool("high-availability", false, "high-availability control planes: no outage when the service token is regenerated")
	maintenance := flag.Duration("maintenance", 0, "the Linode API answers 503 with X-Maintenance-Mode for this long after start")
	scopedTokens := flag.Bool("scoped-tokens", false, "also print a token limited to lke:read_only and one to lke:read_write (OAuth scopes)")
	var faults faultFlags
	flag.Var(&faults, "fault", "queue a fault, endpoint=kind, repeatable; endpoints: "+strings.Join(faultEndpointNames(), ", ")+
		"; kinds: "+strings.Join(faultKindNames(), ", "))
	token := flag.String("token", "", "Linode API token the emulator accepts (default: random)")
	envFile := flag.String("env-file", "", "also write the settings as JSON to this file (mode 0600), for scripts")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	fmt.Fprintf(os.Stderr, "starting local LKE with %d cluster(s)...\n", *clusters)
	env, err := fakelke.Start(ctx, fakelke.Options{
		Clusters: *clusters, KubeconfigDelay: *kubeconfigDelay, RecycleDelay: *recycleDelay, ReuseAdminSecret: *reuse,
		ServiceTokenOutage: *outage, StaleWindow: *stale, Token: *token,
		RateLimits:         fakelke.RateLimits{PerMinute: *rateLimit, CollectionPerMinute: *collectionRateLimit},
		MaxTokenExpiration: *maxTokenExpiration, NoCSRSigning: *noCSRSigning, ExtraSystemTokens: *extraTokens,
		HighAvailability: *highAvailability, Maintenance: *maintenance, Faults: faults.byEndpoint(),
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
	if *scopedTokens {
		fmt.Printf("token with lke:read_only only: %s\n", env.Emulator.ScopedToken(fakelke.ScopeLKEReadOnly))
		fmt.Printf("token with lke:read_write:     %s\n\n", env.Emulator.ScopedToken(fakelke.ScopeLKEReadWrite))
	}
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

// faultFlags are the -fault flags: endpoint=kind.
type faultFlags []struct {
	endpoint string
	fault    fakelke.Fault
}

var faultEndpoints = map[string]string{
	"kubeconfig": fakelke.EndpointGetKubeconfig, "regenerate": fakelke.EndpointRegenerate,
	"cluster": fakelke.EndpointGetCluster, "pools": fakelke.EndpointListPools,
	"recycle": fakelke.EndpointRecycleCluster, "servicetoken": fakelke.EndpointDeleteServiceTok,
	"delete-kubeconfig": fakelke.EndpointDeleteKubeconfig,
}

var faultKinds = map[string]fakelke.Fault{
	"html-502": {Status: 502, HTML: true}, "html-503": {Status: 503, HTML: true}, "html-504": {Status: 504, HTML: true},
	"500": {Status: 500}, "429": {Status: 429, RetryAfter: 2 * time.Second}, "maintenance": {Maintenance: true},
	"drop": {Drop: true}, "hang": {Hang: true}, "acted-drop": {Acted: true, Drop: true}, "acted-hang": {Acted: true, Hang: true},
}

func faultEndpointNames() []string { return sortedKeys(faultEndpoints) }
func faultKindNames() []string     { return sortedKeys(faultKinds) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f faultFlags) byEndpoint() map[string][]fakelke.Fault {
	out := map[string][]fakelke.Fault{}
	for _, x := range f {
		out[x.endpoint] = append(out[x.endpoint], x.fault)
	}
	return out
}

func (f *faultFlags) String() string { return fmt.Sprint(len(*f), " faults") }

func (f *faultFlags) Set(v string) error {
	name, kind, ok := strings.Cut(v, "=")
	endpoint, known := faultEndpoints[name]
	fault, knownKind := faultKinds[kind]
	if !ok || !known || !knownKind {
		return fmt.Errorf("want endpoint=kind with endpoint one of %s and kind one of %s", strings.Join(faultEndpointNames(), ", "), strings.Join(faultKindNames(), ", "))
	}
	*f = append(*f, struct {
		endpoint string
		fault    fakelke.Fault
	}{endpoint, fault})
	return nil
}
