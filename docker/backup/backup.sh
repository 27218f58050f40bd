#!/bin/sh
# One backup of a stack, the single source of both backups the program takes: the pre-migration
# step (components/jobs.py runs this text with `sh -c` in the Postgres image) and the scheduled
# backup (docker/backup/backupd runs it from the backup image, components/scheduledbackup.py).
# pg_dump in custom format into BACKUP_DIR as <db>-<UTC timestamp>.dump, next to a tar of
# MEDIA_DIR as <db>-<UTC timestamp>.media.tar (uncompressed: uploads are mostly compressed
# already); keeps the newest BACKUP_KEEP pairs; prints the dump's path.
# Environment: PGHOST, PGUSER, PGDATABASE, PGPASSWORD_FILE, BACKUP_DIR, MEDIA_DIR, BACKUP_KEEP.
# pg_dump reads no PGPASSWORD_FILE and libpq ignores a password file others may read (the files
# volume's files are 0444): PGPASSWORD is exported from the file into this shell only.
# One command per line under `set -e`: any failure fails the backup (and so a deploy), and the
# trap leaves no partial file behind. The media archive is complete before the dump gets its
# final name: a listed dump always has its media next to it.
set -eu
PGPASSWORD=$(cat "$PGPASSWORD_FILE"); export PGPASSWORD
f="$BACKUP_DIR/$PGDATABASE-$(date -u +%Y%m%dT%H%M%SZ).dump"
m="${f%.dump}.media.tar"
trap 'rm -f "$f.partial" "$m.partial"' EXIT
tar -C "$MEDIA_DIR" -cf "$m.partial" .
mv "$m.partial" "$m"
pg_dump --format=custom --file="$f.partial"
mv "$f.partial" "$f"
ls -1t "$BACKUP_DIR"/*.dump | tail -n +"$((BACKUP_KEEP + 1))" |
  while read -r old; do rm -f -- "$old" "${old%.dump}.media.tar"; done
echo "$f"
