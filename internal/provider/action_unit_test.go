package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/action"
)

func TestServedKubeconfigChange(t *testing.T) {
	const a, b, c = "aaaa", "bbbb", "cccc"
	for _, tc := range []struct {
		name                       string
		recorded, served, previous string
		want                       kubeconfigChange
	}{
		{"the same kubeconfig", a, a, `"` + c + `"`, kubeconfigUnchanged},
		{"imported, nothing recorded", "", a, "", kubeconfigFirstSeen},
		{"the one the last rotation replaced, served again", b, a, `"` + a + `"`, kubeconfigStale},
		{"another one: rotated elsewhere", b, c, `"` + a + `"`, kubeconfigRotatedElsewhere},
		{"another one, no private state (an older provider's state)", b, c, "", kubeconfigRotatedElsewhere},
	} {
		if got := servedKubeconfigChange(tc.recorded, tc.served, tc.previous); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}

// The action's progress shows counts and durations, never strings the
// cluster or an error supplied.
func TestProgressStepsShowCountsAndDurationsOnly(t *testing.T) {
	var got []string
	start := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	now := start
	p := &progressSteps{send: func(e action.InvokeProgressEvent) { got = append(got, e.Message) }, start: start, now: func() time.Time { return now }}
	p.Step(context.Background(), "delete secrets", map[string]any{
		"cluster_id": 123456, "duration_ms": int64(1500), "deleted": 4, "kept": 1,
		"secrets": "kube-system/lke-admin-token-abcde", "label": "prod-eu",
	})
	p.Step(context.Background(), "wait for kubeconfig", map[string]any{
		"duration_ms": int64(20), "error": "Get \"https://10.0.0.1/api\": token eyJhbGciOi...", "fetches": 3,
	})
	now = start.Add(42 * time.Second)
	p.say("done in %s", p.since())
	want := []string{
		"delete secrets: 1.5s (deleted 4, kept 1)",
		"wait for kubeconfig: 20ms (failed) (fetches 3)",
		"done in 42s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("progress:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, m := range got {
		for _, secret := range []string{"lke-admin-token", "prod-eu", "eyJ", "10.0.0.1", "123456"} {
			if strings.Contains(m, secret) {
				t.Errorf("progress %q shows %q", m, secret)
			}
		}
	}
}
