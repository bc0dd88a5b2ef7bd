package lke

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// Service accounts an LKE cluster has in kube-system. lke-admin backs the
// kubeconfig the Linode API serves; the others are the control-plane
// components' tokens that "regenerate service token" replaces.
const (
	AdminServiceAccount = "lke-admin"
)

// ControlPlaneServiceAccounts are replaced by regenerating the service token.
var ControlPlaneServiceAccounts = []string{"ccm-user", "cluster-autoscaler-user", "kubernetes-dashboard-lke-user"}

// Cluster is one emulated LKE cluster: the Linode-side record (pools, the
// served kubeconfig) backed by a real kube-apiserver and controller manager.
type Cluster struct {
	ID         int
	Label      string
	Region     string
	K8sVersion string
	Tier       string
	Created    time.Time

	cp     *controlPlane
	client kubernetes.Interface
	ctx    context.Context // ends when the cluster is deleted or the environment closes
	cancel context.CancelFunc
	bg     sync.WaitGroup

	mu              sync.Mutex
	updated         time.Time
	kubeconfig      []byte    // what GET /kubeconfig serves once ready
	adminTokens     []string  // the tokens of every kubeconfig made
	lastRegenAt     time.Time // GET /kubeconfig answers 503 until kubeconfigDelay after this
	pendingRegens   int       // regenerations still replacing secrets
	regenDoneAt     time.Time // when the last regeneration finished replacing secrets
	kubeconfigDelay time.Duration
	// reuseAdminSecret: LKE rebuilds the kubeconfig from the lke-admin token
	// secret that still exists; a new token appears only once it is gone.
	reuseAdminSecret bool
	highAvailability bool
	staleWindow      time.Duration // after a regeneration, the previous kubeconfig is still served this long
	staleKubeconfig  []byte        // the kubeconfig served before the last regeneration
	// The stale window and delay in force when the last regeneration was
	// asked for. Setting longer ones applies from the next regeneration on,
	// not to one already served; setting shorter ones also shortens the
	// wait under way.
	regenStale, regenDelay time.Duration
	outage                 time.Duration // after a service-token regeneration (standard clusters)
	outageUntil            time.Time     // the API endpoint answers 503 until then
	outageStarted          chan struct{} // closed when an outage starts (then replaced): cuts requests in flight
	recycleDelay           time.Duration
	// actDelay: a regeneration shows nothing for this long (the previous
	// kubeconfig is served, no secret is replaced), as a slower LKE whose
	// regeneration is queued before it acts.
	actDelay        time.Duration
	pools           []*nodePool
	adminKubeconfig string
	proxy           *kubeProxy // the API endpoint kubeconfigs from the Linode API name
	extraTokens     int        // more auto-generated token secrets in kube-system
	regenerations   int        // regenerations the API acted on
	recycles        int        // recycles the API acted on
	// edit, when set, changes every kubeconfig GET /kubeconfig serves: a
	// kubeconfig the real API would never serve (an exec plugin, a token
	// file), to show the provider refuses it.
	edit func(*clientcmdapi.Config)
}

// Regenerations counts the regenerations (POST /regenerate, DELETE
// /kubeconfig or /servicetoken) the API acted on, answered or not.
func (c *Cluster) Regenerations() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.regenerations
}

// Recycles counts the recycles the API acted on, answered or not.
func (c *Cluster) Recycles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recycles
}

func (c *Cluster) startProxy(emulator *Emulator) (*kubeProxy, error) {
	serving, err := tls.LoadX509KeyPair(c.cp.proxyCert, c.cp.proxyKey)
	if err != nil {
		return nil, err
	}
	front, err := tls.LoadX509KeyPair(c.cp.frontProxyCert, c.cp.frontProxyKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.cp.ca.Cert)
	return startKubeProxy(c.ID, emulator, c.cp.host, serving, pool, front)
}

type nodePool struct {
	ID    int
	Type  string
	Tags  []string
	Nodes []*poolNode
}

type poolNode struct {
	ID         string // Linode's pool-node id, e.g. 855494-25e3fe070000
	InstanceID int
	Status     string // ready | not_ready
	Name       string // the Kubernetes Node name, e.g. lke433107-855494-1a2b3c4d
}

