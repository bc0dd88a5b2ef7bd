package retry

import (
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"
)

// Act is a request that must not take effect twice (an LKE regenerate or
// recycle, the start or completion of an SKE rotation), sent by ActOnce.
type Act struct {
	// Send makes the request once.
	Send func(context.Context) error
	// TookEffect reads whether the API has acted on it (a sign of the
	// change it asked for).
	TookEffect func(context.Context) (bool, error)
	// Watch is how long to look for that sign after Send failed with a
	// transient err that may have come after the API acted (no answer, a
	// timeout, a 5xx); 0 when err says the API did nothing (a 429), which
	// is then only waited out.
	Watch func(err error) time.Duration
	// Refused tells an answer that the request does not fit the object's
	// state (say 400 or 409 "already in progress"): the change it asked for
	// may have been asked by someone else just before, so the object is
	// watched for RefusedWatch before err counts as final. Nil: none is.
	Refused      func(err error) bool
	RefusedWatch time.Duration
	// Poll is how often TookEffect is read while watching (default 500ms).
	Poll time.Duration
	// ResendWhenUnsure: when TookEffect cannot be read while watching, the
	// request may be sent again, because the API refuses a duplicate
	// rather than performing it twice. Otherwise such a failure is
	// returned: sending again could act twice.
	ResendWhenUnsure bool
	Policy           Policy
	Clock            clock.Clock // default the real one
}

// Outcome is how an Act ended without error.
type Outcome int

const (
	// Accepted: the API answered the request with success.
	Accepted Outcome = iota
	// AnswerLost: the answer to a request was lost, but the API shows it acted.
	AnswerLost
	// Adopted: the API refused the request, but the object shows the change
	// it asked for, made by another party.
	Adopted
)

// Result says how an Act ended and how many requests it sent.
type Result struct {
	Outcome Outcome
	Sent    int
	// Lost is the failure whose answer was lost (AnswerLost) or the
	// refusal (Adopted).
	Lost error
}

// ActOnce sends a.Send without retrying it blindly. An answer that says the
// API did nothing is handled as such: a 429 (Watch 0) is waited out and the
// request sent again, any other non-transient error is returned (after the
// Refused watch, when it applies). A transient failure that may have come
// after the API acted is ambiguous: TookEffect is asked for up to Watch(err),
// and the request is sent again (after the rest of the backoff) only if the
// API shows no sign of having acted, as a.Policy allows.
func ActOnce(ctx context.Context, a Act) (Result, error) {
	clk := a.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	var res Result
	lost := false
	for attempt := 0; ; attempt++ {
		err := a.Send(ctx)
		res.Sent++
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return res, err
		}
		if a.Refused != nil && a.Refused(err) {
			acted, _ := watch(ctx, clk, a, a.RefusedWatch)
			switch {
			case acted && lost:
				res.Outcome, res.Lost = AnswerLost, err
			case acted:
				res.Outcome, res.Lost = Adopted, err
			default:
				return res, err
			}
			return res, nil
		}
		if !a.Policy.Transient(err) {
			return res, err
		}
		var watched time.Duration
		if a.Watch != nil {
			if watched = a.Watch(err); watched > 0 {
				lost = true
				started := clk.Now()
				acted, checkErr := watch(ctx, clk, a, watched)
				if acted {
					res.Outcome, res.Lost = AnswerLost, err
					return res, nil
				}
				if checkErr != nil && !a.ResendWhenUnsure {
					return res, fmt.Errorf("%w (and whether it took effect cannot be told: %v; run apply again, which checks first)", err, checkErr) //nolint:errorlint // only err is to be classified; checkErr is context for the reader, and wrapping it would let errors.Is/As match it
				}
				watched = clk.Since(started)
			}
		}
		if attempt >= a.Policy.Retries() {
			return res, err
		}
		if Sleep(ctx, clk, a.Policy.Delay(attempt, err)-watched) != nil {
			return res, err
		}
	}
}

// watch reads TookEffect every Poll for up to d (at least once). A read
// that fails is kept, not fatal; its error is returned when no read answered.
func watch(ctx context.Context, clk clock.Clock, a Act, d time.Duration) (bool, error) {
	poll := a.Poll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	start := clk.Now()
	var lastErr error
	answered := false
	for {
		acted, err := a.TookEffect(ctx)
		if err == nil {
			answered = true
			if acted {
				return true, nil
			}
		} else {
			lastErr = err
		}
		if clk.Since(start)+poll > d || Sleep(ctx, clk, poll) != nil {
			break
		}
	}
	if !answered {
		return false, lastErr
	}
	return false, nil
}
