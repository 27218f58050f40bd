// Stand-in for github.com/pulumi/pulumi-java (refused by the module proxy): pulumi-docker-build
// imports only pkg/codegen/java.PackageInfo, to write the schema's language.java section.
module github.com/pulumi/pulumi-java

go 1.26
