//go:build !unit

package provider

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	fakelke "github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
)

const rotationAddr = "kubecreds_lke_secret_rotation.r"

func rotationConfig(clusterID int, body string) string {
	return fmt.Sprintf(`
resource "kubecreds_lke_secret_rotation" "r" {
  cluster_id = %d
%s
}
`, clusterID, body)
}

// attrs returns the flat attributes of the rotation in the state (for
// checks that only ask whether it is there).
func attrs(s *terraform.State) map[string]string {
	if r := s.RootModule().Resources[rotationAddr]; r != nil {
		return r.Primary.Attributes
	}
	return nil
}

// servedKubeconfigMatches checks that the kubeconfig the Linode API serves
// works and is the one kubeconfig_sha256 names.
func servedKubeconfigMatches(t *testing.T, c *fakelke.Cluster) statecheck.StateCheck {
	return rotationCheck(func(a rotationValues) error {
		kc := servedKubeconfig(t, c)
		if err := kubeconfigWorks(t, kc); err != nil {
			return fmt.Errorf("the kubeconfig served after the rotation does not work: %w", err)
		}
		if got := sha256Hex(kc); got != a.KubeconfigSHA256 {
			return fmt.Errorf("kubeconfig_sha256 = %s, served kubeconfig hashes to %s", a.KubeconfigSHA256, got)
		}
		return nil
	})
}

