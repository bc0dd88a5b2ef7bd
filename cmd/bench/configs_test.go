package main

import (
	"fmt"
	"strings"
	"testing"
)

// The bench's Terraform configurations are rendered from one template; a
// wrong verb would put "%!" into the HCL.
func TestBenchConfigsRender(t *testing.T) {
	for name, cfg := range map[string]string{
		"rotation":     fmt.Sprintf(rotationConfig, "  verify = true\n"),
		"delete apply": deleteApplyConfig,
	} {
		if strings.Contains(cfg, "%!") || !strings.Contains(cfg, `resource "kubecreds_lke_secret_rotation" "r"`) {
			t.Errorf("%s config renders wrongly:\n%s", name, cfg)
		}
	}
}