// ClusterSpec shapes a new emulated cluster.
type ClusterSpec struct {
	Label string
	// Pools lists node counts per pool; default one pool of 3 nodes.
	Pools []int
	// NoCSRSigning runs the cluster without the controller that signs
	// CertificateSigningRequests: approved requests are never issued.
	NoCSRSigning bool
}

// DefaultMaxTokenExpiration is the API servers' --service-account-max-token-expiration
// unless Options say otherwise.
const DefaultMaxTokenExpiration = 24 * time.Hour

func (env *Environment) newCluster(ctx context.Context, id int, spec ClusterSpec) (_ *Cluster, err error) {
	if spec.Label == "" {
		spec.Label = "kubecreds-local-" + strconv.Itoa(id)
	}
	if len(spec.Pools) == 0 {
		spec.Pools = []int{3}
	}
	dir := filepath.Join(env.Dir, "lke"+strconv.Itoa(id))
	limits := cpLimits{maxTokenExpiration: max(env.opts.MaxTokenExpiration, 0), noCSRSigning: spec.NoCSRSigning || env.opts.NoCSRSigning}
	cp, err := startControlPlane(ctx, env.base.Binary, dir, env.base.EtcdURL(), "/lke"+strconv.Itoa(id), limits)
	if err != nil {
		return nil, fmt.Errorf("cluster %d: %w", id, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	cctx, cancel := context.WithCancel(env.base.Context())
	c := &Cluster{
		ID: id, Label: spec.Label, Region: "us-ord", K8sVersion: "1.37", Tier: "standard",
		Created: now, updated: now, cp: cp, ctx: cctx, cancel: cancel,
		kubeconfigDelay:  env.opts.KubeconfigDelay,
		reuseAdminSecret: env.opts.ReuseAdminSecret,
		outage:           env.opts.ServiceTokenOutage,
		staleWindow:      max(env.opts.StaleWindow, 0),
		recycleDelay:     env.opts.RecycleDelay,
		adminKubeconfig:  filepath.Join(dir, "admin.kubeconfig"),
		extraTokens:      env.opts.ExtraSystemTokens,
	}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if c.client, err = kubernetes.NewForConfig(cp.admin); err != nil {
		return nil, err
	}
	if err := fakecloud.WriteClientCertKubeconfig(c.adminKubeconfig, "lke"+strconv.Itoa(id)+"-local-admin", cp.host, cp.ca.CertPEM(),
		cp.admin.CertFile, cp.admin.KeyFile); err != nil {
		return nil, err
	}
	if c.proxy, err = c.startProxy(env.Emulator); err != nil {
		return nil, err
	}
	for i, count := range spec.Pools {
		p := &nodePool{ID: id*10 + i + 1, Type: "g6-standard-2", Tags: []string{}}
		for range count {
			p.Nodes = append(p.Nodes, c.newPoolNode(p))
		}
		c.pools = append(c.pools, p)
	}
	if err := c.bootstrap(ctx); err != nil {
		return nil, fmt.Errorf("cluster %d: bootstrap: %w\n%s", id, err, c.LogTail())
	}
	return c, nil
}

// bootstrap creates what LKE puts in a new cluster: the kube-system service
// accounts with legacy token secrets, lke-admin bound to cluster-admin, a
// Ready Node per pool node, and the kubeconfig the API serves.
func (c *Cluster) bootstrap(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for _, sa := range append([]string{AdminServiceAccount}, ControlPlaneServiceAccounts...) {
		_, err := c.client.CoreV1().ServiceAccounts(metav1.NamespaceSystem).Create(ctx,
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create service account %s: %w", sa, err)
		}
	}
	_, err := c.client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "lke-admin-crb"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: AdminServiceAccount, Namespace: metav1.NamespaceSystem}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bind lke-admin: %w", err)
	}
	token, err := c.replaceTokenSecret(ctx, AdminServiceAccount)
	if err != nil {
		return err
	}
	for _, sa := range ControlPlaneServiceAccounts {
		if _, err := c.replaceTokenSecret(ctx, sa); err != nil {
			return err
		}
	}
	for i := range c.extraTokens {
		sa := "lke-component-" + strconv.Itoa(i+1)
		_, err := c.client.CoreV1().ServiceAccounts(metav1.NamespaceSystem).Create(ctx,
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create service account %s: %w", sa, err)
		}
		if _, err := c.replaceTokenSecret(ctx, sa); err != nil {
			return err
		}
	}
	for _, p := range c.pools {
		for _, n := range p.Nodes {
			if err := c.createNode(ctx, p, n, true); err != nil {
				return err
			}
		}
	}
	kc, err := lkeKubeconfig(c.ID, c.proxy.url, c.cp.ca.CertPEM(), token)
	if err != nil {
		return err
	}
	c.kubeconfig = kc
	c.adminTokens = append(c.adminTokens, token)
	return nil
}