// deref is a string attribute that may be null ("" then).
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestAccRotation_createRotatesAndProvesIt(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	var (
		before      map[string]string
		oldKC       []byte
		firstSHA    string
		firstAtStr  string
		regenerates int
	)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					before = tokenSecrets(t, c, "kube-system")
					oldKC = servedKubeconfig(t, c)
				},
				Config: rotationConfig(c.ID, `  keepers = { reason = "first" }`),
				ConfigStateChecks: []statecheck.StateCheck{
					rotationCheck(func(a rotationValues) error {
						if got, want := a.DeletedSecrets, sortedKeys(before); !slices.Equal(got, want) {
							return fmt.Errorf("deleted_secrets = %v, the secrets that existed were %v", got, want)
						}
						if left := tokenSecrets(t, c, "kube-system"); len(left) != len(before) {
							return fmt.Errorf("after the rotation kube-system holds %d token secrets, want %d new ones", len(left), len(before))
						} else {
							for id := range left {
								if _, old := before[id]; old {
									return fmt.Errorf("secret %s survived the rotation", id)
								}
							}
						}
						if err := oldTokenRejected(t, oldKC); err != nil {
							return err
						}
						if a.NodesVerified != len(c.NodeNames()) {
							return fmt.Errorf("nodes_verified = %d, cluster has %d nodes", a.NodesVerified, len(c.NodeNames()))
						}
						if _, err := time.Parse(time.RFC3339, deref(a.RotatedAt)); err != nil {
							return fmt.Errorf("rotated_at %q: %w", deref(a.RotatedAt), err)
						}
						firstSHA, firstAtStr = a.KubeconfigSHA256, deref(a.RotatedAt)
						return nil
					}),
					rotationAttr("next_rotation_at", knownvalue.Null()),
					rotationAttr("kubeconfig_changed_at", knownvalue.Null()),
					rotationAttr("revoked_short_lived_kubeconfigs", knownvalue.ListExact([]knownvalue.Check{})),
					servedKubeconfigMatches(t, c),
				},
			},
			{
				// Nothing changed: nothing to do.
				Config:   rotationConfig(c.ID, `  keepers = { reason = "first" }`),
				PlanOnly: true,
			},
			{
				// Settings that do not force replacement update in place,
				// without rotating: no regenerate request reaches the Linode
				// API, and the served kubeconfig is the one from before.
				PreConfig: func() { regenerates = testEnv.Emulator.CountClusterRequests(c.ID, fakelke.EndpointRegenerate) },
				Config: rotationConfig(c.ID, `  keepers = { reason = "first" }
  verify  = false`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(rotationAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{rotationCheck(func(a rotationValues) error {
					if n := testEnv.Emulator.CountClusterRequests(c.ID, fakelke.EndpointRegenerate) - regenerates; n != 0 {
						return fmt.Errorf("an in-place update sent %d regenerate requests", n)
					}
					if got := sha256Hex(servedKubeconfig(t, c)); got != firstSHA {
						return fmt.Errorf("an in-place update changed the served kubeconfig")
					}
					if a.KubeconfigSHA256 != firstSHA || deref(a.RotatedAt) != firstAtStr {
						return fmt.Errorf("the state after an in-place update: sha kept %t, rotated_at kept %t",
							a.KubeconfigSHA256 == firstSHA, deref(a.RotatedAt) == firstAtStr)
					}
					return nil
				}), rotationAttr("verify", knownvalue.Bool(false))},
			},
			{
				// A keeper change rotates again.
				PreConfig: func() { oldKC = servedKubeconfig(t, c) },
				Config:    rotationConfig(c.ID, `  keepers = { reason = "someone left" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(rotationAddr, plancheck.ResourceActionReplace),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					rotationCheck(func(a rotationValues) error {
						if a.KubeconfigSHA256 == firstSHA {
							return fmt.Errorf("the keeper change did not produce a new kubeconfig")
						}
						if err := oldTokenRejected(t, oldKC); err != nil {
							return err
						}
						return nil
					}),
					servedKubeconfigMatches(t, c),
				},
			},
		},
	})
}

func TestAccRotation_rotateEveryReplacesWhenDue(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	clk := clocktesting.NewFakeClock(time.Now().UTC().Truncate(time.Second))
	providers := map[string]func() (tfprotov6.ProviderServer, error){
		"kubecreds": providerserver.NewProtocol6WithError(newWithClock("test", clk)()),
	}
	var firstAt time.Time
	config := rotationConfig(c.ID, `  rotate_every = "720h"`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providers,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{rotationCheck(func(a rotationValues) error {
					var err error
					if firstAt, err = time.Parse(time.RFC3339, deref(a.RotatedAt)); err != nil {
						return err
					}
					if !firstAt.Equal(clk.Now()) {
						return fmt.Errorf("rotated_at = %s, clock says %s", firstAt, clk.Now())
					}
					if want := firstAt.Add(720 * time.Hour).Format(time.RFC3339); deref(a.NextRotationAt) != want {
						return fmt.Errorf("next_rotation_at = %s, want %s", deref(a.NextRotationAt), want)
					}
					return nil
				})},
			},
			{
				// An hour before it is due: no change.
				PreConfig: func() { clk.Step(719 * time.Hour) },
				Config:    config,
				PlanOnly:  true,
			},
			{
				// Past due: the plan replaces the resource, and applying rotates.
				PreConfig: func() { clk.Step(2 * time.Hour) },
				Config:    config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(rotationAddr, plancheck.ResourceActionReplace),
				}},
				ConfigStateChecks: []statecheck.StateCheck{rotationCheck(func(a rotationValues) error {
					at, err := time.Parse(time.RFC3339, deref(a.RotatedAt))
					if err != nil {
						return err
					}
					if !at.Equal(clk.Now()) || len(a.DeletedSecrets) == 0 {
						return fmt.Errorf("no second rotation: rotated_at = %s, deleted_secrets = %v", at, a.DeletedSecrets)
					}
					return nil
				})},
			},
		},
	})
}

func TestAccRotation_importAdoptsWithoutRotating(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	var beforeSHA string
	var calls int
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					beforeSHA = sha256Hex(servedKubeconfig(t, c))
					calls = testEnv.Emulator.CountClusterRequests(c.ID, fakelke.EndpointRegenerate)
				},
				Config:             rotationConfig(c.ID, ""),
				ResourceName:       rotationAddr,
				ImportState:        true,
				ImportStateId:      strconv.Itoa(c.ID),
				ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if len(states) != 1 || states[0].Attributes["cluster_id"] != strconv.Itoa(c.ID) {
						return fmt.Errorf("imported %v", states)
					}
					if at := states[0].Attributes["rotated_at"]; at != "" {
						return fmt.Errorf("an imported rotation claims rotated_at = %s", at)
					}
					return nil
				},
			},
			{
				// Adopted as configured: nothing to change, nothing rotated.
				Config: rotationConfig(c.ID, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				Check: func(*terraform.State) error {
					if sha256Hex(servedKubeconfig(t, c)) != beforeSHA || testEnv.Emulator.CountClusterRequests(c.ID, fakelke.EndpointRegenerate) != calls {
						return fmt.Errorf("import rotated the cluster")
					}
					return nil
				},
			},
			{
				Config:        rotationConfig(c.ID, ""),
				ResourceName:  rotationAddr,
				ImportState:   true,
				ImportStateId: "not-a-number",
				ExpectError:   regexp.MustCompile(`Import a rotation by the cluster's numeric id`),
			},
		},
	})
}

