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
	} {
		if !strings.Contains(s.String(), want) {
			t.Errorf("findings lack %q:\n%s", want, s.String())
		}
	}
}
