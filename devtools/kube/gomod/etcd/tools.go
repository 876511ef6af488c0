//go:build tools

// Keeps etcd's server entry point in this module's dependency graph.
package tools

import _ "go.etcd.io/etcd/server/v3"