// TestAccRotation_importMatchesWhatCreateRecorded: importing a cluster this
// configuration rotated gives back its settings and, after the refresh, the
// fingerprint of the kubeconfig the rotation left. What only a rotation
// records (when, what it deleted and proved) is null or empty after import.
func TestAccRotation_importMatchesWhatCreateRecorded(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	config := rotationConfig(c.ID, `  verify = false`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{Config: config},
			{
				Config:            config,
				ResourceName:      rotationAddr,
				ImportState:       true,
				ImportStateId:     strconv.Itoa(c.ID),
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{
					"verify", // import takes the default; the configuration sets false
					"rotated_at", "deleted_secrets", "revoked_short_lived_kubeconfigs", "nodes_verified", "timeouts",
				},
			},
		},
	})
}

func TestAccRotation_clusterDeletedOutOfBandLeavesTheState(t *testing.T) {
	t.Parallel()
	c, err := testEnv.AddCluster(t.Context(), fakelke.ClusterSpec{Pools: []int{1}})
	if err != nil {
		t.Fatalf("cannot start a cluster to delete: %v", err)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				Config: rotationConfig(c.ID, `  verify = false`),
			},
			{
				PreConfig: func() {
					if err := testEnv.DeleteCluster(c.ID); err != nil {
						t.Fatal(err)
					}
				},
				RefreshState:       true,
				ExpectNonEmptyPlan: true, // the configuration still asks for a rotation of a cluster that is gone
				Check: func(s *terraform.State) error {
					if attrs(s) != nil {
						return fmt.Errorf("the rotation of a deleted cluster is still in the state")
					}
					return nil
				},
			},
		},
	})
}

// TestAccRotation_a404ThatIsNotTheClustersKeepsTheState: only the Linode API's own 404 for the cluster removes it
// from the state: a CDN's HTML 404 page, or a JSON 404 while the API still
// lists the cluster (a base URL that names the wrong place), fails the
// refresh with an error that keeps the rotation; once the API answers
// again the plan is empty.
func TestAccRotation_a404ThatIsNotTheClustersKeepsTheState(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	t.Cleanup(func() { testEnv.Emulator.ClearClusterFaults(c.ID) })
	config := rotationConfig(c.ID, "  verify = false\n")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{Config: config},
			{
				PreConfig: func() {
					testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.EndpointGetCluster, fakelke.Fault{Status: http.StatusNotFound})
				},
				RefreshState: true,
				ExpectError:  regexp.MustCompile(`(?s)Cannot\s+read\s+LKE\s+cluster.*the\s+clusters\s+the\s+token\s+lists\s+include\s+it`),
			},
			{
				PreConfig: func() {
					testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.EndpointGetCluster, fakelke.Fault{Status: http.StatusNotFound, HTML: true})
				},
				RefreshState: true,
				ExpectError:  regexp.MustCompile(`(?s)Cannot\s+read\s+LKE\s+cluster.*not\s+come\s+from\s+the\s+Linode\s+API`),
			},
			// Still in the state: the plan is empty (a dropped rotation would
			// plan a new one).
			{Config: config, PlanOnly: true},
		},
	})
}

// TestAccRotation_refreshTakesNoEmptyKubeconfigForARotation: a refresh whose
// kubeconfig answer is 200 {} (an empty kubeconfig, as linodego decodes it)
// or 500 {} (no error at all, for linodego alone) records nothing: no
// "rotated elsewhere", the recorded fingerprint kept.
func TestAccRotation_refreshTakesNoEmptyKubeconfigForARotation(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	t.Cleanup(func() { testEnv.Emulator.ClearClusterFaults(c.ID) })
	config := rotationConfig(c.ID, "  verify = false\n")
	var recorded string
	unchanged := func(s *terraform.State) error {
		a := attrs(s)
		if a == nil {
			return fmt.Errorf("the rotation left the state")
		}
		if a["kubeconfig_changed_at"] != "" || a["kubeconfig_sha256"] != recorded {
			return fmt.Errorf("refresh took an empty kubeconfig answer for a rotation made elsewhere: kubeconfig_sha256 %s (was %s), kubeconfig_changed_at %q",
				a["kubeconfig_sha256"], recorded, a["kubeconfig_changed_at"])
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{Config: config, Check: func(s *terraform.State) error { recorded = attrs(s)["kubeconfig_sha256"]; return nil }},
			{
				PreConfig: func() {
					testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.EndpointGetKubeconfig, fakelke.Fault{Status: http.StatusOK, Body: "{}"})
				},
				RefreshState: true,
				Check:        unchanged,
			},
			{
				PreConfig: func() {
					testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.EndpointGetKubeconfig, fakelke.Fault{Status: http.StatusInternalServerError, Body: "{}"})
				},
				RefreshState: true,
				Check:        unchanged,
			},
		},
	})
}

