package provider

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"k8s.io/client-go/rest"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/kubeconfig"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/lke"
	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
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
// a bad token, a token without the LKE scope, missing permission, a wrong
// cluster id, an untrusted certificate or an unknown host. Otherwise "".
func linodeHint(err error, clusterID int) string {
	switch lke.PermanentCause(err) {
	case retry.ErrUntrustedCertificate:
		return "The Linode API's TLS certificate is not trusted (" + err.Error() + "). If it is served through a proxy or a private endpoint with its own CA, " +
			"set linode_ca_path (or LINODE_CA) to that CA's PEM file; otherwise check linode_api_url (or LINODE_URL)."
	case retry.ErrUnknownHost:
		return "The Linode API's host name does not resolve (" + err.Error() + "): check linode_api_url (or LINODE_URL), or leave it unset for https://api.linode.com."
	}
	lerr, ok := lke.LinodeError(err)
	if !ok {
		return ""
	}
	if lke.IsMaintenance(err) {
		return "The Linode API is under maintenance (503 " + lerr.Message + "; see https://status.linode.com). " +
			"Run apply again once it is over: a rotation that stopped part-way resumes where it stopped."
	}
	if lerr.Code >= 400 && !lke.IsLinodeAnswer(err) {
		// A gateway's or CDN's page, or JSON without the API's error list:
		// it says nothing about the token or the cluster.
		return fmt.Sprintf("The answer did not come from the Linode API itself (%s). It is usually passing: run again. "+
			"If it persists, check linode_api_url (or LINODE_URL) and any proxy in between; https://status.linode.com shows outages.", lerr.Message)
	}
	switch lerr.Code {
	case http.StatusUnauthorized:
		if strings.Contains(lerr.Message, "not authorized to use this endpoint") {
			return "The Linode API token lacks the scope this needs (401 " + lerr.Message + "): rotating, and reading a cluster's kubeconfig, need a token with " +
				"lke:read_write (Kubernetes: Read/Write in Cloud Manager); listing and reading clusters need lke:read_only. Create a token with that scope and set linode_token or LINODE_TOKEN."
		}
		return "The Linode API rejected the token (401 " + lerr.Message + "): check linode_token or the LINODE_TOKEN environment variable (or, when neither is set, the token of the linode-cli config profile in use)."
	case http.StatusForbidden:
		return "The Linode API token may not do this (403 " + lerr.Message + "): it needs read/write access to Kubernetes (lke:read_write)."
	case http.StatusNotFound:
		return fmt.Sprintf("LKE cluster %d does not exist, or the token cannot see it (404 %s).", clusterID, lerr.Message)
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
	raw, err := lke.FetchKubeconfig(fetchCtx, clients.Poll, clusterID, lke.KubeconfigPollFor(d.retry))
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
