package lke

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"
)

// Steps must name every step Rotate runs, in its order: the provider's
// fault and kill matrices are checked against Steps, so a step added to
// Rotate but not here would go untested. This reads rotate.go's
// run.step(ctx, StepX, ...) calls.
func TestStepsAreTheStepsRotateRuns(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "rotate.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, file := range []string{"errors.go"} {
		ef, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(ef, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Values) == len(vs.Names) {
				for i, name := range vs.Names {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						consts[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
			return true
		})
	}
	var run []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "step" && len(call.Args) == 3 {
			id, ok := call.Args[1].(*ast.Ident)
			if !ok {
				t.Errorf("%s: a step named by %T, not by a Step constant", fset.Position(call.Pos()), call.Args[1])
				return true
			}
			run = append(run, consts[id.Name])
		}
		return true
	})
	if len(run) == 0 {
		t.Fatal("found no run.step calls in rotate.go: this test no longer reads the runbook")
	}
	if !slices.Equal(run, Steps) {
		t.Errorf("Rotate runs the steps\n  %q\nbut Steps lists\n  %q", run, Steps)
	}
}
