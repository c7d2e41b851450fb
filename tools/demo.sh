#!/usr/bin/env bash
# Fresh machine -> demo: installs the dependencies and the package, then runs
# the seed scenario (a data frame shared with parallel workers, side by side
# with sending it plainly).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
echo "== R CMD INSTALL ."
R CMD INSTALL --no-test-load . > /tmp/mori-install.log 2>&1 || { cat /tmp/mori-install.log; exit 1; }
grep -E "^using rustc" /tmp/mori-install.log || true
Rscript -e 'demo("seed", package = "mori", ask = FALSE, echo = FALSE)'
