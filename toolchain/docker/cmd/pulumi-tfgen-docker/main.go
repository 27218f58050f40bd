// Command pulumi-tfgen-docker writes the provider's Pulumi schema (schema --out DIR), which
// pulumi-resource-docker embeds.
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"

	"djangostack.local/toolchain/docker/info"
)

func main() {
	tfgen.Main("docker", info.Version, info.Provider())
}
