package provider

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tiers are told apart by name, as terraform-plugin-testing does it: a
// test that needs the local LKE/SKE or terraform is a TestAcc… test, and
// without TF_ACC TestMain skips every one of them (and starts nothing). A
// test named otherwise runs in every `go test`, so it must need none of it.
//
// acceptanceOnly is what only an acceptance test may use: the package's
// own names (the local LKE and SKE TestMain starts, and everything that
// reaches them, such as takeCluster and sharedSKECluster), and calls into
// other packages, by import path.
var acceptanceOnly = struct {
	names   map[string]string
	calls   map[string]string // "import/path.Func"
	strings map[string]string // string constants: the variables naming terraform binaries
}{
	names: map[string]string{
		"testEnv": "the local LKE (testEnv)",
		"skeAPI":  "the local SKE API (skeAPI)",
	},
	calls: map[string]string{
		"github.com/hashicorp/terraform-plugin-testing/helper/resource.Test":         "terraform (resource.Test)",
		"github.com/hashicorp/terraform-plugin-testing/helper/resource.ParallelTest": "terraform (resource.ParallelTest)",
		"github.com/hashicorp/terraform-plugin-testing/helper/resource.UnitTest":     "terraform (resource.UnitTest)",
	},
	strings: map[string]string{
		"TF_ACC_TERRAFORM_PATH": "the terraform binary (TF_ACC_TERRAFORM_PATH)",
		"KUBECREDS_TERRAFORM14": "the Terraform 1.14 binary (KUBECREDS_TERRAFORM14)",
	},
}

// TestTiersAreNamedSo fails naming each test that is not a TestAcc… test
// but uses what only acceptance tests may use, directly or through the
// package's functions it calls.
func TestTiersAreNamedSo(t *testing.T) {
	bad, err := untieredTests(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("%s: name it TestAcc… (TestMain skips those without TF_ACC), or do without it", b)
	}
}

// tierDecl is one top-level declaration: what it uses itself, and which of
// the package's other declarations it refers to.
type tierDecl struct {
	uses []string
	refs []string
}