func TestAccRotation_kubeconfigOnly(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	var before map[string]string
	var oldKC []byte
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			PreConfig: func() {
				before = tokenSecrets(t, c, "kube-system")
				oldKC = servedKubeconfig(t, c)
			},
			Config: rotationConfig(c.ID, `  regenerate_service_token = false`),
			ConfigStateChecks: []statecheck.StateCheck{
				rotationCheck(func(a rotationValues) error {
					deleted := a.DeletedSecrets
					if len(deleted) != 1 || before[deleted[0]] != fakelke.AdminServiceAccount {
						return fmt.Errorf("deleted_secrets = %v; want only the lke-admin secret", deleted)
					}
					after := tokenSecrets(t, c, "kube-system")
					for id, sa := range before {
						if sa != fakelke.AdminServiceAccount && after[id] != sa {
							return fmt.Errorf("control-plane token secret %s (%s) was replaced by a kubeconfig-only rotation", id, sa)
						}
					}
					if err := oldTokenRejected(t, oldKC); err != nil {
						return err
					}
					return nil
				}),
				servedKubeconfigMatches(t, c),
			},
		}},
	})
}

func TestAccRotation_serviceTokenOnly(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	var before map[string]string
	var oldKC []byte
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			PreConfig: func() {
				before = tokenSecrets(t, c, "kube-system")
				oldKC = servedKubeconfig(t, c)
			},
			Config: rotationConfig(c.ID, `  regenerate_kubeconfig = false`),
			ConfigStateChecks: []statecheck.StateCheck{rotationCheck(func(a rotationValues) error {
				if a.KubeconfigSHA256 != sha256Hex(oldKC) {
					return fmt.Errorf("a service-token-only rotation changed the kubeconfig")
				}
				if err := kubeconfigWorks(t, oldKC); err != nil {
					return fmt.Errorf("the admin kubeconfig stopped working after a service-token-only rotation: %w", err)
				}
				deleted := a.DeletedSecrets
				after := tokenSecrets(t, c, "kube-system")
				bySA := map[string]string{}
				for id, sa := range after {
					bySA[sa] = id
				}
				for id, sa := range before {
					switch {
					case sa == fakelke.AdminServiceAccount && after[id] != sa:
						return fmt.Errorf("lke-admin's secret %s was replaced", id)
					case sa != fakelke.AdminServiceAccount && (!slices.Contains(deleted, id) || bySA[sa] == "" || bySA[sa] == id):
						return fmt.Errorf("%s's token secret %s was not replaced (deleted_secrets %v, now %s)", sa, id, deleted, bySA[sa])
					}
				}
				return nil
			})},
		}},
	})
}

