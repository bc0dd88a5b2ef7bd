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
// chosen namespaces: their pods are recreated, and so pick up the current
// projected service-account tokens. Paused deployments are skipped, as
// kubectl refuses them ("can't restart paused deployment (run rollout resume
// first)").
func (r *run) restartWorkloads(ctx context.Context) (map[string]any, error) {
	at := r.Clock.Now().Format(time.RFC3339)
	patch := []byte(fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, restartedAtAnnotation, at))
	var restarted, paused []string
	for _, ns := range r.opts.RestartWorkloads.Namespaces {
		for _, kind := range r.opts.RestartWorkloads.Kinds {
			gvr, ok := workloadResources[kind]
			if !ok {
				return nil, fmt.Errorf("unknown workload kind %q (allowed: %v)", kind, WorkloadKinds)
			}
			names, skipped, err := r.listRestartable(ctx, kind, ns)
			if err != nil {
				return nil, err
			}
			paused = append(paused, skipped...)
			client := r.new.Meta.Resource(gvr).Namespace(ns)
			for _, name := range names {
				err := r.new.Retry.Do(ctx, func() error {
					_, err := client.Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
					return err
				})
				if err != nil {
					return nil, fmt.Errorf("restart %s %s/%s: %w", kind, ns, name, err)
				}
				restarted = append(restarted, kind+"/"+ns+"/"+name)
			}
		}
	}
	slices.Sort(restarted)
	slices.Sort(paused)
	r.result.RestartedWorkload = restarted
	r.result.SkippedPaused = paused
	r.done = append(r.done, fmt.Sprintf("%d workloads restarted", len(restarted)))
	return map[string]any{"restarted": len(restarted), "skipped_paused": len(paused)}, nil
}

// listRestartable lists the workloads of one kind in a namespace that a
// rollout restart applies to, and (deployments only) the paused ones it
// must skip, as namespace/name.
func (r *run) listRestartable(ctx context.Context, kind, ns string) (names, paused []string, err error) {
	opts := metav1.ListOptions{Limit: 500}
	for {
		var (
			items      []metav1.Object
			pausedHere []string
			next       string
		)
		err := r.new.Retry.Do(ctx, func() error {
			items, pausedHere, next = nil, nil, ""
			if kind == KindDeployment {
				// Whether it is paused is in the spec, which metadata does not carry.
				list, err := r.new.Core.AppsV1().Deployments(ns).List(ctx, opts)
				if err != nil {
					return err
				}
				for i := range list.Items {
					d := &list.Items[i]
					if d.Spec.Paused {
						pausedHere = append(pausedHere, ns+"/"+d.Name)
						continue
					}
					items = append(items, d)
				}
				next = list.Continue
				return nil
			}
			list, err := r.new.Meta.Resource(workloadResources[kind]).Namespace(ns).List(ctx, opts)
			if err != nil {
				return err
			}
			for i := range list.Items {
				items = append(items, &list.Items[i])
			}
			next = list.Continue
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("list %ss in %s: %w", kind, ns, err)
		}
		for _, o := range items {
			names = append(names, o.GetName())
		}
		paused = append(paused, pausedHere...)
		if next == "" {
			return names, paused, nil
		}
		opts.Continue = next
	}
}
