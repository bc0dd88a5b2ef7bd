package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// lkeFlags shape the local LKE (-cloud lke).
type lkeFlags struct {
	kubeconfigDelay, recycleDelay, outage, stale, maxTokenExpiration, maintenance time.Duration
	reuse, noCSRSigning, highAvailability, scopedTokens                           bool
	rateLimit, collectionRateLimit, extraTokens                                   int
	faults                                                                        faultFlags
	token                                                                         string
}

func registerLKEFlags() *lkeFlags {
	f := &lkeFlags{}
	flag.DurationVar(&f.kubeconfigDelay, "kubeconfig-delay", 5*time.Second, "how long GET /kubeconfig answers 503 after a regeneration")
	flag.DurationVar(&f.recycleDelay, "recycle-delay", 5*time.Second, "how long a node recycle takes")
	flag.BoolVar(&f.reuse, "reuse-admin-secret", false, "regenerating the kubeconfig reuses the existing lke-admin token secret; a new token appears only once it is deleted")
	flag.DurationVar(&f.outage, "service-token-outage", 5*time.Second, "how long a standard cluster's API endpoint answers 503 after its service token is regenerated (negative: none)")
	flag.DurationVar(&f.stale, "stale-window", 0, "how long GET /kubeconfig still serves the previous kubeconfig after a regeneration (default none, as the recordings show)")
	flag.IntVar(&f.rateLimit, "rate-limit", fakelke.DefaultRatePerMinute, "Linode API requests a minute per token (paginated collection GETs excepted; negative: no limit)")
	flag.IntVar(&f.collectionRateLimit, "collection-rate-limit", fakelke.DefaultCollectionRatePerMinute, "paginated collection GETs a minute per token (negative: no limit)")
	flag.DurationVar(&f.maxTokenExpiration, "max-token-expiration", fakelke.DefaultMaxTokenExpiration, "the API servers' --service-account-max-token-expiration (negative: none)")
	flag.BoolVar(&f.noCSRSigning, "no-csr-signing", false, "run the clusters without the controller that signs CertificateSigningRequests")
	flag.IntVar(&f.extraTokens, "extra-kube-system-tokens", 0, "more auto-generated token secrets in kube-system beyond the four of the LKE guide")
	flag.BoolVar(&f.highAvailability, "high-availability", false, "high-availability control planes: no outage when the service token is regenerated")
	flag.DurationVar(&f.maintenance, "maintenance", 0, "the Linode API answers 503 with X-Maintenance-Mode for this long after start")
	flag.BoolVar(&f.scopedTokens, "scoped-tokens", false, "also print a token limited to lke:read_only and one to lke:read_write (OAuth scopes)")
	flag.Var(&f.faults, "fault", "queue a fault, endpoint=kind, repeatable; endpoints: "+strings.Join(faultEndpointNames(), ", ")+
		"; kinds: "+strings.Join(faultKindNames(), ", "))
	flag.StringVar(&f.token, "token", "", "Linode API token the emulator accepts (default: random)")
	return f
}

// startLKE starts the local LKE, prints what to export and adds it to
// settings (for -env-file); the caller closes it.
func startLKE(ctx context.Context, clusters int, f *lkeFlags, settings map[string]any) (*fakelke.Environment, error) {
	start := time.Now()
	fmt.Fprintf(os.Stderr, "starting local LKE with %d cluster(s)...\n", clusters)
	env, err := fakelke.Start(ctx, fakelke.Options{
		Clusters: clusters, KubeconfigDelay: f.kubeconfigDelay, RecycleDelay: f.recycleDelay, ReuseAdminSecret: f.reuse,
		ServiceTokenOutage: f.outage, StaleWindow: f.stale, Token: f.token,
		RateLimits:         fakelke.RateLimits{PerMinute: f.rateLimit, CollectionPerMinute: f.collectionRateLimit},
		MaxTokenExpiration: f.maxTokenExpiration, NoCSRSigning: f.noCSRSigning, ExtraSystemTokens: f.extraTokens,
		HighAvailability: f.highAvailability, Maintenance: f.maintenance, Faults: f.faults.byEndpoint(),
	})
	if err != nil {
		return nil, err
	}

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
	if f.scopedTokens {
		fmt.Printf("token with lke:read_only only: %s\n", env.Emulator.ScopedToken(fakelke.ScopeLKEReadOnly))
		fmt.Printf("token with lke:read_write:     %s\n\n", env.Emulator.ScopedToken(fakelke.ScopeLKEReadWrite))
	}
	for _, c := range env.Clusters() {
		fmt.Printf("cluster %d: API server %s\n", c.ID, c.Host())
		fmt.Printf("  admin kubeconfig (client certificate, survives rotations): %s\n", c.AdminKubeconfigPath())
		fmt.Printf("  kubectl --kubeconfig %s get nodes\n", c.AdminKubeconfigPath())
		fmt.Printf("  curl --cacert \"$LINODE_CA\" -H \"Authorization: Bearer $LINODE_TOKEN\" $LINODE_URL/v4/lke/clusters/%d/kubeconfig\n", c.ID)
	}
	return env, nil
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
