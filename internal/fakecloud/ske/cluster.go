package ske

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/fakecloud"
)

// SKE credentials rotation phases and cluster states, as the SKE API names them.
const (
	PhaseNever      = "NEVER"
	PhasePreparing  = "PREPARING"
	PhasePrepared   = "PREPARED"
	PhaseCompleting = "COMPLETING"
	PhaseCompleted  = "COMPLETED"

	StateHealthy     = "STATE_HEALTHY"
	StateReconciling = "STATE_RECONCILING"
	StateHibernated  = "STATE_HIBERNATED"
	StateHibernating = "STATE_HIBERNATING"
	StateWakingUp    = "STATE_WAKINGUP"
	StateUnhealthy   = "STATE_UNHEALTHY"
)

// skeGeneration is one set of a cluster's credentials: the CA that signs
// the API server's certificate and admin kubeconfigs' client certificates,
// the key that signs service-account tokens, and the key that encrypts
// Secrets in etcd. A credentials rotation adds a generation (start) and
// drops the old one (complete).
type skeGeneration struct {
	n            int
	ca           *fakecloud.Authority
	saKey, saPub string
	encKey       []byte // AES-256, for etcd encryption
}

// Cluster is one emulated STACKIT SKE cluster: the SKE-side record
// (aggregated state, credentials rotation phase) backed by a real
// kube-apiserver and kube-controller-manager that are restarted with new
// trust as the rotation moves on.
type Cluster struct {
	ProjectID, Region, Name string

	env      *Environment
	dir      string
	etcdPref string
	port     int
	ctx      context.Context
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	// harnessToken is a static system:masters token (--token-auth-file),
	// for tests to look at the cluster whatever its credentials: it
	// survives rotations, as the local LKE's admin certificate does there.
	harnessToken string

	mu              sync.Mutex
	gens            []*skeGeneration // the current one last; two during a rotation
	allCAs          [][]byte         // every CA ever used, for the harness
	nextGen         int
	phase           string
	aggregated      string
	lastInitiation  *time.Time
	lastCompletion  *time.Time
	prepareDuration time.Duration // start: how long until PREPARED (the node roll)
	completeDelay   time.Duration // complete: how long until COMPLETED
	apiserver       *fakecloud.Process
	controller      *fakecloud.Process
	restarts        int
	starts          int // rotations started (acted on)
	completes       int // rotations completed (acted on)
	// statusLag: after a start or complete, reads keep showing the status
	// from before it until lagUntil (Gardener reports the phase only once
	// its reconciliation has picked the request up).
	// edit, when set, changes every kubeconfig POST …/kubeconfig serves:
	// one the real API would never serve (an exec plugin, a file path), to
	// show the provider refuses it.
	edit      func(*clientcmdapi.Config)
	statusLag time.Duration
	lagUntil  time.Time
	lagged    skeStatus
	// errors are status.errors (the first also as the deprecated
	// status.error). While the cluster is hibernating, hibernated, waking
	// up or unhealthy, a node roll under way holds: PREPARED waits.
	errors []ClusterError
	odd    struct {
		phase string
		until time.Time
	}
}

// ClusterError is one of a cluster's status.errors, as the SKE API lists them.
type ClusterError struct{ Code, Message string }

// hibernation tells whether the cluster is hibernated, or on its way into
// or out of it. c.mu is held.
func (c *Cluster) hibernation() bool {
	switch c.aggregated {
	case StateHibernating, StateHibernated, StateWakingUp:
		return true
	}
	return false
}

// gardenerHibernatedRefusal is how Gardener, which SKE runs on, refuses a
// rotation's start or complete on a hibernated shoot (pkg/api/core/
// validation/shoot.go: forbiddenShootOperationsWhenHibernated).
func gardenerHibernatedRefusal(op string) string {
	return "operation '" + op + "' is not permitted when shoot is hibernated or is waking up"
}

