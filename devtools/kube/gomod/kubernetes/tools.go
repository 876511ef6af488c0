//go:build tools

// Keeps the control plane's packages in this module's dependency graph: the API server,
// the controller manager and the scheduler of one Kubernetes version.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