func TestAccRotation_regeneratingNothingIsRejectedAtValidate(t *testing.T) {
	t.Parallel()
	// A cluster id nobody else uses: any call about it would be this test's.
	const id = 424242
	calls := testEnv.Emulator.CountClusterRequests(id, "")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config: rotationConfig(id, `  regenerate_kubeconfig    = false
  regenerate_service_token = false`),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)Nothing to regenerate.*regenerate_kubeconfig and regenerate_service_token are both\s+false`),
		}},
	})
	if n := testEnv.Emulator.CountClusterRequests(id, "") - calls; n != 0 {
		t.Errorf("a rejected configuration made %d Linode API calls", n)
	}
}

func TestAccRotation_restartWorkloadsTouchesOnlyTheChosen(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	cs := adminClient(t, c)
	ctx := t.Context()
	for _, ns := range []string{"apps", "other"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	labels := map[string]string{"app": "x"}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := cs.AppsV1().Deployments("apps").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{Selector: sel, Template: template}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = cs.AppsV1().Deployments("other").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{Selector: sel, Template: template}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = cs.AppsV1().DaemonSets("apps").Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"}, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: template}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = cs.AppsV1().StatefulSets("apps").Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: template}}, metav1.CreateOptions{})
	mustCreate(err)

	restartedAt := func(kind, ns, name string) string {
		var a map[string]string
		var err error
		switch kind {
		case "deployment":
			var d *appsv1.Deployment
			d, err = cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				a = d.Spec.Template.Annotations
			}
		case "daemonset":
			var d *appsv1.DaemonSet
			d, err = cs.AppsV1().DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				a = d.Spec.Template.Annotations
			}
		case "statefulset":
			var d *appsv1.StatefulSet
			d, err = cs.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				a = d.Spec.Template.Annotations
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		return a["kubectl.kubernetes.io/restartedAt"]
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config: rotationConfig(c.ID, `  restart_workloads {
    namespaces = ["apps"]
    kinds      = ["deployment", "statefulset"]
  }`),
			ConfigStateChecks: []statecheck.StateCheck{rotationCheck(func(a rotationValues) error {
				for _, w := range [][3]string{{"deployment", "apps", "web"}, {"statefulset", "apps", "db"}} {
					if at := restartedAt(w[0], w[1], w[2]); at == "" {
						return fmt.Errorf("%s %s/%s was not restarted", w[0], w[1], w[2])
					} else if _, err := time.Parse(time.RFC3339, at); err != nil {
						return fmt.Errorf("restartedAt %q is not RFC 3339 as kubectl writes it", at)
					}
				}
				for _, w := range [][3]string{{"daemonset", "apps", "agent"}, {"deployment", "other", "web"}} {
					if at := restartedAt(w[0], w[1], w[2]); at != "" {
						return fmt.Errorf("%s %s/%s was restarted but not chosen", w[0], w[1], w[2])
					}
				}
				return nil
			})},
		}},
	})
}

func TestAccRotation_recycleNodesEndsWithNewReadyNodes(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	var before []string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			PreConfig: func() { before = c.NodeNames() },
			Config:    rotationConfig(c.ID, `  recycle_nodes = true`),
			Check: func(*terraform.State) error {
				nodes, err := adminClient(t, c).CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
				if err != nil {
					return err
				}
				if len(nodes.Items) != len(before) {
					return fmt.Errorf("%d nodes after recycling, %d before", len(nodes.Items), len(before))
				}
				for _, n := range nodes.Items {
					if slices.Contains(before, n.Name) {
						return fmt.Errorf("node %s was not recycled", n.Name)
					}
					ready := false
					for _, cond := range n.Status.Conditions {
						ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
					}
					if !ready {
						return fmt.Errorf("recycled node %s is not Ready", n.Name)
					}
				}
				return nil
			},
		}},
	})
}

func TestAccRotation_waitsThroughKubeconfigNotYetAvailable(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	c.SetKubeconfigDelay(2 * time.Second)
	// And a few 503s on the very first fetch, as if a regeneration were under way.
	notReady := fakelke.Fault{Status: http.StatusServiceUnavailable, Reason: "Cluster kubeconfig is not yet available. Please try again later."}
	testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.EndpointGetKubeconfig, notReady, notReady, notReady)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config: rotationConfig(c.ID, ""),
			ConfigStateChecks: []statecheck.StateCheck{
				servedKubeconfigMatches(t, c),
				rotationCheck(func(rotationValues) error {
					answered503 := 0
					for _, r := range testEnv.Emulator.Requests() {
						if r.ClusterID == c.ID && r.Endpoint == fakelke.EndpointGetKubeconfig && r.Status == http.StatusServiceUnavailable {
							answered503++
						}
					}
					if answered503 < 6 {
						return fmt.Errorf("the kubeconfig was answered 503 only %d times; the test meant several polls", answered503)
					}
					return nil
				}),
			},
		}},
	})
}

// A regeneration that keeps failing ends the apply after the batch of
// secrets is deleted; with recreate_admin_service_account = false the
// served kubeconfig still works (its own secret is deleted only once the
// new one is served), and the next apply finishes.
func TestAccRotation_failedRegenerationLeavesAWayInAndTheNextApplyFinishes(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	var oldKC []byte
	failing := make([]fakelke.Fault, 20)
	for i := range failing {
		failing[i] = fakelke.Fault{Status: http.StatusInternalServerError}
	}
	// With lke-admin kept, the secret behind the served kubeconfig is the
	// one thing the rotation spares until the new kubeconfig is served.
	// (With the default, the re-created account ends it at once: the
	// fault matrix's persistent 500 on the regeneration tests that gap.)
	config := `