// held tells whether a node roll under way cannot go on. c.mu is held.
func (c *Cluster) held() bool {
	switch c.aggregated {
	case StateHibernating, StateHibernated, StateWakingUp, StateUnhealthy:
		return true
	}
	return false
}

// Hibernate hibernates the cluster, as its hibernation schedule does:
// STATE_HIBERNATING, then STATE_HIBERNATED a second later. A credentials
// rotation under way stays in its phase, its node roll held, until WakeUp.
func (c *Cluster) Hibernate() {
	c.mu.Lock()
	c.aggregated = StateHibernating
	c.mu.Unlock()
	c.after(time.Second, func() {
		if c.aggregated == StateHibernating {
			c.aggregated = StateHibernated
		}
	})
}

// WakeUp wakes a hibernated cluster: STATE_WAKINGUP, then a second later
// STATE_RECONCILING if a rotation's roll goes on, else STATE_HEALTHY.
func (c *Cluster) WakeUp() {
	c.mu.Lock()
	c.aggregated = StateWakingUp
	c.mu.Unlock()
	c.after(time.Second, func() {
		if c.aggregated != StateWakingUp {
			return
		}
		c.aggregated = StateHealthy
		if c.phase == PhasePreparing || c.phase == PhaseCompleting {
			c.aggregated = StateReconciling
		}
	})
}

// SetErrors makes the cluster report errs in status.errors (the first
// also in the deprecated status.error) and STATE_UNHEALTHY: a node roll
// under way holds until ClearErrors.
func (c *Cluster) SetErrors(errs ...ClusterError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors = append([]ClusterError(nil), errs...)
	c.aggregated = StateUnhealthy
}

// ClearErrors removes the errors; an unhealthy cluster is well again (a
// hibernating one stays so), and a roll under way goes on.
func (c *Cluster) ClearErrors() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errors = nil
	if c.aggregated != StateUnhealthy {
		return
	}
	c.aggregated = StateHealthy
	if c.phase == PhasePreparing || c.phase == PhaseCompleting {
		c.aggregated = StateReconciling
	}
}

// after runs f, with c.mu held, after d (unless the cluster stops first).
func (c *Cluster) after(d time.Duration, f func()) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		select {
		case <-time.After(d):
		case <-c.ctx.Done():
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		f()
	}()
}

// skeStatus is what GET cluster reports of a cluster's state.
type skeStatus struct {
	aggregated, phase              string
	lastInitiation, lastCompletion *time.Time
	errors                         []ClusterError
}

// status is the cluster's status as a read shows it now. c.mu is held.
func (c *Cluster) status() skeStatus {
	if time.Now().Before(c.lagUntil) {
		return c.lagged
	}
	st := skeStatus{c.aggregated, c.phase, c.lastInitiation, c.lastCompletion, c.errors}
	if time.Now().Before(c.odd.until) {
		st.phase = c.odd.phase
	}
	return st
}

// ShowPhase makes reads report phase (one the API does not document, as a
// later version of it might add) for d, whatever the rotation does
// meanwhile.
func (c *Cluster) ShowPhase(phase string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.odd.phase, c.odd.until = phase, time.Now().Add(d)
}

// SetStatusLag makes reads show, for d after each start or complete, the
// status from before it (0, the default, shows every change at once).
func (c *Cluster) SetStatusLag(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.statusLag = d
}

// beginLag starts a status lag before a change. c.mu is held.
func (c *Cluster) beginLag() {
	if c.statusLag > 0 {
		c.lagged = skeStatus{c.aggregated, c.phase, c.lastInitiation, c.lastCompletion, c.errors}
		c.lagUntil = time.Now().Add(c.statusLag)
	}
}

