package ske

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stackitcloud/stackit-sdk-go/core/oapierror"

	"github.com/kubecreds/terraform-provider-kubecreds/internal/retry"
)

// fakeSKE is a cluster whose phase follows a script: each read takes the
// next scripted phase (the last one stays).
type fakeSKE struct {
	agg                  string
	phase                string
	script               []string // phases the next reads show
	afterStart           []string
	afterComplete        []string
	lastInit             *time.Time
	pendingInit          *time.Time // shown once the phase moves (a read may be stale)
	starts, completes    int        // requests that acted
	startCalls           int        // start requests sent
	loseStart, loseCompl bool       // act, then answer 502
	failStart            bool       // answer 502 without acting
}

func (f *fakeSKE) GetCluster(context.Context, ClusterRef) (*Cluster, error) {
	if len(f.script) > 0 {
		f.phase, f.script = f.script[0], f.script[1:]
	}
	if f.pendingInit != nil && (f.phase == PhasePreparing || f.phase == PhasePrepared) {
		f.lastInit, f.pendingInit = f.pendingInit, nil
	}
	agg := f.agg
	if agg == "" {
		agg = StateHealthy
	}
	return &Cluster{Name: "c", Status: ClusterStatus{Aggregated: agg, CredentialsRotation: CredentialsRotation{Phase: f.phase, LastInitiationTime: f.lastInit}}}, nil
}

func (f *fakeSKE) StartCredentialsRotation(context.Context, ClusterRef) error {
	f.startCalls++
	if f.failStart {
		f.failStart = false
		return &APIError{Err: oapierror.NewError(http.StatusBadGateway, "Bad Gateway")}
	}
	// As SKE refuses a start while one is under way, even when its reads
	// do not show it yet.
	if f.pendingInit != nil || f.phase == PhasePreparing || f.phase == PhasePrepared {
		return &APIError{Err: oapierror.NewError(http.StatusBadRequest, "credentials rotation already in progress")}
	}
	f.starts++
	now := time.Now()
	f.pendingInit, f.script = &now, append([]string(nil), f.afterStart...)
	if f.loseStart {
		f.loseStart = false
		return &APIError{Err: oapierror.NewError(http.StatusBadGateway, "Bad Gateway")}
	}
	return nil
}

func (f *fakeSKE) CompleteCredentialsRotation(context.Context, ClusterRef) error {
	f.completes++
	f.script = append([]string(nil), f.afterComplete...)
	if f.loseCompl {
		f.loseCompl = false
		return &APIError{Err: oapierror.NewError(http.StatusBadGateway, "Bad Gateway")}
	}
	return nil
}

func rotator(f *fakeSKE) *Rotator {
	return &Rotator{API: f, Poll: time.Millisecond, Grace: time.Second, Retry: retry.Policy{Max: 3, Initial: time.Millisecond},
		ActedPoll: time.Millisecond, ActedWindow: 3 * time.Millisecond}
}

var ref = ClusterRef{ProjectID: "p", Region: "eu01", Name: "c"}

func TestPrepareStartsWaitsAdoptsAndResumes(t *testing.T) {
	cases := []struct {
		name        string
		f           *fakeSKE
		wantStarts  int
		wantStarted bool
		wantErr     error
	}{
		{"never rotated: starts and waits", &fakeSKE{phase: PhaseNever, afterStart: []string{PhasePreparing, PhasePreparing, PhasePrepared}}, 1, true, nil},
		{"completed before: starts again", &fakeSKE{phase: PhaseCompleted, afterStart: []string{PhasePreparing, PhasePrepared}}, 1, true, nil},
		{"stale read after the start is tolerated", &fakeSKE{phase: PhaseCompleted, afterStart: []string{PhaseCompleted, PhaseCompleted, PhasePreparing, PhasePrepared}}, 1, true, nil},
		{"preparing: waited for, not restarted", &fakeSKE{phase: PhasePreparing, script: []string{PhasePreparing, PhasePreparing, PhasePrepared}}, 0, false, nil},
		{"prepared: adopted", &fakeSKE{phase: PhasePrepared}, 0, false, nil},
		{"completing: waited out, then started", &fakeSKE{phase: PhaseCompleting, script: []string{PhaseCompleting, PhaseCompleting, PhaseCompleted}, afterStart: []string{PhasePrepared}}, 1, true, nil},
		{"answer lost after acting: not sent twice", &fakeSKE{phase: PhaseNever, loseStart: true, afterStart: []string{PhasePreparing, PhasePrepared}}, 1, true, nil},
		{"answer lost, reads stale for a while: watched, not sent twice", &fakeSKE{phase: PhaseCompleted, loseStart: true, afterStart: []string{PhaseCompleted, PhaseCompleted, PhasePreparing, PhasePrepared}}, 1, true, nil},
		{"answer lost, reads stale past the watch: the resend's refusal is checked", &fakeSKE{phase: PhaseCompleted, loseStart: true, afterStart: []string{PhaseCompleted, PhaseCompleted, PhaseCompleted, PhasePreparing, PhasePrepared}}, 1, true, nil},
		{"502 without acting: sent again", &fakeSKE{phase: PhaseNever, failStart: true, afterStart: []string{PhasePreparing, PhasePrepared}}, 1, true, nil},
		{"hibernated: nothing changed", &fakeSKE{phase: PhaseNever, agg: StateHibernated}, 0, false, ErrNotRotatable},
		{"unhealthy: nothing changed", &fakeSKE{phase: PhaseCompleted, agg: StateUnhealthy}, 0, false, ErrNotRotatable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := rotator(c.f).Prepare(t.Context(), ref)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v; want %v", err, c.wantErr)
				}
			} else if err != nil || got.Cluster.Status.CredentialsRotation.Phase != PhasePrepared || got.Started != c.wantStarted {
				t.Fatalf("Prepare = %+v, %v; want PREPARED, started %t", got, err, c.wantStarted)
			}
			if c.f.starts != c.wantStarts {
				t.Errorf("%d starts sent; want %d", c.f.starts, c.wantStarts)
			}
		})
	}
}

