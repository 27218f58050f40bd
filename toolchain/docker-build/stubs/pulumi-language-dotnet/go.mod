// Stand-in for github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3 (refused by the module
// proxy): pulumi-docker-build imports only codegen.CSharpPackageInfo, to write the schema's
// language.csharp section.
module github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3

go 1.26
