// Command controlplane is a single binary holding the three Kubernetes
// control-plane programs the local LKE needs: etcd, kube-apiserver and
// kube-controller-manager. It is built from the Go module proxy so that tests
// run against a real API server without Docker, kind or downloads.
//
// Usage: controlplane etcd|kube-apiserver|kube-controller-manager [flags...]
package main

import (
	"fmt"
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: controlplane etcd|kube-apiserver|kube-controller-manager [flags...]")
		os.Exit(2)
	}
	sub := os.Args[1]
	switch sub {
	case "etcd":
		// etcdmain reads os.Args itself and expects the program name first.
		os.Args = append([]string{"etcd"}, os.Args[2:]...)
		etcdmain.Main(os.Args)
	case "kube-apiserver":
		os.Args = append([]string{sub}, os.Args[2:]...)
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Args = append([]string{sub}, os.Args[2:]...)
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	default:
		fmt.Fprintf(os.Stderr, "controlplane: unknown subcommand %q (want etcd, kube-apiserver or kube-controller-manager)\n", sub)
		os.Exit(2)
	}
}