provider "kubecreds" {
  max_retries = 1
}
` + rotationConfig(c.ID, "  recreate_admin_service_account = false")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					oldKC = servedKubeconfig(t, c)
					testEnv.Emulator.InjectClusterFaults(c.ID, fakelke.EndpointRegenerate, failing...)
				},
				Config: config,
				ExpectError: regexp.MustCompile(`(?s)regenerate kubeconfig and service token for cluster ` + strconv.Itoa(c.ID) +
					`: \[500\] Internal\s+Server\s+Error\s+\(3\s+secrets\s+deleted;\s+run\s+apply\s+again\s+to\s+resume\)`),
			},
			{
				PreConfig: func() {
					testEnv.Emulator.ClearClusterFaults(c.ID)
					// Past the API server's 10 s token cache: the old kubeconfig
					// still works because its secret was kept.
					time.Sleep(11 * time.Second)
					if err := kubeconfigWorks(t, oldKC); err != nil {
						t.Fatalf("after the failed apply the served kubeconfig no longer works: %v", err)
					}
				},
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					servedKubeconfigMatches(t, c),
					rotationAttr("rotated_at", knownvalue.NotNull()),
					rotationCheck(func(rotationValues) error { return oldTokenRejected(t, oldKC) }),
				},
			},
		},
	})
}

// When the served kubeconfig's secret is gone already (deleted by hand),
// the rotation cannot list or delete anything with it: it regenerates,
// verifies, and warns that it resumed.
// killServedKubeconfig does what an interrupted run (or a person following
// the runbook by hand) leaves: the served kubeconfig's lke-admin secret
// deleted, its token rejected.
func killServedKubeconfig(t *testing.T, c *fakelke.Cluster, served []byte) {
	t.Helper()
	interruptedRunHere(t, c)
	for name, sa := range tokenSecrets(t, c, "kube-system") {
		if sa == "lke-admin" {
			ns, n, _ := strings.Cut(name, "/")
			if err := adminClient(t, c).CoreV1().Secrets(ns).Delete(t.Context(), n, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := waitRejected(t, served, 20*time.Second); err != nil {
		t.Fatalf("old token still accepted 20s after its secret was deleted")
	}
}

// TestAccRotation_resumesWhenTheServedKubeconfigIsAlreadyRejected: an
// earlier run (or a person) deleted the served kubeconfig's secret and
// stopped; the secrets of a second namespace are still there. The resumed
// rotation regenerates, then finishes the job in every namespace.
func TestAccRotation_resumesWhenTheServedKubeconfigIsAlreadyRejected(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	var oldKC []byte
	var left string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			PreConfig: func() {
				oldKC = servedKubeconfig(t, c)
				left = createTokenSecret(t, c, "ci", "deployer")
				killServedKubeconfig(t, c, oldKC)
			},
			Config: rotationConfig(c.ID, `  namespaces = ["kube-system", "ci"]`),
			ConfigStateChecks: []statecheck.StateCheck{
				servedKubeconfigMatches(t, c),
				rotationAttr("rotated_at", knownvalue.NotNull()),
				rotationCheck(func(a rotationValues) error {
					if !slices.Contains(a.DeletedSecrets, left) {
						return fmt.Errorf("deleted_secrets %v does not name %s, left by the interrupted run", a.DeletedSecrets, left)
					}
					if remaining := tokenSecrets(t, c, "ci"); len(remaining) != 0 {
						return fmt.Errorf("the resumed rotation left token secrets in ci: %v", sortedKeys(remaining))
					}
					return nil
				}),
			},
		}},
	})
}

// TestAccRotation_resumeWarningSaysWhatWasFoundAndDone runs the resumed
// rotation through the built provider, where terraform prints the warning.
func TestAccRotation_resumeWarningSaysWhatWasFoundAndDone(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	oldKC := servedKubeconfig(t, c)
	createTokenSecret(t, c, "ci", "deployer")
	createTokenSecret(t, c, "ci", "reporter")
	killServedKubeconfig(t, c, oldKC)
	dir := t.TempDir()
	writeConfig(t, dir, withKubecreds(rotationConfig(c.ID, `  namespaces = ["kube-system", "ci"]`)))
	out, err := terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color")
	if err != nil {
		t.Fatalf("the resumed rotation failed: %v\n%s", err, out)
	}
	for _, want := range []string{"Rotation resumed", "already rejected", "(ci, kube-system)"} {
		if !wrapped(want).MatchString(out) {
			t.Errorf("the warning does not say %q:\n%s", want, out)
		}
	}
	// Other tests may have left token secrets in this cluster's kube-system: at least ci's two.
	m := regexp.MustCompile(`deleted\s+the\s+(\d+)\s+the\s+earlier\s+run\s+had\s+left`).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("the warning does not say how many secrets it deleted:\n%s", out)
	} else if n, _ := strconv.Atoi(m[1]); n < 2 {
		t.Errorf("the warning does not say it deleted the (at least 2) secrets left in ci:\n%s", out)
	}
	if remaining := tokenSecrets(t, c, "ci"); len(remaining) != 0 {
		t.Errorf("the resumed rotation left token secrets in ci: %v", sortedKeys(remaining))
	}
}

func TestAccRotation_linodeErrorsAreExplained(t *testing.T) {
	// Sequential: it changes the environment.
	t.Setenv("LINODE_TOKEN", "a-token-the-api-rejects")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config:      rotationConfig(testEnv.Clusters()[0].ID, ""),
			ExpectError: regexp.MustCompile(`(?s)get cluster for cluster \d+: \[401\] Invalid Token.*this\s+run\s+had\s+changed\s+nothing.*linode_token or\s+the\s+LINODE_TOKEN`),
		}},
	})
	t.Setenv("LINODE_TOKEN", testEnv.Emulator.Token)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config:      rotationConfig(987654, ""),
			ExpectError: regexp.MustCompile(`(?s)LKE cluster 987654 does not exist, or the token cannot see it`),
		}},
	})
}

// TestAccRotation_fallsBackToTheRunbookOrderWhenLKEReusesTheAdminSecret:
// LKE rebuilds the regenerated kubeconfig from the lke-admin secret that
// still exists, so its token does not change until that secret is gone. The
// rotation stops waiting after a bound, deletes the secret (the runbook's
// order), waits again, and says so. Only with lke-admin kept: re-created,
// its old secret is gone (the token controller deletes it) before the
// regeneration, so LKE has nothing to reuse (TestAccOffboarding and the
// other defaults cover that path).
func TestAccRotation_fallsBackToTheRunbookOrderWhenLKEReusesTheAdminSecret(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	c.SetReuseAdminSecret(true)
	t.Cleanup(func() { c.SetReuseAdminSecret(false) })
	oldKC := servedKubeconfig(t, c)
	dir := t.TempDir()
	writeConfig(t, dir, withKubecreds(rotationConfig(c.ID, "  recreate_admin_service_account = false")))
	out, err := terraformCmd(t, dir, nil, "apply", "-auto-approve", "-input=false", "-no-color")
	if err != nil {
		t.Fatalf("the rotation failed: %v\n%s", err, out)
	}
	if !wrapped("Old admin secret deleted before the new kubeconfig was served").MatchString(out) {
		t.Errorf("the apply does not warn that it fell back to the runbook's order:\n%s", out)
	}
	newKC := servedKubeconfig(t, c)
	if kubeconfigToken(t, newKC) == kubeconfigToken(t, oldKC) {
		t.Fatalf("the served kubeconfig still has the old token")
	}
	if err := kubeconfigWorks(t, newKC); err != nil {
		t.Errorf("the new kubeconfig does not work: %v", err)
	}
	if err := oldTokenRejected(t, oldKC); err != nil {
		t.Error(err)
	}
}

// TestAccRotation_tokenWithoutTheLKEWriteScopeIsExplained: a token limited to
// lke:read_only can read the cluster but neither its kubeconfig nor
// regenerate. The rotation finds that out from the scopes the API reports
// (X-OAuth-Scopes) before it changes anything, without sending a write to
// learn it (no regenerate request at all; the secrets are all there and
// the old kubeconfig still works); the error names lke:read_write, and the
// next apply with a full token converges.
func TestAccRotation_tokenWithoutTheLKEWriteScopeIsExplained(t *testing.T) {
	// Sequential: it changes the environment.
	c := takeCluster(t)
	t.Setenv("LINODE_TOKEN", testEnv.Emulator.ScopedToken(fakelke.ScopeLKEReadOnly))
	var oldKC []byte
	regenerates := 0
	secretsBefore := tokenSecrets(t, c, "kube-system")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			PreConfig: func() {
				oldKC = servedKubeconfig(t, c)
				regenerates = testEnv.Emulator.CountClusterRequests(c.ID, fakelke.EndpointRegenerate)
			},
			Config:      rotationConfig(c.ID, ""),
			ExpectError: regexp.MustCompile(`(?s)get\s+cluster\s+for\s+cluster\s+\d+:\s+the\s+token's\s+OAuth\s+scopes\s+\("lke:read_only"\)\s+do\s+not\s+include\s+lke:read_write.*this\s+run\s+changed\s+nothing`),
		}},
	})
	t.Setenv("LINODE_TOKEN", testEnv.Emulator.Token)
	if n := testEnv.Emulator.CountClusterRequests(c.ID, fakelke.EndpointRegenerate) - regenerates; n != 0 {
		t.Fatalf("%d regenerate requests were sent to learn the token's scope; want none", n)
	}
	// Nothing was deleted: the kubeconfig from before still works, and no
	// token secret is gone.
	if err := kubeconfigWorks(t, oldKC); err != nil {
		t.Fatalf("after the refused rotation the old kubeconfig no longer works: %v", err)
	}
	if got := tokenSecrets(t, c, "kube-system"); !maps.Equal(got, secretsBefore) {
		t.Fatalf("token secrets changed although the rotation was refused: before %v, after %v", sortedKeys(secretsBefore), sortedKeys(got))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config:            rotationConfig(c.ID, ""),
			ConfigStateChecks: []statecheck.StateCheck{servedKubeconfigMatches(t, c)},
		}},
	})
}

