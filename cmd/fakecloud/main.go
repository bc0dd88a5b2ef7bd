// Command fakecloud runs the emulated clouds by hand, for trying the
// provider, kubectl and curl without a cloud account: the local LKE (a
// Linode API emulator backed by real Kubernetes control planes; make lke)
// and the local SKE (an SKE API emulator with STACKIT's token endpoint,
// backed by control planes whose credentials really rotate; make ske). Each
// starts alone; -cloud lke,ske starts both. It prints what to export and
// stops cleanly on Ctrl-C, removing everything it started.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	cloud := flag.String("cloud", "lke", "the emulated cloud(s) to run: lke, ske, or lke,ske")
	clusters := flag.Int("clusters", 1, "number of emulated clusters (of each cloud)")
	envFile := flag.String("env-file", "", "also write the settings as JSON to this file (mode 0600), for scripts")
	lke := registerLKEFlags()
	ske := registerSKEFlags()
	flag.Parse()
	run := map[string]bool{}
	for _, c := range strings.Split(*cloud, ",") {
		if c != "lke" && c != "ske" {
			fail(fmt.Errorf("-cloud %q: want lke, ske, or lke,ske", *cloud))
		}
		run[c] = true
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	settings := map[string]any{}
	if run["lke"] {
		env, err := startLKE(ctx, *clusters, lke, settings)
		if err != nil {
			fail(err)
		}
		defer env.Close()
	}
	if run["ske"] {
		env, err := startSKE(ctx, *clusters, ske, settings)
		if err != nil {
			fail(err)
		}
		defer env.Close()
	}
	if *envFile != "" {
		b, _ := json.MarshalIndent(settings, "", "  ")
		if err := os.WriteFile(*envFile, b, 0o600); err != nil {
			fail(err)
		}
	}
	fmt.Printf("\nPress Ctrl-C to stop.\n")
	<-ctx.Done()
	var clouds []string
	for _, c := range []string{"lke", "ske"} {
		if run[c] {
			clouds = append(clouds, strings.ToUpper(c))
		}
	}
	fmt.Fprintf(os.Stderr, "stopping local %s...\n", strings.Join(clouds, " and "))
}

// fail reports err and exits; deferred Closes do not run, but the control
// planes die with this process and their directory is swept by the next run.
func fail(err error) {
	fmt.Fprintf(os.Stderr, "fakecloud: %v\n", err)
	os.Exit(1)
}
