package kube

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

// RestartWorkloads does `kubectl rollout restart` for the given kinds in
// the given namespaces, stamping at as the restart time: their pods are
// recreated, and so pick up the current projected service-account tokens.
// Paused deployments are skipped, as kubectl refuses them ("can't restart
// paused deployment (run rollout resume first)"). It returns the restarted
// workloads (kind/namespace/name) and the skipped ones (namespace/name),
// sorted.
func RestartWorkloads(ctx context.Context, k *Clients, at time.Time, namespaces, kinds []string) (restarted, paused []string, err error) {
	patch := restartPatch(at)
	for _, ns := range namespaces {
		for _, kind := range kinds {
			gvr, ok := workloadResources[kind]
			if !ok {
				return nil, nil, fmt.Errorf("unknown workload kind %q (allowed: %v)", kind, WorkloadKinds)
			}
			names, skipped, err := listRestartable(ctx, k, kind, ns)
			if err != nil {
				return nil, nil, err
			}
			paused = append(paused, skipped...)
			client := k.Meta.Resource(gvr).Namespace(ns)
			for _, name := range names {
				err := k.Retry.Do(ctx, func() error {
					_, err := client.Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
					return err
				})
				if err != nil {
					return nil, nil, fmt.Errorf("restart %s %s/%s: %w", kind, ns, name, err)
				}
				restarted = append(restarted, kind+"/"+ns+"/"+name)
			}
		}
	}
	slices.Sort(restarted)
	slices.Sort(paused)
	return restarted, paused, nil
}

// restartPatch is the patch kubectl rollout restart sends.
func restartPatch(at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, restartedAtAnnotation, at.Format(time.RFC3339)))
}

// restartOne restarts one workload as kubectl rollout restart does; a
// paused deployment is left alone (restarted false), as kubectl refuses it.
func restartOne(ctx context.Context, k *Clients, at time.Time, kind, ns, name string) (restarted bool, err error) {
	if kind == KindDeployment {
		var paused bool
		err := k.Retry.Do(ctx, func() error {
			d, err := k.Core.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				paused = d.Spec.Paused
			}
			return err
		})
		if err != nil {
			return false, fmt.Errorf("read deployment %s/%s: %w", ns, name, err)
		}
		if paused {
			return false, nil
		}
	}
	err = k.Retry.Do(ctx, func() error {
		_, err := k.Meta.Resource(workloadResources[kind]).Namespace(ns).Patch(ctx, name, types.StrategicMergePatchType, restartPatch(at), metav1.PatchOptions{})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("restart %s %s/%s: %w", kind, ns, name, err)
	}
	return true, nil
}

// listRestartable lists the workloads of one kind in a namespace that a
// rollout restart applies to, and (deployments only) the paused ones it
// must skip, as namespace/name.
func listRestartable(ctx context.Context, k *Clients, kind, ns string) (names, paused []string, err error) {
	opts := metav1.ListOptions{Limit: 500}
	for {
		var (
			items      []metav1.Object
			pausedHere []string
			next       string
		)
		err := k.Retry.Do(ctx, func() error {
			items, pausedHere, next = nil, nil, ""
			if kind == KindDeployment {
				// Whether it is paused is in the spec, which metadata does not carry.
				list, err := k.Core.AppsV1().Deployments(ns).List(ctx, opts)
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
			list, err := k.Meta.Resource(workloadResources[kind]).Namespace(ns).List(ctx, opts)
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
