"""The Pulumi engine driving this project: the toolchain, stacks of the project's own
`__main__.py` run as an inline Automation API program, and what a deploy does around `up`
(secrets generated on a first deploy, a self-signed pair where asked for, the policy pack,
the summary). `python -m automation` is the deploy command (scripts/deploy.sh); the tests
drive stacks through the same functions (tests/support/engine.py)."""
