package kube

import (
	"context"
	"fmt"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// PodMount is a pod that uses a token secret: as a volume, as a source of a
// projected volume, or through an environment variable. Since Kubernetes
// 1.24 nothing recreates a deleted legacy token secret, so such a pod cannot
// start again (after a restart, an eviction, a node recycle) once the secret
// is gone.
type PodMount struct {
	Namespace string
	Pod       string
	Owner     string // Kind/name of the controlling owner, "" if none
	Secret    string // the secret's name (same namespace as the pod)
	Via       string // "volume", "projected volume", "env"
}

// Via values.
const (
	ViaVolume    = "volume"
	ViaProjected = "projected volume"
	ViaEnv       = "env"
)

// PodsMounting lists the pods in namespaces that use any of the named
// secrets (namespace/name), sorted by namespace, pod and secret.
func PodsMounting(ctx context.Context, k *Clients, namespaces []string, secrets map[string]bool) ([]PodMount, error) {
	var out []PodMount
	for _, ns := range namespaces {
		err := listAll(ctx, k.Retry, metav1.ListOptions{},
			func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
				return k.Core.CoreV1().Pods(ns).List(ctx, opts)
			},
			func(obj runtime.Object) error {
				for _, m := range secretUses(obj.(*corev1.Pod)) {
					if secrets[m.Namespace+"/"+m.Secret] {
						out = append(out, m)
					}
				}
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("list pods in namespace %s: %w", ns, err)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Pod != b.Pod {
			return a.Pod < b.Pod
		}
		return a.Secret < b.Secret
	})
	return out, nil
}

// secretUses lists every way a pod uses a secret, one entry per secret and way.
func secretUses(p *corev1.Pod) []PodMount {
	owner := ""
	if ref := metav1.GetControllerOf(p); ref != nil {
		owner = ref.Kind + "/" + ref.Name
	}
	var out []PodMount
	add := func(secret, via string) {
		m := PodMount{Namespace: p.Namespace, Pod: p.Name, Owner: owner, Secret: secret, Via: via}
		if secret != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.Secret != nil {
			add(v.Secret.SecretName, ViaVolume)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					add(src.Secret.Name, ViaProjected)
				}
			}
		}
	}
	containers := slices.Concat(p.Spec.InitContainers, p.Spec.Containers)
	for _, c := range p.Spec.EphemeralContainers {
		containers = append(containers, corev1.Container(c.EphemeralContainerCommon))
	}
	for _, c := range containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name, ViaEnv)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				add(e.SecretRef.Name, ViaEnv)
			}
		}
	}
	return out
}
