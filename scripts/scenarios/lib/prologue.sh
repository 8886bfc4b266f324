# The common start of a scenario script that needs nothing more (sourced first, not run):
# strict mode, the repository root as working directory and as $root, the release binary as
# $bin, and a temporary directory $tmp removed at exit. Scripts with their own EXIT trap
# (killing leftover ranks) or another binary set these themselves.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.." || exit 1
root=$PWD
bin=$root/.build/release/disttrain
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
