package rotation

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Workload kinds a rollout restart applies to.
const (
	KindDeployment  = "deployment"
	KindDaemonSet   = "daemonset"
	KindStatefulSet = "statefulset"
)

// WorkloadKinds are the kinds restart_workloads accepts.
var WorkloadKinds = []string{KindDeployment, KindDaemonSet, KindStatefulSet}

var workloadResources = map[string]schema.GroupVersionResource{
	KindDeployment:  appsv1.SchemeGroupVersion.WithResource("deployments"),
	KindDaemonSet:   appsv1.SchemeGroupVersion.WithResource("daemonsets"),
	KindStatefulSet: appsv1.SchemeGroupVersion.WithResource("statefulsets"),
}

// restartedAtAnnotation is what `kubectl rollout restart` sets on the pod
// template; using it makes our restarts look like kubectl's.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// restartWorkloads does `kubectl rollout restart` for the chosen kinds in the
// chosen namespaces, so that pods pick up the new service-account tokens.
func (r *run) restartWorkloads(ctx context.Context) (map[string]any, error) {
	at := r.Clock.Now().Format(time.RFC3339)
	patch := []byte(fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, restartedAtAnnotation, at))
	var restarted []string
	for _, ns := range r.opts.RestartWorkloads.Namespaces {
		for _, kind := range r.opts.RestartWorkloads.Kinds {
			gvr, ok := workloadResources[kind]
			if !ok {
				return nil, fmt.Errorf("unknown workload kind %q (allowed: %v)", kind, WorkloadKinds)
			}
			client := r.new.Meta.Resource(gvr).Namespace(ns)
			opts := metav1.ListOptions{Limit: 500}
			for {
				var list *metav1.PartialObjectMetadataList
				err := r.new.Retry.Do(ctx, func() (err error) {
					list, err = client.List(ctx, opts)
					return err
				})
				if err != nil {
					return nil, fmt.Errorf("list %ss in %s: %w", kind, ns, err)
				}
				for _, w := range list.Items {
					err := r.new.Retry.Do(ctx, func() error {
						_, err := client.Patch(ctx, w.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
						return err
					})
					if err != nil {
						return nil, fmt.Errorf("restart %s %s/%s: %w", kind, ns, w.Name, err)
					}
					restarted = append(restarted, kind+"/"+ns+"/"+w.Name)
				}
				if list.Continue == "" {
					break
				}
				opts.Continue = list.Continue
			}
		}
	}
	slices.Sort(restarted)
	r.result.RestartedWorkload = restarted
	r.done = append(r.done, fmt.Sprintf("%d workloads restarted", len(restarted)))
	return map[string]any{"restarted": len(restarted)}, nil
}
