package kubeconfig

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func typesUID(s string) types.UID { return types.UID(s) }

func metav1ListOptions() metav1.ListOptions { return metav1.ListOptions{} }
