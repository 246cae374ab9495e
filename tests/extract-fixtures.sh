#!/bin/sh
# Unpack every fixture storage into a fresh directory: tests get pristine
# copies of the original implementation's storages on every run.
set -eu
src=$1
dst=$2
rm -rf "$dst"
mkdir -p "$dst"
for f in "$src"/*-master.tar.gz "$src"/*-replica*.tar.gz; do
	tar -xzpf "$f" -C "$dst"
done
mkdir -p "$dst/responses"
for f in "$src"/*.response.tar.gz; do
	# the recorded byte stream of the original master side, gunzipped
	b=$(basename "$f" .response.tar.gz)
	gzip -dc "$f" > "$dst/responses/$b.tar"
done
