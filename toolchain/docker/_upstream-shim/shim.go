// Package shim re-exports the upstream Terraform docker provider's SDKv2 constructor, which
// lives in an internal package. scripts/toolchain.sh copies this file into the unpacked
// upstream module (as pulumi-docker does with a patch) so the bridge can import it.
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"

	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

// NewProvider returns the upstream provider's SDKv2 part: every resource pulumi-docker 5.2
// publishes (the plugin-framework part holds only resources pulumi-docker does not bridge).
func NewProvider(version string) *schema.Provider {
	return provider.New(version)()
}
