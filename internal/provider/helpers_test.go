//go:build !unit

package provider

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linode/linodego"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// takeCluster hands each parallel test a cluster of the pool for itself, so
// rotations (and the 10 s the API server keeps accepting a deleted token)
// overlap. The matrices are parallel at the top too (their cases take from
// the same pool beside every other test): a top-level test that is not
// would make all others wait for its longest case.
var (
	clusterMu   sync.Mutex
	clusterUsed = map[int]bool{}
)

func takeCluster(t *testing.T) *fakelke.Cluster {
	t.Helper()
	for {
		clusterMu.Lock()
		for _, c := range testEnv.Clusters() {
			if !clusterUsed[c.ID] {
				clusterUsed[c.ID] = true
				clusterMu.Unlock()
				t.Cleanup(func() {
					c.SetKubeconfigDelay(0)
					c.SetServedKubeconfigEdit(nil)
					clusterMu.Lock()
					delete(clusterUsed, c.ID)
					clusterMu.Unlock()
				})
				return c
			}
		}
		clusterMu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

// takePrivateCluster starts a cluster of its own for one test, shaped by
// spec; takeCluster never hands it out. It is deleted when the test ends.
func takePrivateCluster(t *testing.T, spec fakelke.ClusterSpec) *fakelke.Cluster {
	t.Helper()
	// Held while the cluster starts, so that takeCluster cannot see it
	// before it is marked as used.
	clusterMu.Lock()
	c, err := testEnv.AddCluster(t.Context(), spec)
	if err == nil {
		clusterUsed[c.ID] = true
	}
	clusterMu.Unlock()
	if err != nil {
		t.Fatalf("cannot start a cluster of its own: %v", err)
	}
	t.Cleanup(func() {
		if err := testEnv.DeleteCluster(c.ID); err != nil {
			t.Error(err)
		}
		clusterMu.Lock()
		delete(clusterUsed, c.ID)
		clusterMu.Unlock()
	})
	return c
}

func adminClient(t *testing.T, c *fakelke.Cluster) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// testLinodeClient talks to the emulator as a user's tooling would.
func testLinodeClient(t *testing.T) *linodego.Client {
	t.Helper()
	c := linodego.NewClient(testEnv.Emulator.HTTPClient(true))
	c.SetBaseURL(testEnv.Emulator.URL)
	c.SetToken(testEnv.Emulator.Token)
	c.SetRetryCount(0)
	return &c
}

// servedKubeconfig is what GET /lke/clusters/{id}/kubeconfig answers now,
// waiting through 503s.
func servedKubeconfig(t *testing.T, c *fakelke.Cluster) []byte {
	t.Helper()
	lc := testLinodeClient(t)
	var out []byte
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		kc, err := lc.GetLKEClusterKubeconfig(ctx, c.ID)
		if err != nil {
			return false, nil //nolint:nilerr // the kubeconfig answers 503 after a regeneration: keep polling
		}
		out, err = base64.StdEncoding.DecodeString(kc.KubeConfig)
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("cluster %d: no kubeconfig served: %v", c.ID, err)
	}
	return out
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func kubeconfigClient(t *testing.T, kubeconfig []byte) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// kubeconfigWorks lists nodes with the kubeconfig.
func kubeconfigWorks(t *testing.T, kubeconfig []byte) error {
	t.Helper()
	_, err := kubeconfigClient(t, kubeconfig).CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	return err
}

// waitRejected waits (the API server caches tokens for 10 s) until the
// kubeconfig's token answers 401.
func waitRejected(t *testing.T, kubeconfig []byte, within time.Duration) error {
	t.Helper()
	cs := kubeconfigClient(t, kubeconfig)
	return wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, within, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		return apierrors.IsUnauthorized(err), nil
	})
}

// tokenSecrets lists namespace/name of the token secrets in namespaces, by service account.
func tokenSecrets(t *testing.T, c *fakelke.Cluster, namespaces ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ns := range namespaces {
		list, err := adminClient(t, c).CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String(),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			out[s.Namespace+"/"+s.Name] = s.Annotations[corev1.ServiceAccountNameKey]
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// createTokenSecret makes a user-made legacy token secret, as teams do for CI.
func createTokenSecret(t *testing.T, c *fakelke.Cluster, ns, serviceAccount string) string {
	t.Helper()
	cs := adminClient(t, c)
	ctx := t.Context()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	s, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{GenerateName: serviceAccount + "-token-", Annotations: map[string]string{corev1.ServiceAccountNameKey: serviceAccount}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s/%s", ns, s.Name)
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// wrapped matches text as Terraform prints it in a diagnostic, where any
// space may have become a line break.
func wrapped(text string) *regexp.Regexp {
	return regexp.MustCompile(`(?s)` + strings.Join(strings.Fields(regexp.QuoteMeta(text)), `\s+`))
}

// oldTokenRejected checks, right after an apply that verified it, that the
// previous admin token is refused (a short wait only absorbs scheduling).
func oldTokenRejected(t *testing.T, oldKubeconfig []byte) error {
	t.Helper()
	if err := waitRejected(t, oldKubeconfig, 2*time.Second); err != nil {
		return fmt.Errorf("the previous admin token is still accepted after apply finished")
	}
	return nil
}
