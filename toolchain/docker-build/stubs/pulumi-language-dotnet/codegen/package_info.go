// Package codegen declares the one type pulumi-docker-build takes from the .NET code
// generator: the schema's language.csharp section, with the released JSON field names.
package codegen

// CSharpPackageInfo is the language.csharp section of a package schema.
type CSharpPackageInfo struct {
	PackageReferences    map[string]string `json:"packageReferences,omitempty"`
	RespectSchemaVersion bool              `json:"respectSchemaVersion,omitempty"`
}
