// Package java declares the one type pulumi-docker-build takes from pulumi-java's code
// generator: the schema's language.java section, with the released JSON field names.
package java

// PackageInfo is the language.java section of a package schema.
type PackageInfo struct {
	BasePackage                     string            `json:"basePackage"`
	BuildFiles                      string            `json:"buildFiles"`
	Dependencies                    map[string]string `json:"dependencies,omitempty"`
	GradleNexusPublishPluginVersion string            `json:"gradleNexusPublishPluginVersion"`
	GradleTest                      string            `json:"gradleTest"`
}