// servedTokens are the admin tokens of every kubeconfig the cluster has
// served (or will, once a regeneration finishes).
func (c *Cluster) servedTokens() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.adminTokens...)
}

// replaceTokenSecret deletes the service account's legacy token secrets,
// creates a new one, and waits for the token controller to fill it.
func (c *Cluster) replaceTokenSecret(ctx context.Context, serviceAccount string) (string, error) {
	secrets := c.client.CoreV1().Secrets(metav1.NamespaceSystem)
	list, err := secrets.List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String(),
	})
	if err != nil {
		return "", fmt.Errorf("list token secrets: %w", err)
	}
	for _, s := range list.Items {
		if s.Annotations[corev1.ServiceAccountNameKey] != serviceAccount {
			continue
		}
		if err := secrets.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("delete secret %s: %w", s.Name, err)
		}
	}
	created, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: serviceAccount + "-token-",
			Annotations:  map[string]string{corev1.ServiceAccountNameKey: serviceAccount},
		},
		Type: corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create token secret for %s: %w", serviceAccount, err)
	}
	var token string
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := secrets.Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // the secret may not be readable yet: keep polling until the token controller fills it
		}
		token = string(s.Data[corev1.ServiceAccountTokenKey])
		return token != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("token controller did not fill secret %s: %w", created.Name, err)
	}
	return token, nil
}

func (c *Cluster) newPoolNode(p *nodePool) *poolNode {
	suffix := fakecloud.RandomHex(4)
	return &poolNode{
		ID:         fmt.Sprintf("%d-%s0000", p.ID, suffix),
		InstanceID: 90000000 + int(randomUint16())*100 + len(p.Nodes),
		Status:     "ready",
		Name:       fmt.Sprintf("lke%d-%d-%s", c.ID, p.ID, suffix),
	}
}

// createNode creates the Node object of a pool node, Ready or (as a node
// still joining) NotReady.
func (c *Cluster) createNode(ctx context.Context, p *nodePool, n *poolNode, ready bool) error {
	node, err := c.client.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
			"lke.linode.com/pool-id":           strconv.Itoa(p.ID),
			"node.kubernetes.io/instance-type": p.Type,
			"kubernetes.io/hostname":           n.Name,
		}},
		Spec: corev1.NodeSpec{ProviderID: "linode://" + strconv.Itoa(n.InstanceID)},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	node.Status.NodeInfo.KubeletVersion = "v1.37.2+lke1"
	node.Status.Conditions = []corev1.NodeCondition{readyCondition(ready)}
	if _, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set the Ready condition of node %s: %w", n.Name, err)
	}
	return nil
}

func readyCondition(ready bool) corev1.NodeCondition {
	now := metav1.Now()
	if ready {
		return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady",
		Message: "container runtime network not ready", LastHeartbeatTime: now, LastTransitionTime: now}
}

// setNodeReady marks a joining node Ready.
func (c *Cluster) setNodeReady(ctx context.Context, name string) error {
	node, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", name, err)
	}
	node.Status.Conditions = []corev1.NodeCondition{readyCondition(true)}
	if _, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("mark node %s Ready: %w", name, err)
	}
	return nil
}

