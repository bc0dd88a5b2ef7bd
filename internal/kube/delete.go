package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
)

// DeleteTokenSecrets deletes the token secrets of the namespaces the
// secrets to delete are in, sparing those in spare, and returns the
// namespace/name of every secret it deleted. It is the rotation's deletion
// step, exported for benchmarks.
//
// Each namespace takes one DeleteCollection call (the field selector the
// runbook uses, minus the spared names), several namespaces at once: the API
// server deletes the items itself, which is twice as fast as deleting them
// one request at a time. The response is read as metadata only, so the
// deleted names are recorded without a token reaching this process. Where
// DeleteCollection is not allowed (RBAC without the deletecollection verb),
// the namespace's secrets are deleted one by one, each guarded by its UID.
func DeleteTokenSecrets(ctx context.Context, k *Clients, toDelete, spare []TokenSecret, concurrency int) ([]string, error) {
	if concurrency <= 0 {
		concurrency = 16
	}
	byNamespace := map[string][]TokenSecret{}
	var namespaces []string
	for _, s := range toDelete {
		if byNamespace[s.Namespace] == nil {
			namespaces = append(namespaces, s.Namespace)
		}
		byNamespace[s.Namespace] = append(byNamespace[s.Namespace], s)
	}
	spared := map[string][]string{}
	for _, s := range spare {
		spared[s.Namespace] = append(spared[s.Namespace], s.Name)
	}
	return inParallel(ctx, namespaces, concurrency, func(ns string) ([]string, error) {
		names, err := k.deleteCollection(ctx, ns, spared[ns])
		switch {
		case k.REST == nil || isCollectionUnsupported(err):
			return DeleteEach(ctx, k, byNamespace[ns], concurrency)
		case err == nil:
			// Every listed secret matched the selector, so those the answer
			// does not name were gone already (or deleted by an attempt
			// whose answer was lost): gone either way.
			named := map[string]bool{}
			for _, n := range names {
				named[n] = true
			}
			for _, s := range byNamespace[ns] {
				if !named[s.ID()] {
					names = append(names, s.ID())
				}
			}
		}
		return names, err
	})
}

// deleteCollection deletes the token secrets of one namespace except the
// named ones, with one request, and returns namespace/name of those deleted.
func (k *Clients) deleteCollection(ctx context.Context, namespace string, except []string) ([]string, error) {
	if k.REST == nil {
		return nil, nil
	}
	terms := []fields.Selector{fields.OneTermEqualSelector("type", tokenSecretType)}
	for _, name := range except {
		terms = append(terms, fields.OneTermNotEqualSelector("metadata.name", name))
	}
	list := metav1.ListOptions{FieldSelector: fields.AndSelectors(terms...).String()}
	var raw []byte
	err := k.Retry.Do(ctx, func() (err error) {
		raw, err = k.REST.Delete().Namespace(namespace).Resource("secrets").
			VersionedParams(&list, scheme.ParameterCodec).
			Body(&metav1.DeleteOptions{}).
			// Answered as a list of metadata: names, never the secrets' data.
			SetHeader("Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").
			Do(ctx).Raw()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete service-account-token secrets in namespace %s: %w", namespace, err)
	}
	var gone metav1.PartialObjectMetadataList
	if err := json.Unmarshal(raw, &gone); err != nil || gone.Kind != "PartialObjectMetadataList" {
		return nil, fmt.Errorf("delete service-account-token secrets in namespace %s: the API server did not answer with the deleted secrets' metadata (kind %q)", namespace, gone.Kind)
	}
	names := make([]string, 0, len(gone.Items))
	for _, s := range gone.Items {
		names = append(names, namespace+"/"+s.Name)
	}
	return names, nil
}

// isCollectionUnsupported is true when the API server refuses
// DeleteCollection itself, as opposed to failing at it.
func isCollectionUnsupported(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err)
}

// DeleteEach deletes secrets one request each, with bounded
// parallelism, each guarded by its UID so that a secret recreated under the
// same name meanwhile survives.
func DeleteEach(ctx context.Context, k *Clients, secrets []TokenSecret, concurrency int) ([]string, error) {
	return inParallel(ctx, secrets, concurrency, func(s TokenSecret) ([]string, error) {
		uid := types.UID(s.UID)
		err := k.Retry.Do(ctx, func() error {
			return k.Meta.Resource(secretsResource).Namespace(s.Namespace).Delete(ctx, s.Name,
				metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		})
		switch {
		case err == nil, apierrors.IsNotFound(err):
			// Gone either way; NotFound means someone (or an earlier run) was first.
			return []string{s.ID()}, nil
		case apierrors.IsConflict(err):
			// Recreated under the same name since we listed it: not ours to delete.
			return nil, nil
		default:
			return nil, fmt.Errorf("delete secret %s: %w", s.ID(), err)
		}
	})
}

// inParallel calls fn for each item, at most n at a time, and gathers what
// the calls return; it starts no more calls once ctx ends or a call fails,
// and returns the first error (or ctx's).
func inParallel[T any](ctx context.Context, items []T, n int, fn func(T) ([]string, error)) ([]string, error) {
	var (
		mu  sync.Mutex
		out []string
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, item := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			got, err := fn(item)
			mu.Lock()
			out = append(out, got...)
			mu.Unlock()
			return err
		})
	}
	err := g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	return out, err
}
