#!/usr/bin/env bash
# Prints one of the README's two set-up commands, so that CI runs exactly what
# the README tells a user (the two cannot drift apart):
#   scripts/readme_command.sh main   # evaluate the default model, write the leaderboards
#   scripts/readme_command.sh test   # pass the tests
# README.md marks each with an HTML comment (`<!-- command: main -->`), which
# Markdown does not show; the command is the first indented code line after it.
set -euo pipefail
which=${1:?usage: readme_command.sh main|test}
readme="$(dirname "$0")/../README.md"
cmd=$(awk -v m="<!-- command: $which -->" '
  index($0, m) == 1 { found = 1; next }
  found && /^    [^ ]/ { print substr($0, 5); exit }
' "$readme")
[ -n "$cmd" ] || { echo "readme_command: README.md has no \"<!-- command: $which -->\" followed by an indented command" >&2; exit 2; }
printf '%s\n' "$cmd"
