package main

import (
	"strings"
	"testing"
)

func TestDrawKubeconfigDelays(t *testing.T) {
	a, b := drawKubeconfigDelays(1, 10), drawKubeconfigDelays(1, 10)
	distinct := map[float64]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs between two runs with the same seed: %v and %v", i, a[i], b[i])
		}
		if a[i].Stale < 0 || a[i].Pending < 0 || a[i].total() > 30.05 {
			t.Errorf("draw %d out of 0–30 s: %+v", i, a[i])
		}
		distinct[a[i].total()] = true
	}
	if len(distinct) < 8 {
		t.Errorf("10 draws gave only %d distinct delays: %v", len(distinct), a)
	}
	if c := drawKubeconfigDelays(2, 10); c[0] == a[0] && c[1] == a[1] {
		t.Errorf("another seed drew the same delays: %v", c)
	}
}

func TestRotationFindingsAreComputedDrawByDraw(t *testing.T) {
	b := &bench{results: []result{
		{Case: rotationCase, Variant: variantScript, Baseline: true, Samples: []float64{10, 20, 5},
			Draws: []kubeconfigDraw{{Stale: 1, Pending: 8}, {Stale: 10, Pending: 9}, {Stale: 0, Pending: 4}}},
		{Case: rotationCase, Variant: "terraform apply (verify = false)", Samples: []float64{9, 21, 4}},
		{Case: rotationCase, Variant: "terraform apply (verify = true)", Samples: []float64{19, 33, 14}},
		{Case: detectionCase, Variant: "provider (verify = false)", Samples: []float64{0.1, 0.9, 0.2}},
	}}
	var s strings.Builder
	b.targets(&s)
	for _, want := range []string{
		"faster in 2 of 3 draws",
		"median 1 s, from -1 to 1 s",
		"`verify = true` adds 10 s at the median",
		"from 10 to 12 s",
		"within 0.5 s in 2 of 3 draws",
		"over 0.5 s at delays of 19.0 s",
		"median ≤ 0.5 s — holds",
		// Only the 19 s draw counts for the ≤ 1 s target, and it added 12 s.
		"At kubeconfig delays of 10 s or more, `verify = true` added 12 s at the median (target ≤ 1 s: **missed**), from 12 to 12 s. Delay: added, draw by draw: 19.0 s: +12.00 s.",
		"Delay: added: 9.0 s: +10.00 s; 4.0 s: +10.00 s.",
	} {
		if !strings.Contains(s.String(), want) {
			t.Errorf("findings lack %q:\n%s", want, s.String())
		}
	}
}

func TestVerifyCostTargetHoldsWhenSlowDrawsAddLittle(t *testing.T) {
	var s strings.Builder
	verdict := func(ok bool) string {
		if ok {
			return "holds"
		}
		return "missed"
	}
	verifyCostFindings(&s, []kubeconfigDraw{{Stale: 10, Pending: 5}, {Stale: 1, Pending: 1}, {Stale: 0, Pending: 28.8}, {Stale: 20, Pending: 3}},
		[]float64{0.4, 7, -0.7, 1.3}, []float64{0.05, 6.9, 0.04, 0.06}, verdict)
	for _, want := range []string{"added 0.4 s at the median (target ≤ 1 s: holds), from -0.7 to 1.3 s", "own steps took at most 0.06 s",
		"15.0 s: +0.40 s (steps 0.05 s); 28.8 s: -0.70 s (steps 0.04 s); 23.0 s: +1.30 s (steps 0.06 s)", "2.0 s: +7.00 s (steps 6.90 s)"} {
		if !strings.Contains(s.String(), want) {
			t.Errorf("findings lack %q:\n%s", want, s.String())
		}
	}
	s.Reset()
	verifyCostFindings(&s, []kubeconfigDraw{{Stale: 1, Pending: 1}}, []float64{7}, nil, verdict)
	if !strings.Contains(s.String(), "was not measured") {
		t.Errorf("no slow draw, yet the findings do not say the target went unmeasured:\n%s", s.String())
	}
}

func TestLockFindingsStateBothTargets(t *testing.T) {
	b := &bench{results: []result{
		{Case: lockCase, Variant: variantLockSingle, Baseline: true, Samples: []float64{10, 11, 12}},
		{Case: lockCase, Variant: variantLockPair, Samples: []float64{12, 14, 15}},
		{Case: lockCase, Variant: variantLockOwn, Samples: []float64{0.02, 0.03, 0.2}},
	}}
	var s strings.Builder
	b.targets(&s)
	for _, want := range []string{"took 30 ms at the median to take, uncontended (max 200 ms; target ≤ 100 ms: holds)",
		"both finished in 14 s at the median, 1.27× one rotation alone (11 s; target ≤ 1.2×: **missed**)"} {
		if !strings.Contains(s.String(), want) {
			t.Errorf("findings lack %q:\n%s", want, s.String())
		}
	}
}

// The fleet's verdict and its profile come from the samples and the steps
// the provider logged; a step line is read whatever its fields' order.
func TestFleetFindingsNameTheVerdictAndTheGrownSteps(t *testing.T) {
	log := []byte("2026-12-04T21:07:26.376Z [INFO]  provider.terraform-provider-kubecreds: rotation step: re-create service accounts: cluster_id=1 duration_ms=120 tf_rpc=ApplyResourceChange\n" +
		"2026-12-04T21:07:26.377Z [INFO]  provider.terraform-provider-kubecreds: rotation step: check access with the current kubeconfig: waiting for the rotation under way: holder=x waited_ms=10\n" +
		"2026-12-04T21:07:26.378Z [INFO]  provider.terraform-provider-kubecreds: rotation step: get cluster: duration_ms=5 cluster_id=1\n")
	got := stepDurations(log)
	if len(got) != 2 || got["re-create service accounts"][0] != 120 || got["get cluster"][0] != 5 {
		t.Fatalf("stepDurations = %v; want the two steps with their durations, and no progress note", got)
	}
	b := &bench{results: []result{
		{Case: fleetCase, Variant: "1 clusters, -parallelism=1", Baseline: true, Samples: []float64{10},
			Steps: medianSteps(map[string][]float64{"re-create service accounts": {100}, "get cluster": {5}})},
		{Case: fleetCase, Variant: "20 clusters, -parallelism=20", Samples: []float64{14},
			Steps: medianSteps(map[string][]float64{"re-create service accounts": {1400, 1500, 1300}, "get cluster": {50}})},
	}}
	var s strings.Builder
	b.targets(&s)
	for _, want := range []string{"1.40× one cluster", "target ≤ 1.3×: **missed**", "re-create service accounts 100 → 1400 ms", "the steps sum to 0.105 s → 1.45 s"} {
		if !strings.Contains(s.String(), want) {
			t.Errorf("the findings do not say %q:\n%s", want, s.String())
		}
	}
}