// TestAccRotation_waitsOutTheControlPlaneRestart: regenerating the service
// token of a standard cluster makes its API endpoint answer 503 for a while
// (LKE restarts the control-plane components); the rotation waits for it
// and finishes. A high-availability cluster has no outage.
func TestAccRotation_waitsOutTheControlPlaneRestart(t *testing.T) {
	t.Parallel() // its cases join the pool of parallel tests (takeCluster)
	for _, ha := range []bool{false, true} {
		t.Run(fmt.Sprintf("high availability %t", ha), func(t *testing.T) {
			t.Parallel()
			c := takeCluster(t)
			c.SetHighAvailability(ha)
			t.Cleanup(func() { c.SetHighAvailability(false) })
			start := time.Now()
			outage := func() int {
				n := 0
				for _, r := range testEnv.Emulator.KubeRequests() {
					if r.ClusterID == c.ID && r.At.After(start) && r.Status == http.StatusServiceUnavailable {
						n++
					}
				}
				return n
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: testProviders,
				Steps: []resource.TestStep{{
					Config: rotationConfig(c.ID, ""),
					ConfigStateChecks: []statecheck.StateCheck{
						servedKubeconfigMatches(t, c),
						rotationCheck(func(rotationValues) error {
							if n := outage(); ha && n != 0 {
								return fmt.Errorf("a high-availability cluster answered 503 %d times", n)
							} else if !ha && n == 0 {
								return fmt.Errorf("the standard cluster's outage was never met: the test proves nothing")
							}
							return nil
						}),
					},
				}},
			})
		})
	}
}

