//go:build !unit

package provider

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// rotationValues is the kubecreds_lke_secret_rotation as the state holds it
// (Terraform's JSON state), with its types: lists are lists, null is nil.
type rotationValues struct {
	DeletedSecrets      []string `json:"deleted_secrets"`
	RevokedShortLived   []string `json:"revoked_short_lived_kubeconfigs"`
	KubeconfigSHA256    string   `json:"kubeconfig_sha256"`
	KubeconfigChangedAt *string  `json:"kubeconfig_changed_at"`
	RotatedAt           *string  `json:"rotated_at"`
	NextRotationAt      *string  `json:"next_rotation_at"`
	NodesVerified       int      `json:"nodes_verified"`
	Verify              bool     `json:"verify"`
}

// rotationCheck is a state check of the rotation at rotationAddr that
// reads it typed, as statecheck's own checks do, for what knownvalue cannot
// say (comparisons with the cluster, values kept for later steps).
func rotationCheck(fn func(v rotationValues) error) statecheck.StateCheck {
	return valuesCheck(rotationAddr, fn)
}

// valuesCheck decodes the values of the resource or data source at addr
// (Terraform's JSON state) into a T and checks them with fn.
func valuesCheck[T any](addr string, fn func(v T) error) statecheck.StateCheck {
	return valuesStateFunc[T]{addr: addr, fn: fn}
}

type valuesStateFunc[T any] struct {
	addr string
	fn   func(v T) error
}

func (f valuesStateFunc[T]) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	if req.State == nil || req.State.Values == nil || req.State.Values.RootModule == nil {
		resp.Error = fmt.Errorf("no state")
		return
	}
	for _, r := range req.State.Values.RootModule.Resources {
		if r.Address != f.addr {
			continue
		}
		raw, err := json.Marshal(r.AttributeValues)
		if err != nil {
			resp.Error = err
			return
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			resp.Error = fmt.Errorf("%s: %w", f.addr, err)
			return
		}
		resp.Error = f.fn(v)
		return
	}
	resp.Error = fmt.Errorf("%s is not in the state", f.addr)
}

// rotationAttr checks one attribute of the rotation with knownvalue.
func rotationAttr(name string, want knownvalue.Check) statecheck.StateCheck {
	return statecheck.ExpectKnownValue(rotationAddr, tfjsonpath.New(name), want)
}
