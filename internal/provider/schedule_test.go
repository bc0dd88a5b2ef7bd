package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestRotationDue(t *testing.T) {
	last := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := timetypes.NewRFC3339TimeValue(last)
	every := 720 * time.Hour

	if due, next, _ := rotationDue(at, every, last.Add(every-time.Second), "rotates"); due || !next.Equal(last.Add(every)) {
		t.Errorf("a second before: due=%v next=%v", due, next)
	}
	due, _, why := rotationDue(at, every, last.Add(every), "rotates")
	if !due || !strings.Contains(why, "2026-01-01T00:00:00Z") || !strings.Contains(why, `"720h"`) || !strings.Contains(why, "2026-01-31T00:00:00Z") {
		t.Errorf("exactly when due: due=%v why=%q", due, why)
	}
	if due, _, why := rotationDue(timetypes.NewRFC3339Null(), every, last, "rotates"); !due || !strings.Contains(why, "imported") {
		t.Errorf("never rotated (imported): due=%v why=%q", due, why)
	}
}

func TestDurationBetweenSaysTheRange(t *testing.T) {
	v := durationBetween{min: 10 * time.Minute, max: 4320 * time.Hour, example: "1h"}
	for in, ok := range map[string]bool{"10m": true, "4320h": true, "1h30m": true, "5m": false, "4321h": false, "soon": false, "-1h": false, "": false} {
		resp := &validator.StringResponse{}
		v.ValidateString(context.Background(), validator.StringRequest{Path: path.Root("ttl"), ConfigValue: types.StringValue(in)}, resp)
		if resp.Diagnostics.HasError() == ok {
			t.Errorf("%q: accepted=%v, want %v", in, !resp.Diagnostics.HasError(), ok)
		}
		if !ok && !strings.Contains(resp.Diagnostics[0].Detail(), "between 10m and 4320h") {
			t.Errorf("%q: message %q does not give the range", in, resp.Diagnostics[0].Detail())
		}
	}
}
