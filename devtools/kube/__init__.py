"""A real Kubernetes control plane (etcd + kube-apiserver) and helm for local runs and
the e2e tests, built from Go modules when not already present. See docs/e2e-cluster.md."""
