package ske

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stackitcloud/stackit-sdk-go/core/oapierror"
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
	return &Rotator{API: f, Poll: time.Millisecond, Grace: time.Second, MaxRetries: 3, ActedPoll: time.Millisecond, ActedWindow: 3 * time.Millisecond,
		Transient: func(err error) bool {
			var e *APIError
			return errors.As(err, &e) && e.Transient()
		}}
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