func TestPrepareFailsOnAnUnexpectedPhase(t *testing.T) {
	f := &fakeSKE{phase: PhaseNever, afterStart: []string{PhaseNever}}
	r := rotator(f)
	r.Grace = 20 * time.Millisecond
	if _, err := r.Prepare(t.Context(), ref); err == nil {
		t.Fatal("a start that never shows on the cluster passed")
	}
}

func TestCompleteCompletesWaitsAndResumes(t *testing.T) {
	cases := []struct {
		name          string
		f             *fakeSKE
		wantCompletes int
		wantErr       bool
	}{
		{"prepared: completes and waits", &fakeSKE{phase: PhasePrepared, afterComplete: []string{PhaseCompleting, PhaseCompleted}}, 1, false},
		{"preparing: waits, then completes", &fakeSKE{phase: PhasePreparing, script: []string{PhasePreparing, PhasePrepared}, afterComplete: []string{PhaseCompleted}}, 1, false},
		{"completing: waited for", &fakeSKE{phase: PhaseCompleting, script: []string{PhaseCompleting, PhaseCompleted}}, 0, false},
		{"completed: nothing to do", &fakeSKE{phase: PhaseCompleted}, 0, false},
		{"answer lost after acting: not sent twice", &fakeSKE{phase: PhasePrepared, loseCompl: true, afterComplete: []string{PhaseCompleting, PhaseCompleted}}, 1, false},
		{"never started: error", &fakeSKE{phase: PhaseNever}, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := rotator(c.f).Complete(t.Context(), ref)
			if c.wantErr != (err != nil) {
				t.Fatalf("err = %v; want error %t", err, c.wantErr)
			}
			if !c.wantErr && got.Cluster.Status.CredentialsRotation.Phase != PhaseCompleted {
				t.Fatalf("Complete = %+v; want COMPLETED", got.Cluster.Status)
			}
			if c.f.completes != c.wantCompletes {
				t.Errorf("%d completes sent; want %d", c.f.completes, c.wantCompletes)
			}
		})
	}
}

// statusFake shows scripted statuses, one per read (the last one stays),
// and refuses every start and complete as SKE does when the cluster shows
// the change already.
type statusFake struct {
	script            []ClusterStatus
	starts, completes int
}

func (f *statusFake) GetCluster(context.Context, ClusterRef) (*Cluster, error) {
	st := f.script[0]
	if len(f.script) > 1 {
		f.script = f.script[1:]
	}
	return &Cluster{Name: "c", Status: st}, nil
}

func (f *statusFake) StartCredentialsRotation(context.Context, ClusterRef) error {
	f.starts++
	return &APIError{Err: oapierror.NewErrorWithBody(http.StatusBadRequest, "credentials rotation already in progress", []byte(`{"code":9,"message":"credentials rotation already in progress"}`), nil)}
}

func (f *statusFake) CompleteCredentialsRotation(context.Context, ClusterRef) error {
	f.completes++
	return &APIError{Err: oapierror.NewErrorWithBody(http.StatusConflict, "already completing", []byte(`{"code":10,"message":"already completing"}`), nil)}
}

func phase(p, agg string, errs ...ClusterError) ClusterStatus {
	return ClusterStatus{Aggregated: agg, CredentialsRotation: CredentialsRotation{Phase: p}, Errors: errs}
}