// regenerate starts what POST /regenerate does: the Linode API answers at
// once, replaces the chosen secrets in the background, and serves 503 for the
// kubeconfig until the replacement is done and the configured delay has passed.
func (c *Cluster) regenerate(kubeconfig, serviceToken bool) {
	c.mu.Lock()
	c.regenerations++
	c.pendingRegens++
	c.updated = time.Now().UTC().Truncate(time.Second)
	c.lastRegenAt = time.Now()
	c.regenStale, c.regenDelay = max(c.staleWindow, c.actDelay), c.kubeconfigDelay
	c.staleKubeconfig = c.kubeconfig
	actDelay := c.actDelay
	if serviceToken && !c.highAvailability && c.outage > 0 {
		// LKE restarts the control-plane components with the new token.
		c.outageUntil = time.Now().Add(c.outage)
		if c.outageStarted != nil {
			close(c.outageStarted)
		}
		c.outageStarted = make(chan struct{})
	}
	c.mu.Unlock()

	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		var newKubeconfig []byte
		var newToken string
		err := func() error {
			if actDelay > 0 && !c.sleep(actDelay) {
				return c.ctx.Err()
			}
			if kubeconfig {
				token, err := c.regenerateAdminToken()
				if err != nil {
					return err
				}
				newToken = token
				if newKubeconfig, err = lkeKubeconfig(c.ID, c.proxy.url, c.cp.ca.CertPEM(), token); err != nil {
					return err
				}
			}
			if serviceToken {
				for _, sa := range ControlPlaneServiceAccounts {
					if _, err := c.replaceTokenSecret(c.ctx, sa); err != nil {
						return err
					}
				}
			}
			return nil
		}()
		if err != nil && c.ctx.Err() == nil {
			log.Printf("fakecloud: lke cluster %d: regenerate: %v", c.ID, err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if newKubeconfig != nil {
			c.adminTokens = append(c.adminTokens, newToken)
		}
		c.pendingRegens--
		c.regenDoneAt = time.Now()
		if newKubeconfig != nil {
			c.kubeconfig = newKubeconfig
		}
	}()
}

// regenerateAdminToken gives the admin token of the regenerated kubeconfig:
// a new one, or, when LKE reuses the existing secret, that secret's token,
// and a new one later, once the secret is deleted.
func (c *Cluster) regenerateAdminToken() (string, error) {
	c.mu.Lock()
	reuse := c.reuseAdminSecret
	c.mu.Unlock()
	if !reuse {
		return c.replaceTokenSecret(c.ctx, AdminServiceAccount)
	}
	secrets := c.client.CoreV1().Secrets(metav1.NamespaceSystem)
	list, err := secrets.List(c.ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)).String(),
	})
	if err != nil {
		return "", err
	}
	for _, s := range list.Items {
		if s.Annotations[corev1.ServiceAccountNameKey] == AdminServiceAccount && len(s.Data[corev1.ServiceAccountTokenKey]) > 0 {
			c.bg.Add(1)
			go c.replaceAdminTokenWhenGone(s.Name)
			return string(s.Data[corev1.ServiceAccountTokenKey]), nil
		}
	}
	return c.replaceTokenSecret(c.ctx, AdminServiceAccount)
}

// replaceAdminTokenWhenGone waits until the reused admin secret is deleted,
// then makes a new token and serves a kubeconfig with it.
func (c *Cluster) replaceAdminTokenWhenGone(name string) {
	defer c.bg.Done()
	secrets := c.client.CoreV1().Secrets(metav1.NamespaceSystem)
	err := wait.PollUntilContextCancel(c.ctx, 200*time.Millisecond, false, func(ctx context.Context) (bool, error) {
		_, err := secrets.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return
	}
	token, err := c.replaceTokenSecret(c.ctx, AdminServiceAccount)
	if err != nil {
		log.Printf("fakecloud: lke cluster %d: replace the admin token: %v", c.ID, err)
		return
	}
	kc, err := lkeKubeconfig(c.ID, c.proxy.url, c.cp.ca.CertPEM(), token)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adminTokens = append(c.adminTokens, token)
	c.kubeconfig = kc
}

// SetHighAvailability makes the cluster's control plane highly available:
// regenerating its service token causes no outage.
func (c *Cluster) SetHighAvailability(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.highAvailability = on
}

// outageSignal is closed when the next control-plane restart begins.
func (c *Cluster) outageSignal() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.outageStarted == nil {
		c.outageStarted = make(chan struct{})
	}
	return c.outageStarted
}

