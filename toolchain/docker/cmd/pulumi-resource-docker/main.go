// Command pulumi-resource-docker is the docker resource provider plugin: the upstream
// Terraform provider served through the bridge with the released pulumi-docker schema.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"

	"djangostack.local/toolchain/docker/info"
)

// schema.json is written by pulumi-tfgen-docker at build time (scripts/toolchain.sh).
//
//go:embed schema.json
var schema []byte

func main() {
	tfbridge.Main("docker", info.Version, info.Provider(), schema)
}
