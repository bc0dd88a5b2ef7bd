//go:build !unit

package provider

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
)

// createTokenSecrets makes n legacy token secrets for one service account in
// ns, in parallel, and returns their namespace/name.
func createTokenSecrets(t *testing.T, c *fakelke.Cluster, ns string, n int) []string {
	t.Helper()
	createTokenSecret(t, c, ns, "bot") // the namespace and service account
	cs := adminClient(t, c)
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, 16)
	)
	for i := range n - 1 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := cs.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bot-token-%05d", i), Annotations: map[string]string{corev1.ServiceAccountNameKey: "bot"}},
				Type:       corev1.SecretTypeServiceAccountToken,
			}, metav1.CreateOptions{})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	ids := sortedKeys(tokenSecrets(t, c, ns))
	if len(ids) != n {
		t.Fatalf("%s holds %d token secrets, want %d", ns, len(ids), n)
	}
	return ids
}

func TestAccRotation_deletesAThousandSecretsAndRecordsEachName(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	var want []string
	start := time.Now()
	for _, ns := range []string{"scale-a", "scale-b"} {
		want = append(want, createTokenSecrets(t, c, ns, 500)...)
	}
	t.Logf("created %d token secrets in %s", len(want), time.Since(start).Round(time.Millisecond))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			PreConfig: func() { want = append(want, sortedKeys(tokenSecrets(t, c, "kube-system"))...) },
			Config:    rotationConfig(c.ID, `  namespaces = ["kube-system", "scale-a", "scale-b"]`),
			ConfigStateChecks: []statecheck.StateCheck{rotationCheck(func(a rotationValues) error {
				got := a.DeletedSecrets
				slices.Sort(want)
				if !slices.Equal(got, want) {
					return fmt.Errorf("deleted_secrets has %d names, %d secrets existed", len(got), len(want))
				}
				for _, ns := range []string{"scale-a", "scale-b"} {
					if left := tokenSecrets(t, c, ns); len(left) != 0 {
						return fmt.Errorf("%d token secrets left in %s", len(left), ns)
					}
				}
				return nil
			})},
		}},
	})
}

func TestAccServiceAccountTokens_listsChosenNamespacesWithAge(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	own := createTokenSecret(t, c, "ci", "deployer")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				Config: fmt.Sprintf(`
data "kubecreds_lke_service_account_tokens" "t" {
  cluster_id = %d
  namespaces = ["kube-system", "ci"]
}
`, c.ID),
				ConfigStateChecks: []statecheck.StateCheck{valuesCheck("data.kubecreds_lke_service_account_tokens.t", func(v struct {
					Tokens []struct {
						Namespace string `json:"namespace"`
						Name      string `json:"name"`
						Age       string `json:"age"`
						CreatedAt string `json:"created_at"`
					} `json:"tokens"`
				}) error {
					want := sortedKeys(tokenSecrets(t, c, "ci", "kube-system"))
					var got []string
					for _, tok := range v.Tokens {
						got = append(got, tok.Namespace+"/"+tok.Name)
						if _, err := time.ParseDuration(tok.Age); err != nil {
							return fmt.Errorf("age %q is not a duration", tok.Age)
						}
						if _, err := time.Parse(time.RFC3339, tok.CreatedAt); err != nil {
							return err
						}
					}
					if !slices.Equal(got, want) || !slices.Contains(got, own) {
						return fmt.Errorf("tokens %v, want %v (including %s)", got, want, own)
					}
					return nil
				})},
			},
		},
	})
}

func TestAccServiceAccountTokens_badInput(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ config, want string }{
		"unknown cluster": {`cluster_id = 987650`, `LKE cluster 987650 does not exist`},
		"cluster id 0":    {`cluster_id = 0`, `(?s)cluster_id.*must be at least 1`},
		"bad namespace":   {`cluster_id = 1` + "\n" + `namespaces = ["Kube_System"]`, `(?s)must be a Kubernetes namespace\s+name`},
		"no namespaces":   {`cluster_id = 1` + "\n" + `namespaces = []`, `(?s)namespaces.*set must contain at least 1 elements`},
	} {
		t.Run(name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviders,
				Steps: []resource.TestStep{{
					Config:      "data \"kubecreds_lke_service_account_tokens\" \"t\" {\n" + tc.config + "\n}\n",
					ExpectError: regexpMust(tc.want),
				}},
			})
		})
	}
}