func TestARefusedStartAdoptsTheRotationStartedMeanwhile(t *testing.T) {
	f := &statusFake{script: []ClusterStatus{
		phase(PhaseCompleted, StateHealthy),     // Prepare's first read
		phase(PhaseCompleted, StateHealthy),     // after the refusal: not shown yet
		phase(PhasePreparing, StateReconciling), // someone else's start shows
		phase(PhasePrepared, StateHealthy),
	}}
	r := &Rotator{API: f, Poll: time.Millisecond, ActedPoll: time.Millisecond, ActedWindow: 10 * time.Millisecond}
	got, err := r.Prepare(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.Started || got.Cluster.Status.CredentialsRotation.Phase != PhasePrepared || f.starts != 1 {
		t.Errorf("Prepare = started %t, phase %s, %d starts sent; want the other start adopted, PREPARED, 1 start", got.Started, got.Cluster.Status.CredentialsRotation.Phase, f.starts)
	}
}

func TestARefusedStartThatNothingExplainsFails(t *testing.T) {
	f := &statusFake{script: []ClusterStatus{phase(PhaseCompleted, StateHealthy)}}
	r := &Rotator{API: f, Poll: time.Millisecond, ActedPoll: time.Millisecond, ActedWindow: 5 * time.Millisecond}
	if _, err := r.Prepare(t.Context(), ref); err == nil || !strings.Contains(err.Error(), "already in progress") {
		t.Fatalf("err = %v; want the API's refusal", err)
	}
}

func TestARefusedCompleteAdoptsTheCompletionMeanwhile(t *testing.T) {
	f := &statusFake{script: []ClusterStatus{
		phase(PhasePrepared, StateHealthy),
		phase(PhaseCompleting, StateReconciling),
		phase(PhaseCompleted, StateHealthy),
	}}
	r := &Rotator{API: f, Poll: time.Millisecond, ActedPoll: time.Millisecond, ActedWindow: 10 * time.Millisecond}
	got, err := r.Complete(t.Context(), ref)
	if err != nil || got.Completed || got.Cluster.Status.CredentialsRotation.Phase != PhaseCompleted {
		t.Fatalf("Complete = %+v, %v; want the other completion adopted", got, err)
	}
}

func TestAnUnknownPhaseIsPolledThroughWithAWarning(t *testing.T) {
	f := &statusFake{script: []ClusterStatus{
		phase(PhasePreparing, StateReconciling),
		phase("ROLLING_BACK", StateReconciling),
		phase("ROLLING_BACK", StateReconciling),
		phase(PhasePrepared, StateHealthy),
	}}
	var warnings []string
	r := &Rotator{API: f, Poll: time.Millisecond, Warn: func(_ context.Context, msg string, _ map[string]any) { warnings = append(warnings, msg) }}
	got, err := r.Prepare(t.Context(), ref)
	if err != nil || got.Cluster.Status.CredentialsRotation.Phase != PhasePrepared {
		t.Fatalf("Prepare = %+v, %v; want PREPARED after the unknown phase", got, err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "ROLLING_BACK") {
		t.Errorf("warnings %q; want one naming the unknown phase", warnings)
	}
}

func TestARollOnAnUnhealthyOrHibernatedClusterIsWaitedForAndExplained(t *testing.T) {
	unready := ClusterError{Code: "SKE_UNREADY_NODES", Message: "Not all worker nodes are ready."}
	pdb := ClusterError{Code: "SKE_NODE_MISCONFIGURED_PDB", Message: "A PodDisruptionBudget blocks the drain."}
	f := &statusFake{script: []ClusterStatus{
		phase(PhasePreparing, StateUnhealthy, unready),
		phase(PhasePreparing, StateHibernating),
		phase(PhasePreparing, StateHibernated),
		phase(PhasePreparing, StateUnhealthy, unready, pdb),
	}}
	var logged []string
	r := &Rotator{API: f, Poll: time.Millisecond, Log: func(_ context.Context, msg string, fields map[string]any) {
		if s, ok := fields["status"].(string); ok {
			logged = append(logged, s)
		}
	}}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := r.Prepare(ctx, ref)
	if err == nil {
		t.Fatal("Prepare returned without the rotation being prepared")
	}
	for _, want := range []string{"still PREPARING", "STATE_UNHEALTHY", "SKE_UNREADY_NODES: Not all worker nodes are ready.", "SKE_NODE_MISCONFIGURED_PDB", "apply again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("timeout error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "cannot be rotated") || f.starts != 0 {
		t.Errorf("a rotation under way was treated as not rotatable, or started again: %v (%d starts)", err, f.starts)
	}
	joined := strings.Join(logged, "\n")
	for _, want := range []string{"STATE_HIBERNATED", "SKE_UNREADY_NODES", "SKE_NODE_MISCONFIGURED_PDB"} {
		if !strings.Contains(joined, want) {
			t.Errorf("progress log %q never showed %s", joined, want)
		}
	}
}
