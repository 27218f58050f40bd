#!/bin/sh
set -e
# Like the official image: flags alone imply redis-server; protected mode is compiled off there.
case "${1:-}" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
  shift
  set -- redis-server --protected-mode no "$@"
  if [ "$(id -u)" = 0 ]; then exec setpriv --reuid=999 --regid=999 --init-groups "$@"; fi
fi
exec "$@"
