//go:build tools

// Keeps kube-apiserver's packages in this module's dependency graph.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
