package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/linode/linodego"
	"k8s.io/client-go/rest"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/rotation"
)

// describeLinodeError explains a Linode API error in terms of what to fix.
// linodego's messages carry the API's reason, never the token.
func describeLinodeError(err error, clusterID int) string {
	if hint := linodeHint(err, clusterID); hint != "" {
		return hint
	}
	return err.Error()
}

// linodeHint says what to fix for the Linode API errors a user can fix:
// a bad token, missing permission, a wrong cluster id. Otherwise "".
func linodeHint(err error, clusterID int) string {
	var lerr *linodego.Error
	if errors.As(err, &lerr) {
		switch lerr.Code {
		case http.StatusUnauthorized:
			return "The Linode API rejected the token (401 " + lerr.Message + "): check linode_token or the LINODE_TOKEN environment variable."
		case http.StatusForbidden:
			return "The Linode API token may not do this (403 " + lerr.Message + "): it needs read/write access to Kubernetes."
		case http.StatusNotFound:
			return fmt.Sprintf("LKE cluster %d does not exist, or the token cannot see it (404 %s).", clusterID, lerr.Message)
		}
	}
	return ""
}

// lkeRESTConfig reaches an LKE cluster the way the runbook does: with the
// kubeconfig the Linode API serves, waiting through 503 "not yet available"
// for at most wait.
func (d *providerData) lkeRESTConfig(ctx context.Context, clusterID int, wait time.Duration) (*rest.Config, diag.Diagnostics) {
	clients, diags := d.Linode(ctx)
	if diags.HasError() {
		return nil, diags
	}
	fetchCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	raw, err := rotation.FetchKubeconfig(fetchCtx, clients.Poll, clusterID, rotation.KubeconfigPoll{Retry: d.retry})
	if err != nil {
		diags.AddError("Cannot get the kubeconfig of LKE cluster "+fmt.Sprint(clusterID), describeLinodeError(err, clusterID))
		return nil, diags
	}
	cfg, err := kubeconfig.RESTConfigFromKubeconfig(raw)
	if err != nil {
		diags.AddError("Unusable kubeconfig for LKE cluster "+fmt.Sprint(clusterID), "The Linode API served a kubeconfig that cannot be used: "+err.Error())
		return nil, diags
	}
	cfg.UserAgent = d.userAgent
	cfg.Timeout = d.requestTimeout
	return cfg, nil
}