// skeClusterName is the SKE v2 API's pattern for cluster names.
var skeClusterName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,9}[a-z0-9])?$`)

// ClusterSpec shapes a new emulated SKE cluster.
type ClusterSpec struct {
	ProjectID, Region, Name string
}

// AddCluster starts an emulated SKE cluster. Its credentials rotation
// takes Options.PrepareDuration to prepare.
func (env *Environment) AddCluster(ctx context.Context, spec ClusterSpec) (_ *Cluster, err error) {
	if spec.ProjectID == "" || spec.Region == "" || spec.Name == "" {
		return nil, errors.New("an SKE cluster needs a project, a region and a name")
	}
	if !skeClusterName.MatchString(spec.Name) {
		return nil, fmt.Errorf("%q is not a name the SKE API gives a cluster (%s)", spec.Name, skeClusterName)
	}
	// Reserved under the lock: clusters started at the same time must not
	// share an etcd prefix (they would see each other's objects).
	env.mu.Lock()
	env.seq++
	n := env.seq
	env.mu.Unlock()
	cctx, cancel := context.WithCancel(env.base.Context())
	c := &Cluster{
		ProjectID: spec.ProjectID, Region: spec.Region, Name: spec.Name,
		env: env, dir: filepath.Join(env.Dir, "ske"+strconv.Itoa(n)+"-"+spec.Name), etcdPref: "/ske" + strconv.Itoa(n),
		ctx: cctx, cancel: cancel, harnessToken: fakecloud.RandomHex(32),
		phase: PhaseNever, aggregated: StateHealthy,
		prepareDuration: env.opts.PrepareDuration, completeDelay: env.opts.CompleteDelay,
	}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, err
	}
	if c.port, err = fakecloud.FreePort(); err != nil {
		return nil, err
	}
	g, err := c.newGeneration()
	if err != nil {
		return nil, err
	}
	c.gens = []*skeGeneration{g}
	if err := c.restart(ctx); err != nil {
		return nil, err
	}
	if err := c.bootstrap(ctx); err != nil {
		return nil, fmt.Errorf("ske cluster %s: bootstrap: %w", spec.Name, err)
	}
	env.mu.Lock()
	env.clusters = append(env.clusters, c)
	env.mu.Unlock()
	return c, nil
}

// Clusters returns the emulated SKE clusters.
func (env *Environment) Clusters() []*Cluster {
	env.mu.Lock()
	defer env.mu.Unlock()
	return append([]*Cluster(nil), env.clusters...)
}

func (env *Environment) cluster(project, region, name string) *Cluster {
	env.mu.Lock()
	defer env.mu.Unlock()
	for _, c := range env.clusters {
		if c.ProjectID == project && c.Region == region && c.Name == name {
			return c
		}
	}
	return nil
}

func (c *Cluster) newGeneration() (*skeGeneration, error) {
	c.mu.Lock()
	c.nextGen++
	n := c.nextGen
	c.mu.Unlock()
	dir := filepath.Join(c.dir, "gen"+strconv.Itoa(n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := fakecloud.NewAuthority(dir, "ske-ca-"+strconv.Itoa(n))
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := fakecloud.NewServiceAccountKey(dir)
	if err != nil {
		return nil, err
	}
	enc := make([]byte, 32)
	if _, err := rand.Read(enc); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.allCAs = append(c.allCAs, ca.CertPEM())
	c.mu.Unlock()
	return &skeGeneration{n: n, ca: ca, saKey: saKey, saPub: saPub, encKey: enc}, nil
}

// Host is the cluster's API server.
func (c *Cluster) Host() string { return "https://127.0.0.1:" + strconv.Itoa(c.port) }

// restart (re)starts kube-apiserver and kube-controller-manager with the
// trust of the current generations: client certificates and service-account
// tokens of any of them are accepted; the API server's certificate comes
// from the oldest (so that kubeconfigs from before a rotation keep working
// until it completes); new tokens are signed, and Secrets encrypted, with
// the newest.
func (c *Cluster) restart(ctx context.Context) error {
	c.mu.Lock()
	gens := append([]*skeGeneration(nil), c.gens...)
	c.restarts++
	r := c.restarts
	c.mu.Unlock()
	oldest, newest := gens[0], gens[len(gens)-1]
	dir := filepath.Join(c.dir, "run"+strconv.Itoa(r))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var bundle bytes.Buffer
	for _, g := range gens {
		bundle.Write(g.ca.CertPEM())
	}
	clientCA := filepath.Join(dir, "client-ca.crt")
	if err := os.WriteFile(clientCA, bundle.Bytes(), 0o600); err != nil {
		return err
	}
	servingCert, servingKey, err := oldest.ca.Issue(dir, "apiserver", fakecloud.Leaf{CommonName: "kube-apiserver", Hosts: []string{"127.0.0.1", "localhost", "kubernetes.default.svc"}})
	if err != nil {
		return err
	}
	kcmCert, kcmKey, err := newest.ca.Issue(dir, "controller-manager", fakecloud.Leaf{CommonName: "system:kube-controller-manager", Organization: []string{"system:masters"}})
	if err != nil {
		return err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(c.harnessToken+",kubecreds-harness,kubecreds-harness,system:masters\n"), 0o600); err != nil {
		return err
	}
	encConfig := filepath.Join(dir, "encryption.yaml")
	if err := os.WriteFile(encConfig, encryptionConfig(gens), 0o600); err != nil {
		return err
	}
	c.stopProcesses()
	args := []string{
		"--etcd-servers=" + c.env.base.EtcdURL(),
		"--etcd-prefix=" + c.etcdPref,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.port),
		"--tls-cert-file=" + servingCert,
		"--tls-private-key-file=" + servingKey,
		"--client-ca-file=" + clientCA,
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-signing-key-file=" + newest.saKey,
		"--encryption-provider-config=" + encConfig,
		"--service-cluster-ip-range=10.129.0.0/16",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + dir,
		"--v=1",
	}
	for i := len(gens) - 1; i >= 0; i-- {
		args = append(args, "--service-account-key-file="+gens[i].saPub)
	}
	apiserver, err := fakecloud.StartProcess(dir, "kube-apiserver", c.env.base.Binary, append([]string{"kube-apiserver"}, args...)...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.apiserver = apiserver
	c.mu.Unlock()
	admin, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		return err
	}
	err = fakecloud.WaitHealthy(ctx, apiserver, 90*time.Second, func(ctx context.Context) (bool, error) {
		body, err := admin.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && strings.TrimSpace(string(body)) == "ok", nil
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver of SKE cluster %s did not become ready: %w\n%s", c.Name, err, apiserver.Tail(4096))
	}
	kcmKubeconfig := filepath.Join(dir, "controller-manager.kubeconfig")
	if err := fakecloud.WriteClientCertKubeconfig(kcmKubeconfig, "local", c.Host(), bundle.Bytes(), kcmCert, kcmKey); err != nil {
		return err
	}
	controller, err := fakecloud.StartProcess(dir, "kube-controller-manager", c.env.base.Binary, "kube-controller-manager",
		"--kubeconfig="+kcmKubeconfig,
		"--authentication-skip-lookup=true",
		"--secure-port=0",
		"--leader-elect=false",
		"--controllers=serviceaccount-token-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,garbage-collector-controller,namespace-controller",
		"--service-account-private-key-file="+newest.saKey,
		"--root-ca-file="+clientCA,
		"--use-service-account-credentials=false",
		"--v=1",
	)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.controller = controller
	c.mu.Unlock()
	return nil
}

// encryptionConfig encrypts Secrets with the newest generation's key and
// still reads the older ones'.
func encryptionConfig(gens []*skeGeneration) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n")
	for i := len(gens) - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "      - name: key%d\n        secret: %s\n", gens[i].n, base64.StdEncoding.EncodeToString(gens[i].encKey))
	}
	b.WriteString("  - identity: {}\n")
	return []byte(b.String())
}

// bootstrap puts a Node per (emulated) machine in the cluster.
func (c *Cluster) bootstrap(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		return err
	}
	return c.rollNodes(ctx, cs)
}

// rollNodes replaces the cluster's Nodes by new ones, as SKE's rolling
// update after the start of a rotation does.
func (c *Cluster) rollNodes(ctx context.Context, cs kubernetes.Interface) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range 2 {
		name := fmt.Sprintf("shoot--%s--%s-worker-%s-%d", c.ProjectID, c.Name, fakecloud.RandomHex(3), i)
		if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	for _, n := range nodes.Items {
		if err := cs.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// AdminConfig reaches the cluster with the harness token, trusting every
// CA the cluster ever had: it works whatever the rotation has done.
func (c *Cluster) AdminConfig() *rest.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &rest.Config{Host: c.Host(), BearerToken: c.harnessToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: bytes.Join(c.allCAs, nil)}, QPS: 100, Burst: 200}
}

// Kubeconfig issues an admin kubeconfig as POST …/kubeconfig does: a
// system:masters client certificate from the newest CA, valid for
// expiration, trusting every current CA.
func (c *Cluster) Kubeconfig(expiration time.Duration) ([]byte, time.Time, error) {
	c.mu.Lock()
	gens := append([]*skeGeneration(nil), c.gens...)
	c.mu.Unlock()
	newest := gens[len(gens)-1]
	dir, err := os.MkdirTemp(c.dir, "kubeconfig-")
	if err != nil {
		return nil, time.Time{}, err
	}
	defer os.RemoveAll(dir)
	expires := time.Now().Add(expiration).UTC().Truncate(time.Second)
	certPath, keyPath, err := newest.ca.IssueUntil(dir, "admin", fakecloud.Leaf{CommonName: "ske-admin-" + fakecloud.RandomHex(4), Organization: []string{"system:masters"}}, expires)
	if err != nil {
		return nil, time.Time{}, err
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, time.Time{}, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, time.Time{}, err
	}
	var bundle bytes.Buffer
	for _, g := range gens {
		bundle.Write(g.ca.CertPEM())
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.Host(), CertificateAuthorityData: bundle.Bytes()}
	cfg.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name}
	cfg.CurrentContext = c.Name
	c.mu.Lock()
	edit := c.edit
	c.mu.Unlock()
	if edit != nil {
		edit(cfg)
	}
	raw, err := clientcmd.Write(*cfg)
	return raw, expires, err
}

// SetServedKubeconfigEdit makes POST …/kubeconfig serve every kubeconfig
// changed by edit (nil: as made).
func (c *Cluster) SetServedKubeconfigEdit(edit func(*clientcmdapi.Config)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.edit = edit
}

// Phase is the credentials rotation's phase; Aggregated the cluster's state.
func (c *Cluster) Phase() (phase, aggregated string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase, c.aggregated
}

// SetAggregated sets the cluster's aggregated state (STATE_HIBERNATED, …).
func (c *Cluster) SetAggregated(state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aggregated = state
}

// SetPrepareDuration sets how long a started rotation takes to be PREPARED.
func (c *Cluster) SetPrepareDuration(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prepareDuration = d
}

// Rotations counts the starts and completions the API acted on.
func (c *Cluster) Rotations() (starts, completes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starts, c.completes
}

// errRotationConflict is the API's 400 for a phase change out of turn.
type errRotationConflict struct{ msg string }

func (e errRotationConflict) Error() string { return e.msg }

// startRotation begins phase one, as POST …/start-credentials-rotation: at
// once the phase is PREPARING; in the background a new generation is made,
// the control plane restarted trusting both, Secrets re-encrypted, the
// nodes rolled, and after the prepare duration the phase is PREPARED.
func (c *Cluster) startRotation() error {
	c.mu.Lock()
	switch {
	case c.hibernation():
		c.mu.Unlock()
		return errRotationConflict{gardenerHibernatedRefusal("rotate-credentials-start")}
	case c.phase == PhasePreparing || c.phase == PhasePrepared || c.phase == PhaseCompleting:
		phase := c.phase
		c.mu.Unlock()
		return errRotationConflict{"credentials rotation is already in phase " + phase}
	}
	now := time.Now().UTC().Truncate(time.Second)
	c.beginLag()
	c.phase, c.aggregated, c.lastInitiation = PhasePreparing, StateReconciling, &now
	c.starts++
	wait := c.prepareDuration
	c.mu.Unlock()
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		start := time.Now()
		if err := c.prepare(); err != nil {
			if c.ctx.Err() == nil {
				log.Printf("fakecloud: ske cluster %s: prepare the credentials rotation: %v", c.Name, err)
				c.SetAggregated(StateUnhealthy)
			}
			return
		}
		if !c.waitUnheld(start, wait) {
			return
		}
		c.mu.Lock()
		c.phase, c.aggregated = PhasePrepared, StateHealthy
		c.mu.Unlock()
	}()
	return nil
}

// waitUnheld waits until d has passed since start and the cluster's roll
// is not held (hibernation, errors); false if the cluster stopped.
func (c *Cluster) waitUnheld(start time.Time, d time.Duration) bool {
	for {
		c.mu.Lock()
		held := c.held()
		c.mu.Unlock()
		if !held && time.Since(start) >= d {
			return true
		}
		select {
		case <-time.After(min(100*time.Millisecond, max(d-time.Since(start), time.Millisecond))):
		case <-c.ctx.Done():
			return false
		}
	}
}

func (c *Cluster) prepare() error {
	g, err := c.newGeneration()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.gens = append(c.gens, g)
	c.mu.Unlock()
	if err := c.restart(c.ctx); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		return err
	}
	// Rewrite every Secret so that it is stored encrypted with the new key.
	secrets, err := cs.CoreV1().Secrets("").List(c.ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, s := range secrets.Items {
		if _, err := cs.CoreV1().Secrets(s.Namespace).Update(c.ctx, &s, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("re-encrypt secret %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return c.rollNodes(c.ctx, cs)
}

// completeRotation ends it, as POST …/complete-credentials-rotation: the
// phase is COMPLETING at once; in the background the control plane is
// restarted trusting the new generation only, and the phase is COMPLETED.
func (c *Cluster) completeRotation() error {
	c.mu.Lock()
	if c.hibernation() {
		c.mu.Unlock()
		return errRotationConflict{gardenerHibernatedRefusal("rotate-credentials-complete")}
	}
	if c.phase != PhasePrepared {
		phase := c.phase
		c.mu.Unlock()
		return errRotationConflict{"credentials rotation cannot be completed in phase " + phase + "; it must be PREPARED"}
	}
	c.beginLag()
	c.phase, c.aggregated = PhaseCompleting, StateReconciling
	c.completes++
	delay := c.completeDelay
	c.mu.Unlock()
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		c.mu.Lock()
		c.gens = c.gens[len(c.gens)-1:]
		c.mu.Unlock()
		if err := c.restart(c.ctx); err != nil {
			if c.ctx.Err() == nil {
				log.Printf("fakecloud: ske cluster %s: complete the credentials rotation: %v", c.Name, err)
				c.SetAggregated(StateUnhealthy)
			}
			return
		}
		if !c.waitUnheld(time.Now(), delay) {
			return
		}
		now := time.Now().UTC().Truncate(time.Second)
		c.mu.Lock()
		c.phase, c.aggregated, c.lastCompletion = PhaseCompleted, StateHealthy, &now
		c.mu.Unlock()
	}()
	return nil
}

func (c *Cluster) stopProcesses() {
	c.mu.Lock()
	apiserver, controller := c.apiserver, c.controller
	c.apiserver, c.controller = nil, nil
	c.mu.Unlock()
	if controller != nil {
		controller.Stop()
	}
	if apiserver != nil {
		apiserver.Stop()
	}
}

func (c *Cluster) stop() {
	c.cancel()
	c.bg.Wait()
	c.stopProcesses()
}

// LogTail returns the end of the cluster's API server log.
func (c *Cluster) LogTail() string {
	c.mu.Lock()
	p := c.apiserver
	c.mu.Unlock()
	if p == nil {
		return ""
	}
	return fmt.Sprintf("--- kube-apiserver (SKE cluster %s) log tail ---\n%s\n", c.Name, p.Tail(4096))
}
