"""Components of the djangostack Pulumi program (see docs/design.md)."""
