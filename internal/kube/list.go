package kube

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/pager"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// listAll lists every item page by page with client-go's pager, which
// falls back to one full list when a continue token expires half-way
// (a long list on a busy API server); each page's transient failures are
// retried as policy says. each is called for every item.
func listAll(ctx context.Context, policy retry.Policy, opts metav1.ListOptions,
	list func(context.Context, metav1.ListOptions) (runtime.Object, error), each func(runtime.Object) error) error {
	p := pager.New(func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		var obj runtime.Object
		err := policy.Do(ctx, func() (err error) {
			obj, err = list(ctx, o)
			return err
		})
		return obj, err
	})
	p.PageSize = 500
	all, _, err := p.List(ctx, opts)
	if err != nil {
		return err
	}
	return meta.EachListItem(all, each)
}