// TestAccRotation_waitsThroughAStaleKubeconfig: after the regeneration the
// Linode API first keeps serving the previous kubeconfig, then "not yet
// available", then the new one. The rotation accepts only a kubeconfig with
// a new token.
func TestAccRotation_waitsThroughAStaleKubeconfig(t *testing.T) {
	t.Parallel()
	c := takeCluster(t)
	c.SetStaleWindow(2 * time.Second)
	c.SetKubeconfigDelay(time.Second)
	t.Cleanup(func() { c.SetStaleWindow(0) })
	oldKC := servedKubeconfig(t, c)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProviders,
		Steps: []resource.TestStep{{
			Config: rotationConfig(c.ID, ""),
			ConfigStateChecks: []statecheck.StateCheck{
				servedKubeconfigMatches(t, c),
				rotationCheck(func(a rotationValues) error {
					if a.KubeconfigSHA256 == sha256Hex(oldKC) {
						return fmt.Errorf("the rotation recorded the stale kubeconfig")
					}
					return oldTokenRejected(t, oldKC)
				}),
			},
		}},
	})
}

// interruptedRunHere leaves what a run on this machine that stopped
// unfinished leaves: its holder file (lke.HolderFile), naming a process
// that is gone. The next run then resumes at once, instead of waiting for
// a rotation under way elsewhere (TestAccRotationLock_byHandWaitsThenResumes
// covers that wait).
func interruptedRunHere(t *testing.T, c *fakelke.Cluster) {
	t.Helper()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("%d 1\nrotation of LKE cluster %d by a run that stopped\n", gone.Process.Pid, c.ID)
	if err := os.WriteFile(lke.HolderFile(c.ID), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(lke.HolderFile(c.ID)) })
}