// untieredTests parses the package's test files in dir (all but this one,
// which names the markers, whatever their build constraints) and returns, one
// line each, the non-TestAcc tests that reach an acceptance-only thing,
// with the chain of calls that reaches it.
func untieredTests(dir string) ([]string, error) {
	// Only the test files: the package's other code cannot reach what they
	// declare, nor (it does not import it) terraform-plugin-testing.
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, f := range files {
		if filepath.Base(f) == "tiers_test.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		file, err := parser.ParseFile(fset, f, src, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, file)
	}

	// The package's top-level names; methods as "method Name" (a call
	// x.Name() is taken to reach every method of that name).
	decls := map[string]*tierDecl{}
	methods := map[string]bool{}
	var tests []string
	for _, file := range parsed {
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil {
					methods[d.Name.Name] = true
					continue
				}
				decls[d.Name.Name] = &tierDecl{}
				if isTestFunc(d) {
					tests = append(tests, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if v, ok := s.(*ast.ValueSpec); ok {
						for _, n := range v.Names {
							decls[n.Name] = &tierDecl{}
						}
					}
				}
			}
		}
	}
	for m := range methods {
		decls["method "+m] = &tierDecl{}
	}

	for _, file := range parsed {
		imports := map[string]string{} // local name → path
		for _, im := range file.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			name := p[strings.LastIndex(p, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = p
		}
		scan := func(d *tierDecl, n ast.Node) {
			skip := map[*ast.Ident]bool{}
			local := localNames(n)
			ast.Inspect(n, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					skip[n.Sel] = true
					if x, ok := n.X.(*ast.Ident); ok {
						if p, ok := imports[x.Name]; ok {
							skip[x] = true
							if use := acceptanceOnly.calls[p+"."+n.Sel.Name]; use != "" {
								d.uses = append(d.uses, use)
							}
							return true
						}
					}
					if methods[n.Sel.Name] {
						d.refs = append(d.refs, "method "+n.Sel.Name)
					}
				case *ast.CallExpr:
					// exec.Command("terraform", …), exec.CommandContext(ctx, "terraform", …)
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
						if x, ok := sel.X.(*ast.Ident); ok && imports[x.Name] == "os/exec" {
							for _, a := range n.Args {
								if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
									if s, _ := strconv.Unquote(lit.Value); s == "terraform" {
										d.uses = append(d.uses, "terraform (exec."+sel.Sel.Name+")")
									}
								}
							}
						}
					}
				case *ast.BasicLit:
					if n.Kind == token.STRING {
						if s, _ := strconv.Unquote(n.Value); acceptanceOnly.strings[s] != "" {
							d.uses = append(d.uses, acceptanceOnly.strings[s])
						}
					}
				case *ast.Ident:
					if skip[n] {
						return true
					}
					if local[n.Name] {
						return true
					}
					if use := acceptanceOnly.names[n.Name]; use != "" {
						d.uses = append(d.uses, use)
					} else if _, ok := decls[n.Name]; ok {
						d.refs = append(d.refs, n.Name)
					}
				}
				return true
			})
		}
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				name := d.Name.Name
				if d.Recv != nil {
					name = "method " + name
				}
				scan(decls[name], d)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if v, ok := s.(*ast.ValueSpec); ok {
						for _, n := range v.Names {
							scan(decls[n.Name], v)
						}
					}
				}
			}
		}
	}

	// reach returns the chain from name to the first acceptance-only use.
	var reach func(name string, seen map[string]bool) []string
	reach = func(name string, seen map[string]bool) []string {
		if seen[name] {
			return nil
		}
		seen[name] = true
		d := decls[name]
		if d == nil {
			return nil
		}
		if len(d.uses) > 0 {
			return []string{name, d.uses[0]}
		}
		for _, r := range d.refs {
			if chain := reach(r, seen); chain != nil {
				return append([]string{name}, chain...)
			}
		}
		return nil
	}
	var bad []string
	slices.Sort(tests)
	for _, name := range tests {
		if strings.HasPrefix(name, "TestAcc") {
			continue
		}
		if chain := reach(name, map[string]bool{}); chain != nil {
			use := chain[len(chain)-1]
			via := ""
			if len(chain) > 2 {
				via = " via " + strings.Join(chain[1:len(chain)-1], " → ")
			}
			bad = append(bad, fmt.Sprintf("%s uses %s%s", name, use, via))
		}
	}
	return bad, nil
}

// isTestFunc tells a test as go test does: TestXxx(t *testing.T), Xxx not
// starting with a lower-case letter. TestMain is not a test.
func isTestFunc(d *ast.FuncDecl) bool {
	name := d.Name.Name
	if d.Recv != nil || !strings.HasPrefix(name, "Test") || name == "TestMain" {
		return false
	}
	if rest := name[len("Test"):]; rest != "" && rest[0] >= 'a' && rest[0] <= 'z' {
		return false
	}
	p := d.Type.Params.List
	if len(p) != 1 || len(p[0].Names) > 1 {
		return false
	}
	star, ok := p[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "T"
}

// localNames is every name a function declares for itself (parameters,
// results, :=, var, range), wherever in it: such a name is not the
// package's, even where it is spelt as one (a local clusterID).
func localNames(n ast.Node) map[string]bool {
	names := map[string]bool{}
	fields := func(l *ast.FieldList) {
		if l == nil {
			return
		}
		for _, f := range l.List {
			for _, n := range f.Names {
				names[n.Name] = true
			}
		}
	}
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			fields(n.Recv)
		case *ast.FuncType:
			fields(n.Params)
			fields(n.Results)
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE {
				for _, e := range n.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						names[id.Name] = true
					}
				}
			}
		case *ast.RangeStmt:
			if n.Tok == token.DEFINE {
				for _, e := range []ast.Expr{n.Key, n.Value} {
					if id, ok := e.(*ast.Ident); ok {
						names[id.Name] = true
					}
				}
			}
		case *ast.DeclStmt:
			if g, ok := n.Decl.(*ast.GenDecl); ok {
				for _, s := range g.Specs {
					if v, ok := s.(*ast.ValueSpec); ok {
						for _, id := range v.Names {
							names[id.Name] = true
						}
					}
				}
			}
		}
		return true
	})
	return names
}