// inOutage reports whether the control plane is restarting.
func (c *Cluster) inOutage() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Before(c.outageUntil)
}

// SetReuseAdminSecret makes regenerating the kubeconfig rebuild it from the
// lke-admin token secret that still exists (the same token), as LKE can; a
// new token appears only once that secret is deleted, which is the
// runbook's order: delete, then regenerate.
func (c *Cluster) SetReuseAdminSecret(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reuseAdminSecret = on
}

// servedKubeconfig is what GET /kubeconfig answers: the kubeconfig, or
// ready=false while a regeneration is under way.
func (c *Cluster) servedKubeconfig() (kc []byte, ready bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Before(c.lastRegenAt.Add(c.regenStale)) && c.staleKubeconfig != nil {
		return c.edited(c.staleKubeconfig), true // stale: the regeneration is not visible yet
	}
	if c.pendingRegens > 0 || now.Before(c.lastRegenAt.Add(c.regenStale+c.regenDelay)) {
		return nil, false
	}
	return c.edited(c.kubeconfig), true
}

// SetServedKubeconfigEdit makes GET /kubeconfig serve every kubeconfig
// changed by edit (nil: as made). The cluster's own record is unchanged.
func (c *Cluster) SetServedKubeconfigEdit(edit func(*clientcmdapi.Config)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.edit = edit
}

// edited is kc changed by the edit in force; c.mu is held.
func (c *Cluster) edited(kc []byte) []byte {
	if c.edit == nil || kc == nil {
		return kc
	}
	cfg, err := clientcmd.Load(kc)
	if err != nil {
		return kc
	}
	c.edit(cfg)
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return kc
	}
	return out
}

// SetActDelay sets how long a regeneration shows no effect at all: the
// previous kubeconfig is still served and no secret is replaced. It applies
// from the next regeneration on.
func (c *Cluster) SetActDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.actDelay = max(d, 0)
}

// SetStaleWindow sets how long, after a regeneration, GET /kubeconfig still
// serves the kubeconfig from before it.
func (c *Cluster) SetStaleWindow(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.staleWindow = d
	c.regenStale = min(c.regenStale, d)
}

// recycle replaces the nodes of the given pools (all when none are given)
// one at a time, as LKE's rolling recycle does ("deleted and replaced with
// new Linodes on a rolling basis"). Each node takes the recycle delay: for
// its first half the old node is cordoned and reported not_ready; then its
// Node object is deleted and a new pool node takes its place, not_ready
// (its Node NotReady) until the delay is over. The first node turns
// not_ready before the API answers.
func (c *Cluster) recycle(poolIDs ...int) bool {
	type target struct {
		pool *nodePool
		node *poolNode
	}
	c.mu.Lock()
	var queue []target
	for _, p := range c.pools {
		if len(poolIDs) == 0 || slices.Contains(poolIDs, p.ID) {
			for _, n := range p.Nodes {
				queue = append(queue, target{p, n})
			}
		}
	}
	delay := c.recycleDelay
	c.updated = time.Now().UTC().Truncate(time.Second)
	if len(queue) > 0 {
		queue[0].node.Status = "not_ready"
		c.recycles++
	}
	c.mu.Unlock()
	if len(queue) == 0 {
		return false
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		for _, t := range queue {
			if err := c.recycleNode(t.pool, t.node, delay); err != nil {
				if c.ctx.Err() == nil {
					log.Printf("fakecloud: lke cluster %d: recycle: %v", c.ID, err)
				}
				return
			}
		}
	}()
	return true
}

