//go:build tools

// Package tools pins the Pulumi CLI's Go module (and, through go.sum, every module it builds with), so that
// .ci/pulumi-cli builds the same binary on every machine.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
