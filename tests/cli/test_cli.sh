#!/usr/bin/env bash
# Placeholder; the CLI end-to-end checks land with the CLI.
"$EMBEVAL" >/dev/null