// recycleNode replaces one pool node, taking delay.
func (c *Cluster) recycleNode(p *nodePool, old *poolNode, delay time.Duration) error {
	c.mu.Lock()
	old.Status = "not_ready"
	c.mu.Unlock()
	nodes := c.client.CoreV1().Nodes()
	cordon := []byte(`{"spec":{"unschedulable":true}}`)
	if _, err := nodes.Patch(c.ctx, old.Name, types.StrategicMergePatchType, cordon, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cordon node %s: %w", old.Name, err)
	}
	if !c.sleep(delay / 2) {
		return c.ctx.Err()
	}
	c.mu.Lock()
	fresh := c.newPoolNode(p)
	fresh.Status = "not_ready"
	if i := slices.Index(p.Nodes, old); i >= 0 {
		p.Nodes[i] = fresh
	} else {
		p.Nodes = append(p.Nodes, fresh)
	}
	c.mu.Unlock()
	if err := nodes.Delete(c.ctx, old.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", old.Name, err)
	}
	if err := c.createNode(c.ctx, p, fresh, false); err != nil {
		return err
	}
	if !c.sleep(delay - delay/2) {
		return c.ctx.Err()
	}
	if err := c.setNodeReady(c.ctx, fresh.Name); err != nil {
		return err
	}
	c.mu.Lock()
	fresh.Status = "ready"
	c.mu.Unlock()
	return nil
}

// sleep waits d unless the cluster is stopped first.
func (c *Cluster) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-c.ctx.Done():
		return false
	}
}

// KubeconfigReadySince is when GET /kubeconfig started (or will start)
// answering with the kubeconfig after the last regeneration: the later of the
// configured delay running out and the new secrets being in place. Zero when
// a regeneration is still replacing secrets.
func (c *Cluster) KubeconfigReadySince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pendingRegens > 0 {
		return time.Time{}
	}
	ready := c.lastRegenAt.Add(c.regenStale + c.regenDelay)
	if c.regenDoneAt.After(ready) {
		ready = c.regenDoneAt
	}
	return ready
}

// SetKubeconfigDelay sets how long GET /kubeconfig answers 503 after a regeneration.
func (c *Cluster) SetKubeconfigDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kubeconfigDelay = d
	c.regenDelay = min(c.regenDelay, d)
}

// SetRecycleDelay sets how long a recycle takes before the new nodes appear.
func (c *Cluster) SetRecycleDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recycleDelay = d
}

// Host is the cluster's API endpoint as LKE names it (in the kubeconfigs the
// Linode API serves and in api-endpoints): a proxy in front of kube-apiserver
// where faults can be injected (KubeListSecrets, …). The admin kubeconfig
// reaches kube-apiserver directly.
func (c *Cluster) Host() string { return c.proxy.url }

// CACertificate is the cluster CA in PEM form.
func (c *Cluster) CACertificate() []byte { return c.cp.ca.CertPEM() }

// AdminConfig is a client configuration with a system:masters client
// certificate: it keeps working across rotations, for tests and people.
func (c *Cluster) AdminConfig() *rest.Config { return rest.CopyConfig(c.cp.admin) }

// AdminKubeconfigPath is a kubeconfig file holding AdminConfig.
func (c *Cluster) AdminKubeconfigPath() string { return c.adminKubeconfig }

// Kubeconfig is the kubeconfig the Linode API serves (or will serve once a
// pending regeneration finishes), whatever its readiness.
func (c *Cluster) Kubeconfig() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.kubeconfig...)
}

// NodeNames lists the Kubernetes Node names of the cluster's pool nodes.
func (c *Cluster) NodeNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, p := range c.pools {
		for _, n := range p.Nodes {
			names = append(names, n.Name)
		}
	}
	return names
}

// MemoryBytes is the resident memory of the cluster's API server and controller manager.
func (c *Cluster) MemoryBytes() (int64, error) {
	a, err := c.cp.apiserver.RSS()
	if err != nil {
		return 0, err
	}
	b, err := c.cp.controller.RSS()
	return a + b, err
}

// LogTail returns the end of the cluster's process logs, for failing tests.
func (c *Cluster) LogTail() string {
	s := ""
	for _, p := range []*fakecloud.Process{c.cp.apiserver, c.cp.controller} {
		if p != nil {
			s += fmt.Sprintf("--- %s (cluster %d) log tail ---\n%s\n", p.Name, c.ID, p.Tail(4096))
		}
	}
	return s
}

func (c *Cluster) stop() {
	if c.cancel != nil {
		c.cancel()
	}
	c.bg.Wait()
	if c.proxy != nil {
		c.proxy.close()
	}
	c.cp.stop()
	_ = os.RemoveAll(c.cp.dir)
}

func randomUint16() uint16 {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return uint16(b[0])<<8 | uint16(b[1])
}

func itoa(i int) string { return strconv.Itoa(i) }
