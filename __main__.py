"""The djangostack Pulumi program: read the typed config, build the stack, export the outputs
documented in docs/outputs.md (the contract other stacks rely on)."""

import pulumi

from components.config import CELERY_PROCESS, load_config
from components.stack import DjangoStack, DjangoStackArgs

cfg = load_config()
stack = DjangoStack("djangostack", DjangoStackArgs(cfg))

pulumi.export("url", stack.url)
pulumi.export("profile", cfg.profile)
pulumi.export("orchestrator", cfg.orchestrator)
pulumi.export("namePrefix", cfg.name_prefix)
pulumi.export("imageRef", stack.image.ref)
pulumi.export("imageDigest", stack.image.digest)
pulumi.export("imageTag", stack.image.tag)
pulumi.export("imageRevision", stack.image.revision)
pulumi.export("edgeNetwork", stack.networks.edge.name)
pulumi.export("backendNetwork", stack.networks.backend.name)
pulumi.export("postgresHost", stack.postgres.host)
pulumi.export("redisHost", stack.redis.host)
pulumi.export("databaseUrl", stack.database_url)
pulumi.export("redisUrl", stack.redis.url)
pulumi.export("postgresVolume", stack.postgres.volume.name)
pulumi.export("redisVolume", stack.redis.volume.name)
pulumi.export("backupVolume", stack.backup.volume.name)
pulumi.export("mediaVolume", stack.media_volume.name)
pulumi.export("webNames", stack.web.names)
pulumi.export("celeryNames", stack.process_names.get(CELERY_PROCESS, []))
pulumi.export("processNames", stack.process_names)
if stack.static and stack.nginx:
    pulumi.export("staticVolume", stack.static.volume.name)
    pulumi.export("nginxName", stack.nginx.name)
    if stack.nginx.certificate is not None:  # with acme, only the tls volume holds it
        pulumi.export("tlsCertificate", stack.nginx.certificate)
if stack.acme:
    pulumi.export("tlsVolume", stack.acme.tls_volume.name)
